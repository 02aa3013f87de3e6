#include "connmgr/net/resolver.hpp"

#include <cstring>

#include <netdb.h>
#include <netinet/in.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

caf::expected<std::vector<sockaddr_storage>> lookup(const std::string& host,
                                                    uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  auto service = std::to_string(port);
  auto rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0)
    return make_error(errc::resolve_failed,
                      "\"" + host + "\": " + ::gai_strerror(rc));
  std::vector<sockaddr_storage> result;
  for (auto i = res; i != nullptr; i = i->ai_next) {
    if (i->ai_family != AF_INET && i->ai_family != AF_INET6)
      continue;
    sockaddr_storage sa{};
    std::memcpy(&sa, i->ai_addr, i->ai_addrlen);
    result.push_back(sa);
  }
  ::freeaddrinfo(res);
  if (result.empty())
    return make_error(errc::resolve_failed,
                      "\"" + host + "\": no IPv4 or IPv6 address");
  return result;
}

} // namespace

resolver::resolver(size_t threads) {
  if (threads == 0)
    threads = 1;
  for (size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] { run(); });
}

resolver::~resolver() {
  std::deque<job> left;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    left.swap(jobs_);
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
  for (auto& j : left)
    j.done(make_error(errc::canceled, "resolver stopped"));
}

void resolver::resolve(std::string host, uint16_t port, handler done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      jobs_.push_back(job{std::move(host), port, std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(make_error(errc::canceled, "resolver stopped"));
}

void resolver::run() {
  for (;;) {
    job j;
    {
      std::unique_lock<std::mutex> guard{mtx_};
      cv_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_)
        return;
      j = std::move(jobs_.front());
      jobs_.pop_front();
    }
    j.done(lookup(j.host, j.port));
  }
}

} // namespace connmgr
