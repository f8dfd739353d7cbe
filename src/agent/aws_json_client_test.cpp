// The AWS JSON client against a fake service: which service a call reaches, and how error answers
// become error codes.
#include "agent/aws_json_client.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "agent/test_aws_service.hpp"

namespace wharf::agent {
namespace {

class AwsJsonClientTest : public testkit::FakeAwsServiceTest {
 protected:
  AwsJsonClientOptions options(AwsJsonService service = kEcsService) const {
    AwsJsonClientOptions options;
    options.endpoint = endpoint();
    options.credentials = {"AKIDEXAMPLE", "secret", "", "eu-west-1"};
    options.timeout = std::chrono::seconds(5);
    options.service = service;
    return options;
  }

  SystemClock clock_;
};

TEST_F(AwsJsonClientTest, CallsEcsUnlessToldOtherwise) {
  service_.answer(200, R"({"containerInstance": {}})");
  AwsJsonClient client(options(), clock_);
  auto output = client.call("DiscoverPollEndpoint", {{"cluster", "default"}});
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_TRUE(output->contains("containerInstance"));
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "AmazonEC2ContainerServiceV20141113.DiscoverPollEndpoint");
  EXPECT_NE(requests[0].authorization.find("/eu-west-1/ecs/aws4_request"), std::string::npos)
      << requests[0].authorization;
  EXPECT_EQ(boost::json::parse(requests[0].body), (boost::json::object{{"cluster", "default"}}));
}

TEST_F(AwsJsonClientTest, CallsSecretsManagerSignedForIt) {
  AwsJsonClient client(options(kSecretsManagerService), clock_);
  ASSERT_TRUE(client.call("GetSecretValue", {{"SecretId", "db"}}));
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "secretsmanager.GetSecretValue");
  EXPECT_NE(requests[0].authorization.find("/eu-west-1/secretsmanager/aws4_request"),
            std::string::npos)
      << requests[0].authorization;
}

TEST_F(AwsJsonClientTest, ErrorAnswersKeepTheExceptionAsTheirCode) {
  struct Case {
    int status;
    std::string body;
    ErrorCode code;
    std::string message;
  };
  std::vector<Case> cases = {
      {400,
       R"({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."})",
       ErrorCode::kNotFound,
       "GetSecretValue: HTTP 400 ResourceNotFoundException: Secrets Manager can't find the "
       "specified secret."},
      {400, R"({"__type": "com.amazonaws.ecs#ClientException", "Message": "bad"})",
       ErrorCode::kClient, "GetSecretValue: HTTP 400 ClientException: bad"},
      // Secrets Manager's name for a secret scheduled for deletion: unknown to Wharf's codes.
      {400, R"({"__type": "InvalidRequestException", "message": "deleted"})", ErrorCode::kClient,
       "GetSecretValue: HTTP 400 InvalidRequestException: deleted"},
      {403, R"({"__type": "AccessDeniedException", "message": "no"})", ErrorCode::kAccessDenied,
       "GetSecretValue: HTTP 403 AccessDeniedException: no"},
      {403, R"({"__type": "UnrecognizedClientException", "message": "who"})",
       ErrorCode::kUnrecognizedClient, "GetSecretValue: HTTP 403 UnrecognizedClientException: who"},
      // A 4xx is never a server fault, even one that names a server exception.
      {400, R"({"__type": "ServerException", "message": "odd"})", ErrorCode::kClient,
       "GetSecretValue: HTTP 400 ServerException: odd"},
      {400, "not json", ErrorCode::kClient, "GetSecretValue: HTTP 400 without an error body"},
      {503, R"({"__type": "ServerException"})", ErrorCode::kInternal, "GetSecretValue: HTTP 503"},
  };
  AwsJsonClient client(options(kSecretsManagerService), clock_);
  for (const Case& answer : cases) {
    service_.answer(answer.status, answer.body);
    auto output = client.call("GetSecretValue", {{"SecretId", "db"}});
    ASSERT_FALSE(output) << answer.body;
    EXPECT_EQ(output.error().code, answer.code) << answer.body;
    EXPECT_EQ(output.error().message, answer.message);
    EXPECT_EQ(is_transient(output.error()), answer.status >= 500) << answer.body;
  }
}

TEST_F(AwsJsonClientTest, AnUnreachableServiceIsTransient) {
  AwsJsonClientOptions unreachable = options();
  unreachable.endpoint = "http://127.0.0.1:1";  // nothing listens there
  AwsJsonClient client(unreachable, clock_);
  auto output = client.call("DiscoverPollEndpoint", {});
  ASSERT_FALSE(output);
  EXPECT_TRUE(is_transient(output.error())) << output.error().message;
  EXPECT_TRUE(output.error().message.starts_with("DiscoverPollEndpoint: "));
}

}  // namespace
}  // namespace wharf::agent
