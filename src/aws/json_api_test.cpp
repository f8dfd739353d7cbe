// Unit tests for the JSON protocol router: auth, routing, body checks and error encoding.
#include <gtest/gtest.h>

#include "aws/json_api.hpp"
#include "aws/service_model.hpp"
#include "aws/sigv4.hpp"

namespace wharf::aws {
namespace {

namespace bh = http::beast_http;

const TimePoint kNow = TimePoint(std::chrono::seconds(1'700'000'000));

class JsonApiTest : public ::testing::Test {
 protected:
  JsonApiTest()
      : clock_(kNow), router_(credentials_, clock_), service_(ServiceModel::ecs(), "ecs", "1.1") {
    credentials_.add({"AKIDTEST", "secret", "123456789012", "arn:aws:iam::123456789012:root"});
    service_.add("ListClusters", [this](const CallContext& context,
                                        const boost::json::object& input, JsonReply reply) {
      last_context_ = context;
      last_input_ = input;
      reply(boost::json::object{{"clusterArns", boost::json::array{}}});
    });
    service_.add("DeleteCluster",
                 [](const CallContext&, const boost::json::object&, JsonReply reply) {
                   reply(fail(ErrorCode::kClusterNotFound, "Cluster not found."));
                 });
    router_.add_service(service_);
  }

  http::Response call(std::string operation, std::string body, std::string secret = "secret",
                      std::string region = "us-east-1", std::string service = "ecs",
                      TimePoint signed_at = kNow) {
    SignableRequest signable;
    signable.method = "POST";
    signable.target = "/";
    signable.headers = {{"Host", "localhost"},
                        {"Content-Type", "application/x-amz-json-1.1"},
                        {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113." + operation}};
    signable.payload = body;
    sign_request(signable, "AKIDTEST", secret, region, service, signed_at);
    http::Request request{bh::verb::post, "/", 11};
    for (const auto& [name, value] : signable.headers) request.set(name, value);
    request.body() = body;
    http::Response out;
    router_.handle(std::move(request), [&](http::Reply reply) { out = std::move(reply.response); });
    return out;
  }

  static std::string type_of(const http::Response& response) {
    return std::string(boost::json::parse(response.body()).as_object().at("__type").as_string());
  }

  ManualClock clock_;
  CredentialStore credentials_;
  ApiRouter router_;
  JsonService service_;
  CallContext last_context_;
  boost::json::object last_input_;
};

TEST_F(JsonApiTest, CallsTheOperationWithTheCallersContext) {
  auto response = call("ListClusters", R"({"maxResults": 5})", "secret", "eu-west-1");
  EXPECT_EQ(response.result(), bh::status::ok);
  EXPECT_EQ(response[bh::field::content_type], "application/x-amz-json-1.1");
  EXPECT_FALSE(response["x-amzn-RequestId"].empty());
  EXPECT_EQ(last_context_.region, "eu-west-1");
  EXPECT_EQ(last_context_.account_id, "123456789012");
  EXPECT_EQ(last_context_.operation, "ListClusters");
  EXPECT_EQ(last_input_.at("maxResults").as_int64(), 5);
}

TEST_F(JsonApiTest, EmptyBodyIsAnEmptyObject) {
  EXPECT_EQ(call("ListClusters", "").result(), bh::status::ok);
}

TEST_F(JsonApiTest, ErrorsCarryTheirTypeAndStatus) {
  struct Case {
    const char* name;
    http::Response response;
    bh::status status;
    const char* type;
  };
  const Case cases[] = {
      {"operation error", call("DeleteCluster", R"({"cluster": "x"})"), bh::status::bad_request,
       "ClusterNotFoundException"},
      {"unknown operation", call("NoSuchThing", "{}"), bh::status::bad_request,
       "UnknownOperationException"},
      {"operation in the model but not implemented",
       call("CreateService", R"({"serviceName": "x"})"), bh::status::bad_request,
       "UnknownOperationException"},
      {"malformed json", call("ListClusters", "{not json"), bh::status::bad_request,
       "SerializationException"},
      {"json array body", call("ListClusters", "[]"), bh::status::bad_request,
       "SerializationException"},
      {"wrong member type", call("ListClusters", R"({"maxResults": "five"})"),
       bh::status::bad_request, "InvalidParameterException"},
      {"missing required member", call("DeleteCluster", "{}"), bh::status::bad_request,
       "InvalidParameterException"},
      {"wrong secret", call("ListClusters", "{}", "wrong"), bh::status::forbidden,
       "InvalidSignatureException"},
      {"scoped to another service", call("ListClusters", "{}", "secret", "us-east-1", "ecr"),
       bh::status::forbidden, "InvalidSignatureException"},
      {"stale date",
       call("ListClusters", "{}", "secret", "us-east-1", "ecs", kNow - std::chrono::minutes(20)),
       bh::status::forbidden, "InvalidSignatureException"},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(test_case.response.result(), test_case.status) << test_case.name;
    EXPECT_EQ(type_of(test_case.response), test_case.type) << test_case.name;
    EXPECT_FALSE(test_case.response["x-amzn-RequestId"].empty()) << test_case.name;
  }
}

TEST_F(JsonApiTest, UnmodelledOperationsSkipModelValidationButNotAuthOrJson) {
  service_.add_unmodelled(
      "WharfPollTasks",
      [this](const CallContext& context, const boost::json::object& input, JsonReply reply) {
        last_context_ = context;
        last_input_ = input;
        reply(boost::json::object{{"version", 1}});
      });
  EXPECT_TRUE(service_.is_modelled("ListClusters"));
  EXPECT_FALSE(service_.is_modelled("WharfPollTasks"));
  auto response = call("WharfPollTasks", R"({"version": 0, "anything": "goes"})");
  EXPECT_EQ(response.result(), bh::status::ok);
  EXPECT_EQ(last_context_.operation, "WharfPollTasks");
  EXPECT_EQ(last_input_.at("anything").as_string(), "goes");
  EXPECT_EQ(type_of(call("WharfPollTasks", "[]")), "SerializationException");
  EXPECT_EQ(type_of(call("WharfPollTasks", "{}", "wrong")), "InvalidSignatureException");
}

TEST_F(JsonApiTest, UnsignedRequestIsRefused) {
  http::Request request{bh::verb::post, "/", 11};
  request.set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters");
  request.body() = "{}";
  http::Response out;
  router_.handle(std::move(request), [&](http::Reply reply) { out = std::move(reply.response); });
  EXPECT_EQ(out.result(), bh::status::forbidden);
  EXPECT_EQ(type_of(out), "MissingAuthenticationTokenException");
}

TEST_F(JsonApiTest, UnknownKeyIsUnrecognized) {
  credentials_.add({"AKIDOTHER", "x", "1", "r"});
  SignableRequest signable;
  signable.method = "POST";
  signable.target = "/";
  signable.headers = {{"Host", "localhost"},
                      {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters"}};
  signable.payload = "{}";
  sign_request(signable, "AKIDNOBODY", "x", "us-east-1", "ecs", kNow);
  http::Request request{bh::verb::post, "/", 11};
  for (const auto& [name, value] : signable.headers) request.set(name, value);
  request.body() = "{}";
  http::Response out;
  router_.handle(std::move(request), [&](http::Reply reply) { out = std::move(reply.response); });
  EXPECT_EQ(out.result(), bh::status::forbidden);
  EXPECT_EQ(type_of(out), "UnrecognizedClientException");
}

}  // namespace
}  // namespace wharf::aws
