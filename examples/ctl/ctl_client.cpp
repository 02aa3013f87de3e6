// connmgr-ctl's work: one CAF actor system with the middleman (and OpenSSL
// for mutual TLS), a connection to each node's control, the command, and
// the answers as one table or JSON document across the nodes.
#include "examples/ctl/ctl_client.hpp"

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fmt/format.h>

#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/messages/control_actor.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/messages/message_types.hpp"
#include "examples/ctl/ctl_args.hpp"
#include "examples/ctl/ctl_diagnose.hpp"

namespace connmgr {

namespace {

// -- output helpers --------------------------------------------------------------

std::string json_string(const std::string& x) {
  std::string out = "\"";
  for (unsigned char c : x) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

/// A JSON value for `x`: integers and booleans raw, the rest quoted.
std::string json_value(const std::string& x) {
  if (x == "true" || x == "false")
    return x;
  if (!x.empty() && x.size() < 19
      && x.find_first_not_of("0123456789") == std::string::npos)
    return x;
  return json_string(x);
}

/// One JSON object of (key, value) rows, values through `json_value`.
std::string
json_object(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = "{";
  for (auto& [k, v] : fields) {
    if (out.size() > 1)
      out += ",";
    out += json_string(k) + ":" + json_value(v);
  }
  return out + "}";
}

using row = std::vector<std::pair<std::string, std::string>>;

/// Rows as an aligned table (columns of the first row) or a JSON array.
void print_rows(std::FILE* out, const std::vector<row>& rows, bool json,
                const row& header) {
  if (json) {
    std::string text = "[";
    for (auto& r : rows) {
      if (text.size() > 1)
        text += ",\n ";
      text += json_object(r);
    }
    std::fprintf(out, "%s]\n", text.c_str());
    return;
  }
  std::vector<size_t> width;
  for (auto& [key, title] : header)
    width.push_back(title.size());
  for (auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].second.size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      text += cells[i];
      // Cells past the header's columns (none today) are not padded.
      if (i + 1 < cells.size() && i < width.size())
        text += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::fprintf(out, "%s\n", text.c_str());
  };
  std::vector<std::string> titles;
  for (auto& [key, title] : header)
    titles.push_back(title);
  line(titles);
  for (auto& r : rows) {
    std::vector<std::string> cells;
    for (auto& [key, value] : r)
      cells.push_back(value);
    line(cells);
  }
}

std::string millis_text(caf::timespan x) {
  return std::to_string(
    std::chrono::duration_cast<std::chrono::milliseconds>(x).count());
}

// -- connecting ------------------------------------------------------------------

struct target {
  net_address where;
  std::string name;
  control_actor control;
};

/// Connects to `where` within the timeout (CAF's own connect has none):
/// the control, or a message naming the reason.
std::pair<control_actor, std::string>
connect_control(caf::actor_system& sys, const ctl_args& a,
                const net_address& where) {
  if (auto why = tcp_unreachable(where, a.timeout); !why.empty())
    return {control_actor{}, "cannot reach the node: " + why};
  auto host = where.host();
  auto port = where.port();
  auto attempt = std::async(std::launch::async, [&sys, &a, host, port] {
    return a.tls() ? caf::openssl::remote_actor<control_actor>(sys, host, port)
                   : sys.middleman().remote_actor<control_actor>(host, port);
  });
  if (attempt.wait_for(a.timeout) != std::future_status::ready) {
    // CAF cannot cancel its connect: give up on the whole run.
    std::fprintf(stderr,
                 "connmgr-ctl: %s: cannot reach the control: no handshake "
                 "within %s\n",
                 where.to_string().c_str(),
                 to_string_duration(a.timeout).c_str());
    std::fflush(stdout);
    std::_Exit(1);
  }
  auto res = attempt.get();
  if (res)
    return {*res, {}};
  if (a.tls())
    return {control_actor{},
            "TLS connection refused: "
              + diagnose_tls(where, a.cert, a.key, a.ca, a.timeout)};
  return {control_actor{},
          fmt::format("the node refused a plain connection ({}): it needs "
                      "mutual TLS, give --cert, --key and --ca",
                      sys.render(res.error()))};
}

// -- commands --------------------------------------------------------------------

std::string error_text(caf::actor_system& sys, const caf::error& err) {
  if (errc_of(err) != errc::none)
    return describe(err);
  return sys.render(err);
}

template <class... Ts>
struct reply_of;

/// Asks every target; calls `on_ok(target, value...)` per answer, reports
/// errors to `err`. False if any failed.
template <class Out, class... Ts>
bool ask_all(caf::actor_system& sys, const ctl_args& a,
             std::vector<target>& targets, std::FILE* err,
             std::function<void(target&, Out&)> on_ok, Ts... xs) {
  bool ok = true;
  caf::scoped_actor self{sys};
  for (auto& t : targets) {
    self->request(t.control, a.timeout, xs...)
      .receive([&](Out& value) { on_ok(t, value); },
               [&](caf::error& e) {
                 std::fprintf(err, "connmgr-ctl: %s: %s refused: %s\n",
                              t.name.c_str(), to_string(a.verb).c_str(),
                              error_text(sys, e).c_str());
                 ok = false;
               });
  }
  return ok;
}

/// Same for requests answered with an empty reply.
template <class... Ts>
bool tell_all(caf::actor_system& sys, const ctl_args& a,
              std::vector<target>& targets, std::FILE* out, std::FILE* err,
              Ts... xs) {
  bool ok = true;
  caf::scoped_actor self{sys};
  for (auto& t : targets) {
    self->request(t.control, a.timeout, xs...)
      .receive(
        [&] {
          if (a.json)
            std::fprintf(out, "%s\n",
                         json_object({{"node", t.name},
                                      {"command", to_string(a.verb)},
                                      {"ok", "true"}})
                           .c_str());
          else
            std::fprintf(out, "%s: %s done\n", t.name.c_str(),
                         to_string(a.verb).c_str());
        },
        [&](caf::error& e) {
          std::fprintf(err, "connmgr-ctl: %s: %s refused: %s\n", t.name.c_str(),
                       to_string(a.verb).c_str(), error_text(sys, e).c_str());
          ok = false;
        });
  }
  return ok;
}

row peer_row(const std::string& node, bool fleet, const peer_info& p) {
  row r;
  if (fleet)
    r.emplace_back("node", node);
  r.emplace_back("id", std::to_string(p.id));
  r.emplace_back("direction",
                 p.kind == peer_class::inbound ? "inbound" : "outbound");
  r.emplace_back("class", to_string(p.kind));
  r.emplace_back("remote", p.remote_address);
  r.emplace_back("local", p.local_address);
  r.emplace_back("permanent", p.permanent ? "true" : "false");
  r.emplace_back("connected_ms", millis_text(p.connected_for));
  r.emplace_back(
    "dial_us",
    std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(p.dial_time)
        .count()));
  r.emplace_back("retries", std::to_string(p.retry_count));
  r.emplace_back("bytes_in", std::to_string(p.bytes_in));
  r.emplace_back("bytes_out", std::to_string(p.bytes_out));
  auto ago = [](caf::timespan x) {
    return x.count() < 0 ? std::string{"-"} : millis_text(x);
  };
  r.emplace_back("last_recv_ms", ago(p.since_recv));
  r.emplace_back("last_send_ms", ago(p.since_send));
  r.emplace_back("frames_in", std::to_string(p.frames_in));
  r.emplace_back("frames_out", std::to_string(p.frames_out));
  r.emplace_back("ping_ms", p.ping.count() > 0 ? millis_text(p.ping) : "-");
  r.emplace_back("score", std::to_string(p.ban_score));
  std::string tags;
  for (auto& t : p.tags)
    tags += (tags.empty() ? "" : ",") + t;
  r.emplace_back("tags", tags.empty() ? "-" : tags);
  return r;
}

/// "conn_stats(a=1, b=2)" as (name, value) pairs: every counter the node
/// has, also those added after this tool was built.
row stats_fields(const conn_stats& s) {
  row out;
  auto text = to_string(s);
  auto open = text.find('(');
  auto body = text.substr(open + 1, text.size() - open - 2);
  size_t pos = 0;
  while (pos < body.size()) {
    auto comma = body.find(", ", pos);
    auto item = body.substr(
      pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto eq = item.find('=');
    if (eq != std::string::npos)
      out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (comma == std::string::npos)
      break;
    pos = comma + 2;
  }
  return out;
}

/// `fields` of one node, led by ("node", its name).
row node_fields(const target& t, row fields) {
  row r{{"node", t.name}};
  for (auto& f : fields)
    r.push_back(std::move(f));
  return r;
}

/// Rows of `node_fields`: a JSON array of one object per node, or a table
/// of one row per field (`title`) and one column per node.
void print_per_node(std::FILE* out, const std::vector<row>& per_node, bool json,
                    bool fleet, const char* title, const char* key) {
  if (json) {
    print_rows(out, per_node, true, {});
    return;
  }
  if (per_node.empty())
    return;
  row header{{key, title}};
  for (auto& r : per_node)
    header.emplace_back(r[0].second, fleet ? r[0].second : "VALUE");
  std::vector<row> rows;
  for (size_t i = 1; i < per_node[0].size(); ++i) {
    row r{{key, per_node[0][i].first}};
    for (auto& n : per_node)
      r.emplace_back(n[0].second, i < n.size() ? n[i].second : "");
    rows.push_back(std::move(r));
  }
  print_rows(out, rows, false, header);
}

// -- limits and drain ----------------------------------------------------------

/// Reads each node's limits, applies the changes and sends them back;
/// prints the limits the node answers with (those now in force).
int run_set(caf::actor_system& sys, const ctl_args& a,
            std::vector<target>& targets, std::FILE* out, std::FILE* err) {
  auto fleet = targets.size() > 1;
  bool ok = true;
  std::vector<row> per_node;
  caf::scoped_actor self{sys};
  auto refused = [&](target& t, const caf::error& e) {
    std::fprintf(err, "connmgr-ctl: %s: set refused: %s\n", t.name.c_str(),
                 error_text(sys, e).c_str());
    ok = false;
  };
  for (auto& t : targets) {
    std::optional<conn_limits> current;
    self->request(t.control, a.timeout, limits_atom::value)
      .receive([&](conn_limits& x) { current = x; },
               [&](caf::error& e) { refused(t, e); });
    if (!current)
      continue;
    if (auto e = apply_limit_changes(*current, a.changes)) {
      refused(t, e);
      continue;
    }
    self->request(t.control, a.timeout, set_limits_atom::value, *current)
      .receive(
        [&](conn_limits& now) {
          per_node.push_back(node_fields(t, limit_rows(now)));
        },
        [&](caf::error& e) { refused(t, e); });
  }
  print_per_node(out, per_node, a.json, fleet, "LIMIT", "limit");
  return ok ? 0 : 1;
}

/// Drains every node at once and waits for each to answer with its final
/// counters (sent once its handler has stopped).
int run_drain(caf::actor_system& sys, const ctl_args& a,
              std::vector<target>& targets, std::FILE* out, std::FILE* err) {
  auto fleet = targets.size() > 1;
  // The node answers at the deadline at the latest; the margin covers
  // closing and the trip back.
  auto wait = a.drain_timeout
    + std::max(a.timeout, caf::timespan{std::chrono::seconds{5}});
  // One waiting thread per node: they all drain at once.
  std::vector<std::future<std::pair<std::optional<row>, std::string>>> replies;
  for (auto& t : targets)
    replies.push_back(std::async(std::launch::async, [&sys, &a, &t, wait] {
      std::pair<std::optional<row>, std::string> res;
      caf::scoped_actor self{sys};
      self->request(t.control, wait, drain_atom::value, a.drain_timeout)
        .receive(
          [&](conn_stats& s) { res.first = node_fields(t, stats_fields(s)); },
          [&](caf::error& e) { res.second = error_text(sys, e); });
      return res;
    }));
  bool ok = true;
  std::vector<row> per_node;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto [fields, why] = replies[i].get();
    if (fields) {
      per_node.push_back(std::move(*fields));
    } else {
      std::fprintf(err, "connmgr-ctl: %s: drain refused: %s\n",
                   targets[i].name.c_str(), why.c_str());
      ok = false;
    }
  }
  print_per_node(out, per_node, a.json, fleet, "COUNTER", "counter");
  return ok ? 0 : 1;
}

// -- events ----------------------------------------------------------------------

struct subscriber_state {
  static inline const char* name = "connmgr.ctl_subscriber";
  uint64_t seen = 0;
  uint32_t unacked = 0;
};

/// Credit the subscriber grants at once and tops up in steps.
constexpr uint32_t events_credit = 256;
constexpr uint32_t events_step = 64;

control_subscriber_actor::behavior_type events_printer(
  control_subscriber_actor::stateful_pointer<subscriber_state> self,
  control_actor control, std::string node, bool fleet, bool json,
  uint64_t count, std::FILE* out, std::FILE* err,
  std::shared_ptr<std::promise<int>> done) {
  return {
    [=](control_event_atom, uint64_t id, uint64_t seq, event_summary& ev) {
      row r;
      if (fleet || json)
        r.emplace_back("node", node);
      r.emplace_back("event", ev.event);
      r.emplace_back("ts", std::to_string(ev.ts_ms));
      r.emplace_back("seq", std::to_string(seq));
      if (ev.id != 0)
        r.emplace_back("id", std::to_string(ev.id));
      if (!ev.addr.empty())
        r.emplace_back("addr", ev.addr);
      if (!ev.reason_code.empty())
        r.emplace_back("reason_code", ev.reason_code);
      if (!ev.reason.empty())
        r.emplace_back("reason", ev.reason);
      for (auto& d : ev.details)
        r.push_back(d);
      std::string text;
      if (json) {
        text = json_object(r);
      } else {
        for (auto& [k, v] : r)
          text += (text.empty() ? "" : " ")
            + (k == "event" || k == "node" ? v : k + "=" + v);
      }
      // Blocking here when our reader is slow is what tells the node: no
      // credit comes back, and it drops us rather than buffer.
      std::fprintf(out, "%s\n", text.c_str());
      std::fflush(out);
      auto& st = self->state;
      ++st.seen;
      if (count != 0 && st.seen >= count) {
        self->send(control, unsubscribe_atom::value, id);
        done->set_value(0);
        self->quit();
        return;
      }
      if (++st.unacked >= events_step) {
        self->send(control, credit_atom::value, id, st.unacked);
        st.unacked = 0;
      }
    },
    [=](control_dropped_atom, uint64_t, std::string& why) {
      auto stopping = why == "node stopping";
      std::fprintf(err,
                   "connmgr-ctl: %s: the node ended the event stream: "
                   "%s\n",
                   node.c_str(), why.c_str());
      done->set_value(stopping ? 0 : 1);
      self->quit();
    },
  };
}

int run_events(caf::actor_system& sys, const ctl_args& a,
               std::vector<target>& targets, std::FILE* out, std::FILE* err) {
  std::vector<std::future<int>> results;
  std::vector<control_subscriber_actor> subs;
  caf::scoped_actor self{sys};
  auto fleet = targets.size() > 1;
  int status = 0;
  for (auto& t : targets) {
    auto done = std::make_shared<std::promise<int>>();
    auto sub = sys.spawn(events_printer, t.control, t.name, fleet, a.json,
                         a.count, out, err, done);
    bool ok = true;
    self
      ->request(t.control, a.timeout, subscribe_atom::value, sub, events_credit)
      .receive([](uint64_t) {},
               [&](caf::error& e) {
                 std::fprintf(err, "connmgr-ctl: %s: events refused: %s\n",
                              t.name.c_str(), error_text(sys, e).c_str());
                 ok = false;
               });
    if (!ok) {
      caf::anon_send_exit(sub, caf::exit_reason::user_shutdown);
      status = 1;
      continue;
    }
    // The node going away (its connection lost) ends the stream too.
    self->monitor(sub);
    results.push_back(done->get_future());
    subs.push_back(sub);
  }
  for (size_t i = 0; i < subs.size(); ++i) {
    // Wait until one subscriber ends, whichever.
    self->receive([](caf::down_msg&) {});
  }
  for (auto& f : results) {
    if (f.wait_for(std::chrono::seconds{0}) == std::future_status::ready) {
      status = std::max(status, f.get());
    } else {
      std::fprintf(err, "connmgr-ctl: lost the connection to a node\n");
      status = 1;
    }
  }
  return status;
}

// -- the run ------------------------------------------------------------------

int run_command(caf::actor_system& sys, const ctl_args& a,
                std::vector<target>& targets, std::FILE* out, std::FILE* err) {
  auto fleet = targets.size() > 1;
  switch (a.verb) {
    case ctl_verb::peers: {
      std::vector<row> rows;
      auto ok = ask_all<std::vector<peer_info>>(
        sys, a, targets, err,
        [&](target& t, std::vector<peer_info>& xs) {
          for (auto& p : xs)
            rows.push_back(peer_row(t.name, fleet, p));
        },
        peers_atom::value);
      row header;
      if (fleet)
        header.emplace_back("node", "NODE");
      for (auto [k, title] : {std::pair{"id", "ID"},
                              {"direction", "DIR"},
                              {"class", "CLASS"},
                              {"remote", "REMOTE"},
                              {"local", "LOCAL"},
                              {"permanent", "PERM"},
                              {"connected_ms", "OPEN_MS"},
                              {"dial_us", "DIAL_US"},
                              {"retries", "RETRIES"},
                              {"bytes_in", "IN"},
                              {"bytes_out", "OUT"},
                              {"last_recv_ms", "RECV_MS"},
                              {"last_send_ms", "SEND_MS"},
                              {"frames_in", "F_IN"},
                              {"frames_out", "F_OUT"},
                              {"ping_ms", "PING_MS"},
                              {"score", "SCORE"},
                              {"tags", "TAGS"}})
        header.emplace_back(k, title);
      print_rows(out, rows, a.json, header);
      return ok ? 0 : 1;
    }
    case ctl_verb::stats: {
      std::vector<row> per_node;
      auto ok = ask_all<conn_stats>(
        sys, a, targets, err,
        [&](target& t, conn_stats& s) {
          per_node.push_back(node_fields(t, stats_fields(s)));
        },
        stats_atom::value);
      print_per_node(out, per_node, a.json, fleet, "COUNTER", "counter");
      return ok ? 0 : 1;
    }
    case ctl_verb::limits: {
      std::vector<row> per_node;
      auto ok = ask_all<conn_limits>(
        sys, a, targets, err,
        [&](target& t, conn_limits& x) {
          per_node.push_back(node_fields(t, limit_rows(x)));
        },
        limits_atom::value);
      print_per_node(out, per_node, a.json, fleet, "LIMIT", "limit");
      return ok ? 0 : 1;
    }
    case ctl_verb::set:
      return run_set(sys, a, targets, out, err);
    case ctl_verb::drain:
      return run_drain(sys, a, targets, out, err);
    case ctl_verb::protect:
      return tell_all(sys, a, targets, out, err, protect_atom::value, a.id,
                      a.tag)
        ? 0
        : 1;
    case ctl_verb::unprotect:
      return tell_all(sys, a, targets, out, err, unprotect_atom::value, a.id,
                      a.tag)
        ? 0
        : 1;
    case ctl_verb::bans: {
      std::vector<row> rows;
      auto ok = ask_all<std::vector<ban_info>>(
        sys, a, targets, err,
        [&](target& t, std::vector<ban_info>& xs) {
          for (auto& b : xs) {
            row r;
            if (fleet)
              r.emplace_back("node", t.name);
            r.emplace_back("subnet", b.subnet);
            auto secs =
              std::chrono::duration_cast<std::chrono::seconds>(b.remaining);
            r.emplace_back("remaining",
                           a.json ? millis_text(b.remaining)
                                  : to_string_duration(secs));
            r.emplace_back("reason", b.reason);
            rows.push_back(std::move(r));
          }
        },
        bans_atom::value);
      row header;
      if (fleet)
        header.emplace_back("node", "NODE");
      header.emplace_back("subnet", "SUBNET");
      header.emplace_back(a.json ? "remaining_ms" : "remaining", "REMAINING");
      header.emplace_back("reason", "REASON");
      if (a.json)
        for (auto& r : rows)
          r[fleet ? 2 : 1].first = "remaining_ms";
      print_rows(out, rows, a.json, header);
      return ok ? 0 : 1;
    }
    case ctl_verb::connect: {
      std::vector<row> rows;
      auto ok = ask_all<uint64_t>(
        sys, a, targets, err,
        [&](target& t, uint64_t& id) {
          rows.push_back({{"node", t.name},
                          {"id", std::to_string(id)},
                          {"address", a.target}});
        },
        connect_atom::value, uint64_t{0}, a.target, a.permanent);
      print_rows(out, rows, a.json,
                 {{"node", "NODE"}, {"id", "ID"}, {"address", "ADDRESS"}});
      return ok ? 0 : 1;
    }
    case ctl_verb::ban: {
      std::vector<row> rows;
      auto ok = ask_all<uint64_t>(
        sys, a, targets, err,
        [&](target& t, uint64_t& closed) {
          rows.push_back({{"node", t.name},
                          {"subnet", a.target},
                          {"closed", std::to_string(closed)}});
        },
        ban_atom::value, a.target, a.ban_for, a.reason);
      print_rows(
        out, rows, a.json,
        {{"node", "NODE"}, {"subnet", "BANNED"}, {"closed", "CLOSED"}});
      return ok ? 0 : 1;
    }
    case ctl_verb::unban:
      return tell_all(sys, a, targets, out, err, unban_atom::value, a.target)
        ? 0
        : 1;
    case ctl_verb::disconnect:
      return tell_all(sys, a, targets, out, err, disconnect_atom::value, a.id,
                      true)
        ? 0
        : 1;
    case ctl_verb::remove:
      return tell_all(sys, a, targets, out, err, remove_atom::value, a.id) ? 0
                                                                           : 1;
    case ctl_verb::events:
      return run_events(sys, a, targets, out, err);
  }
  return 2;
}

} // namespace

int run_ctl(const ctl_args& a, std::FILE* out, std::FILE* err) {
  if (a.tls())
    if (auto why = check_tls_files(a.cert, a.key, a.ca); !why.empty()) {
      std::fprintf(err, "connmgr-ctl: %s\n", why.c_str());
      return 2;
    }
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  if (a.tls()) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = a.cert;
    cfg.openssl_key = a.key;
    cfg.openssl_cafile = a.ca;
  }
  caf::actor_system sys{cfg};
  std::vector<target> targets;
  int status = 0;
  for (auto& where : a.nodes) {
    auto [control, why] = connect_control(sys, a, where);
    if (!control) {
      std::fprintf(err, "connmgr-ctl: %s: %s\n", where.to_string().c_str(),
                   why.c_str());
      status = 1;
      continue;
    }
    targets.push_back(target{where, where.to_string(), control});
  }
  if (!targets.empty())
    status = std::max(status, run_command(sys, a, targets, out, err));
  targets.clear();
  return status;
}

} // namespace connmgr
