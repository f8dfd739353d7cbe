// Test helpers for JSON-protocol services: call an operation the way the router does (model
// validation first, then the handler) and wait for its reply. For unit tests only.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <future>
#include <string>
#include <string_view>

#include "aws/errors.hpp"
#include "aws/json_api.hpp"
#include "aws/service_model.hpp"

namespace wharf::aws::testing {

class JsonServiceCaller {
 public:
  explicit JsonServiceCaller(const JsonService& service) : service_(service) {}

  Result<boost::json::object> call(const std::string& operation, boost::json::object input,
                                   std::string region = "us-east-1") const {
    if (auto valid = service_.model().validate_input(operation, input); !valid) {
      return std::unexpected(valid.error());
    }
    const JsonOperation* implementation = service_.find(operation);
    EXPECT_NE(implementation, nullptr) << operation;
    if (implementation == nullptr) return fail(ErrorCode::kUnknownOperation, operation);
    CallContext context{region,      "123456789012", "AKIDTEST", "arn:aws:iam::123456789012:root",
                        "request-1", operation};
    std::promise<Result<boost::json::object>> replied;
    auto future = replied.get_future();
    (*implementation)(context, input, [&replied](Result<boost::json::object> result) {
      replied.set_value(std::move(result));
    });
    return future.get();
  }

  // The output of a call that must succeed (an empty object, and a test failure, otherwise).
  boost::json::object ok(const std::string& operation, boost::json::object input) const {
    auto result = call(operation, std::move(input));
    EXPECT_TRUE(result.has_value()) << operation << ": " << result.error().message;
    return result ? *result : boost::json::object{};
  }

  // A call that must fail with the wire error `type` and a message containing `message_part`.
  void expect_error(const std::string& operation, boost::json::object input, std::string_view type,
                    std::string_view message_part = "") const {
    auto result = call(operation, std::move(input));
    ASSERT_FALSE(result.has_value())
        << operation << " succeeded: " << boost::json::serialize(*result);
    EXPECT_EQ(to_wire(result.error(), service_.signing_name()).type, type)
        << operation << ": " << result.error().message;
    EXPECT_NE(result.error().message.find(message_part), std::string::npos)
        << result.error().message;
  }

 private:
  const JsonService& service_;
};

}  // namespace wharf::aws::testing
