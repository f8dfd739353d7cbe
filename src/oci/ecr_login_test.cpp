// ECR login: AWS configuration lookup, endpoint choice, token decoding, and GetAuthorizationToken
// against a fake endpoint that checks the SigV4 signature with Wharf's own verifier.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <mutex>

#include "aws/sigv4.hpp"
#include "common/crypto.hpp"
#include "http/server.hpp"
#include "oci/ecr_login.hpp"
#include "oci/temp_dir.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;
namespace beast_http = http::beast_http;

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
    auto found = values.find(std::string(name));
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
}

TEST(AwsCredentials, ComeFromTheEnvironmentFirst) {
  auto credentials = load_aws_credentials(env_of({{"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                                  {"AWS_SECRET_ACCESS_KEY", "secret"},
                                                  {"AWS_SESSION_TOKEN", "session"},
                                                  {"AWS_DEFAULT_REGION", "eu-west-1"},
                                                  {"HOME", "/nonexistent"}}));
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(credentials->secret_access_key, "secret");
  EXPECT_EQ(credentials->session_token, "session");
  EXPECT_EQ(credentials->region, "eu-west-1");
  // AWS_REGION wins over AWS_DEFAULT_REGION; without either, us-east-1.
  auto regional = load_aws_credentials(env_of({{"AWS_ACCESS_KEY_ID", "A"},
                                               {"AWS_SECRET_ACCESS_KEY", "B"},
                                               {"AWS_REGION", "ap-south-1"},
                                               {"AWS_DEFAULT_REGION", "eu-west-1"},
                                               {"HOME", "/nonexistent"}}));
  EXPECT_EQ(regional->region, "ap-south-1");
  auto plain = load_aws_credentials(env_of(
      {{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_SECRET_ACCESS_KEY", "B"}, {"HOME", "/nonexistent"}}));
  EXPECT_EQ(plain->region, "us-east-1");
  EXPECT_FALSE(load_aws_credentials(env_of({{"HOME", "/nonexistent"}})).has_value());
  EXPECT_FALSE(
      load_aws_credentials(env_of({{"AWS_ACCESS_KEY_ID", "A"}, {"HOME", "/nonexistent"}})));
}

TEST(AwsCredentials, ComeFromTheSharedFilesOtherwise) {
  auto dir = TempDir::create("wharf-ecr-test-");
  ASSERT_TRUE(dir.has_value());
  fs::create_directories(dir->path() / ".aws");
  std::ofstream(dir->path() / ".aws/credentials") << "# comment\n"
                                                     "[default]\n"
                                                     "aws_access_key_id = AKIDFILE\n"
                                                     "aws_secret_access_key=filesecret\n"
                                                     "\n"
                                                     "[ci]\n"
                                                     "aws_access_key_id = AKIDCI\n"
                                                     "aws_secret_access_key = cisecret\n"
                                                     "aws_session_token = citoken\n";
  std::ofstream(dir->path() / ".aws/config") << "[default]\nregion = us-west-2\n"
                                                "[profile ci]\nregion = eu-central-1\n";
  auto home = dir->path().string();
  auto credentials = load_aws_credentials(env_of({{"HOME", home}}));
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->access_key_id, "AKIDFILE");
  EXPECT_EQ(credentials->secret_access_key, "filesecret");
  EXPECT_EQ(credentials->session_token, "");
  EXPECT_EQ(credentials->region, "us-west-2");

  auto ci = load_aws_credentials(env_of({{"HOME", home}, {"AWS_PROFILE", "ci"}}));
  ASSERT_TRUE(ci.has_value());
  EXPECT_EQ(ci->access_key_id, "AKIDCI");
  EXPECT_EQ(ci->session_token, "citoken");
  EXPECT_EQ(ci->region, "eu-central-1");

  // AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE point elsewhere.
  EXPECT_FALSE(
      load_aws_credentials(env_of({{"HOME", home}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}}))
          .has_value());
  auto no_config = load_aws_credentials(env_of({{"HOME", home}, {"AWS_CONFIG_FILE", "/dev/null"}}));
  EXPECT_EQ(no_config->region, "us-east-1");
}

TEST(EcrEndpoint, PrefersConfigurationThenAwsThenTheRegistry) {
  auto local = parse_reference("127.0.0.1:5000/web:1");
  auto aws = parse_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1");
  ASSERT_TRUE(local && aws);
  EXPECT_EQ(ecr_endpoint(*local, env_of({}), "http://127.0.0.1:5000"), "http://127.0.0.1:5000");
  EXPECT_EQ(ecr_endpoint(*aws, env_of({}), "https://x"), "https://api.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(ecr_endpoint(*local, env_of({{"AWS_ENDPOINT_URL", "http://h:1"}}), "x"), "http://h:1");
  EXPECT_EQ(ecr_endpoint(*local,
                         env_of({{"AWS_ENDPOINT_URL", "http://h:1"},
                                 {"AWS_ENDPOINT_URL_ECR", "http://ecr:2"}}),
                         "x"),
            "http://ecr:2");
}

TEST(EcrToken, DecodesUserAndPassword) {
  auto decoded = decode_authorization_token(base64_encode("AWS:pass:with:colons"));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->username, "AWS");
  EXPECT_EQ(decoded->password, "pass:with:colons");
  EXPECT_FALSE(decode_authorization_token("!!!").has_value());
  EXPECT_FALSE(decode_authorization_token(base64_encode("nocolon")).has_value());
  EXPECT_FALSE(decode_authorization_token(base64_encode(":x")).has_value());
}

// Answers GetAuthorizationToken for one key, checking the signature like a real endpoint.
class FakeEcr final : public http::Handler {
 public:
  enum class Mode { kEcr, kNotFound, kUnknownOperation, kEmptyOk };
  Mode mode = Mode::kEcr;
  TimePoint now;
  std::string last_target;
  std::string last_security_token;

  void handle(http::Request&& request, http::Responder respond) override {
    aws::SignableRequest signable{
        std::string(request.method_string()), std::string(request.target()), {}, request.body()};
    for (const auto& field : request) {
      signable.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    last_target = std::string(request["X-Amz-Target"]);
    last_security_token = std::string(request["X-Amz-Security-Token"]);
    if (mode == Mode::kNotFound) {
      return respond(http::make_response(request, beast_http::status::not_found,
                                         "404 page not found", "text/plain"));
    }
    if (mode == Mode::kEmptyOk) {  // what docker-registry answers to POST /
      return respond(http::make_response(request, beast_http::status::ok, "", "text/plain"));
    }
    if (mode == Mode::kUnknownOperation) {
      return respond(http::make_response(
          request, beast_http::status::bad_request,
          R"({"__type":"UnknownOperationException","message":"Unknown operation"})",
          "application/x-amz-json-1.1"));
    }
    auto caller = aws::verify(
        signable,
        [](std::string_view key) -> std::optional<std::string> {
          if (key == "AKIDTEST") return std::string("right-secret");
          return std::nullopt;
        },
        now);
    if (!caller) {
      std::string type = caller.error().code == ErrorCode::kUnrecognizedClient
                             ? "UnrecognizedClientException"
                             : "InvalidSignatureException";
      return respond(
          http::make_response(request, beast_http::status::bad_request,
                              boost::json::serialize(boost::json::object{
                                  {"__type", type}, {"message", caller.error().message}}),
                              "application/x-amz-json-1.1"));
    }
    EXPECT_EQ(caller->service, "ecr");
    EXPECT_EQ(caller->region, "eu-west-1");
    boost::json::object data{{"authorizationToken", base64_encode("AWS:registry-password")},
                             {"proxyEndpoint", "http://127.0.0.1"}};
    respond(http::make_response(request, beast_http::status::ok,
                                boost::json::serialize(boost::json::object{
                                    {"authorizationData", boost::json::array{data}}}),
                                "application/x-amz-json-1.1"));
  }
};

class EcrLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ecr_.now = kNow;
    auto server = http::Server::start(http::ServerOptions{}, ecr_);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
    endpoint_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->stop(); }

  AwsCredentials credentials(std::string secret = "right-secret") {
    return AwsCredentials{"AKIDTEST", std::move(secret), "", "eu-west-1"};
  }

  static inline const TimePoint kNow = TimePoint(std::chrono::seconds(1700000000));
  FakeEcr ecr_;
  std::unique_ptr<http::Server> server_;
  std::string endpoint_;
};

TEST_F(EcrLoginTest, GetsRegistryCredentialsWithASignedRequest) {
  auto authorization = ecr_get_authorization(endpoint_, credentials(), false, kNow);
  ASSERT_TRUE(authorization.has_value()) << authorization.error().message;
  ASSERT_TRUE(authorization->credentials.has_value()) << authorization->not_ecr_reason;
  EXPECT_EQ(authorization->credentials->username, "AWS");
  EXPECT_EQ(authorization->credentials->password, "registry-password");
  EXPECT_EQ(ecr_.last_target, "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
  EXPECT_EQ(ecr_.last_security_token, "");

  auto with_session = credentials();
  with_session.session_token = "session-token";
  ASSERT_TRUE(ecr_get_authorization(endpoint_ + "/", with_session, false, kNow).has_value());
  EXPECT_EQ(ecr_.last_security_token, "session-token");
}

TEST_F(EcrLoginTest, RealEcrErrorsAreErrors) {
  auto wrong = ecr_get_authorization(endpoint_, credentials("wrong-secret"), false, kNow);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kAccessDenied);
  EXPECT_NE(wrong.error().message.find("ECR GetAuthorizationToken at " + endpoint_ +
                                       ": HTTP 400 InvalidSignatureException: "),
            std::string::npos)
      << wrong.error().message;
  auto stale = ecr_get_authorization(endpoint_, credentials(), false, kNow - std::chrono::hours(1));
  ASSERT_FALSE(stale.has_value());
  EXPECT_NE(stale.error().message.find("Signature expired"), std::string::npos);
}

TEST_F(EcrLoginTest, EndpointsWithoutEcrAreNoErrors) {
  ecr_.mode = FakeEcr::Mode::kNotFound;
  auto not_found = ecr_get_authorization(endpoint_, credentials(), false, kNow);
  ASSERT_TRUE(not_found.has_value());
  EXPECT_FALSE(not_found->credentials.has_value());
  EXPECT_NE(not_found->not_ecr_reason.find("HTTP 404"), std::string::npos);

  ecr_.mode = FakeEcr::Mode::kUnknownOperation;
  auto unknown = ecr_get_authorization(endpoint_, credentials(), false, kNow);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(unknown->credentials.has_value());
  EXPECT_NE(unknown->not_ecr_reason.find("UnknownOperationException"), std::string::npos);

  ecr_.mode = FakeEcr::Mode::kEmptyOk;
  auto empty = ecr_get_authorization(endpoint_, credentials(), false, kNow);
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->credentials.has_value());
  EXPECT_NE(empty->not_ecr_reason.find("HTTP 200 without a JSON object"), std::string::npos);

  auto unreachable = ecr_get_authorization("http://127.0.0.1:1", credentials(), false, kNow);
  ASSERT_TRUE(unreachable.has_value());
  EXPECT_FALSE(unreachable->credentials.has_value());
  EXPECT_FALSE(unreachable->not_ecr_reason.empty());

  EXPECT_FALSE(ecr_get_authorization("not a url", credentials(), false, kNow).has_value());
}

}  // namespace
}  // namespace wharf::oci
