# The one list of connmgr's source files, relative to the repository root.
# The top-level CMakeLists.txt builds its targets from it, the fuzz build
# (tests/fuzz) takes the parsers and state machines from it.
#
# *_PUBLIC_HEADERS install under include/connmgr/<folder>/ and are what
# consumers may include; every other header of a folder is internal.

# -- connmgr::connmgr: the connection manager ---------------------------------

set(CONNMGR_MESSAGES_SOURCES
  messages/ban_info.cpp
  messages/conn_limits.cpp
  messages/conn_request.cpp
  messages/conn_state.cpp
  messages/conn_stats.cpp
  messages/control_event.cpp
  messages/error_code.cpp
  messages/inbound_limits.cpp
  messages/manager_config.cpp
  messages/manager_config_reader.cpp
  messages/message_types.cpp
  messages/peer_info.cpp)
set(CONNMGR_MESSAGES_PUBLIC_HEADERS
  messages/acceptor_actor.hpp
  messages/address_source_actor.hpp
  messages/atoms.hpp
  messages/ban_info.hpp
  messages/conn_handler_actor.hpp
  messages/conn_limits.hpp
  messages/conn_request.hpp
  messages/conn_state.hpp
  messages/conn_stats.hpp
  messages/connection_ptr.hpp
  messages/control_actor.hpp
  messages/control_event.hpp
  messages/dialer_actor.hpp
  messages/direct_dialer.hpp
  messages/error_code.hpp
  messages/events.hpp
  messages/gate_actor.hpp
  messages/inbound_limits.hpp
  messages/manager_config.hpp
  messages/manager_config_reader.hpp
  messages/message_types.hpp
  messages/peer_info.hpp)

set(CONNMGR_NET_SOURCES
  net/address_class.cpp
  net/connection.cpp
  net/net_address.cpp
  net/reactor.cpp
  net/reactor_connect.cpp
  net/reactor_listen.cpp
  net/reactor_stream.cpp
  net/reactor_watch.cpp
  net/resolver.cpp
  net/siphash.cpp
  net/socket_ops.cpp
  net/socks5.cpp
  net/socks5_stream.cpp)
set(CONNMGR_NET_PUBLIC_HEADERS
  net/address_class.hpp
  net/connection.hpp
  net/net_address.hpp
  net/parse_result.hpp
  net/reactor.hpp
  net/resolver.hpp
  net/siphash.hpp
  net/socket_ops.hpp
  net/socks5.hpp
  net/socks5_stream.hpp
  net/stream_handle.hpp
  net/stream_handshake.hpp)

set(CONNMGR_ACTORS_SOURCES
  actors/ban_list.cpp
  actors/conn_handler.cpp
  actors/conn_machine.cpp
  actors/control.cpp
  actors/control_summary.cpp
  actors/dynamic_ban_score.cpp
  actors/function_address_source.cpp
  actors/inbound_admission.cpp
  actors/listener_worker.cpp
  actors/manager.cpp
  actors/retry_policy.cpp
  actors/tcp_acceptor.cpp
  actors/tcp_dialer.cpp)
set(CONNMGR_ACTORS_PUBLIC_HEADERS
  actors/conn_handler.hpp
  actors/control.hpp
  actors/dynamic_ban_score.hpp
  actors/function_address_source.hpp
  actors/gate.hpp
  actors/manager.hpp
  actors/retry_policy.hpp
  actors/tcp_acceptor.hpp
  actors/tcp_dialer.hpp
  actors/token_bucket.hpp)

# -- connmgr::addrman: an eclipse-resistant address manager and dial policy ----

set(CONNMGR_ADDRMAN_SOURCES
  actors/address_manager.cpp
  actors/address_manager_tables.cpp
  actors/dial_policy.cpp)
set(CONNMGR_ADDRMAN_PUBLIC_HEADERS
  actors/address_manager.hpp
  actors/dial_policy.hpp)

# -- connmgr::state: the state file, an SQLite database ------------------------

set(CONNMGR_STATE_SOURCES
  actors/state_db.cpp
  actors/state_journal.cpp
  actors/state_writer.cpp)
set(CONNMGR_STATE_PUBLIC_HEADERS
  actors/state_db.hpp
  actors/state_journal.hpp
  actors/state_writer.hpp)

# -- connmgr::testing: fake dialer and acceptor for users' tests --------------

set(CONNMGR_TESTING_SOURCES
  actors/fake_acceptor.cpp
  actors/fake_dialer.cpp)
set(CONNMGR_TESTING_PUBLIC_HEADERS
  actors/fake_acceptor.hpp
  actors/fake_dialer.hpp)
