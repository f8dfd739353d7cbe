// Tests for HttpTransport's request shape, against a bare socket that records what arrives.
#include "oci/http_transport.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/unique_fd.hpp"

namespace wharf::oci {
namespace {

// Accepts one connection, reads the request (headers and a Content-Length body), answers 200.
class OneShotServer {
 public:
  OneShotServer() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(::listen(listener_.get(), 1), 0);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() { thread_.join(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // Valid after the exchange.
  const std::string& request() const { return request_; }

 private:
  void serve() {
    UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection) return;
    char buffer[4096];
    std::size_t expected = std::string::npos;
    while (expected == std::string::npos || request_.size() < expected) {
      ssize_t got = ::read(connection.get(), buffer, sizeof buffer);
      if (got <= 0) return;
      request_.append(buffer, static_cast<std::size_t>(got));
      std::size_t end = request_.find("\r\n\r\n");
      if (end == std::string::npos || expected != std::string::npos) continue;
      std::size_t field = request_.find("Content-Length: ");
      std::size_t length = field < end ? std::stoul(request_.substr(field + 16)) : 0;
      expected = end + 4 + length;
    }
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)!::write(connection.get(), reply.data(), reply.size());
  }

  UniqueFd listener_;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

// An in-memory body (an API call) goes out with its headers: no "Expect: 100-continue" and the
// round trip it costs, whatever the body's size.
TEST(HttpTransportTest, InMemoryBodiesDoNotWaitForContinue) {
  OneShotServer server;
  HttpTransport transport;
  HttpRequest request = make_request("POST", server.url());
  request.body = std::string(64 * 1024, 'x');
  auto response = transport.perform(request);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok");
  EXPECT_EQ(server.request().find("Expect"), std::string::npos) << server.request().substr(0, 400);
  EXPECT_NE(server.request().find(request.body), std::string::npos);
}

}  // namespace
}  // namespace wharf::oci
