// A fake AWS service for the agent's unit tests, on Wharf's HTTP listener: it records every
// request and gives the answer the test set.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/server.hpp"

namespace wharf::agent::testkit {

class FakeAwsService final : public http::Handler {
 public:
  struct Request {
    std::string method;
    std::string path;    // the request target, as sent
    std::string target;  // X-Amz-Target
    std::string authorization;
    std::string body;
  };

  void handle(http::Request&& request, http::Responder respond) override {
    std::lock_guard lock(mutex_);
    requests_.push_back({std::string(request.method_string()), std::string(request.target()),
                         std::string(request["X-Amz-Target"]),
                         std::string(request[http::beast_http::field::authorization]),
                         request.body()});
    respond(http::make_response(request, static_cast<http::beast_http::status>(status_), body_,
                                content_type_));
  }

  void answer(int status, std::string body,
              std::string content_type = "application/x-amz-json-1.1") {
    std::lock_guard lock(mutex_);
    status_ = status;
    body_ = std::move(body);
    content_type_ = std::move(content_type);
  }

  std::vector<Request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  std::mutex mutex_;
  int status_ = 200;
  std::string body_ = "{}";
  std::string content_type_ = "application/x-amz-json-1.1";
  std::vector<Request> requests_;
};

// Runs a FakeAwsService on a free loopback port for each test.
class FakeAwsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = http::Server::start(http::ServerOptions{}, service_);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  FakeAwsService service_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace wharf::agent::testkit
