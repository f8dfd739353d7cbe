// Container secrets and registry credentials: valueFrom syntax, picking JSON keys, the reasons a
// task fails with, and GetSecretValue against a fake Secrets Manager.
#include "agent/task_secrets.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>

#include "agent/test_aws_service.hpp"

namespace wharf::agent {
namespace {

namespace bj = boost::json;

constexpr std::string_view kArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";

SecretRef ref(std::string id, std::string stage = "", std::string version = "") {
  SecretRef secret;
  secret.secret_id = std::move(id);
  secret.version_stage = std::move(stage);
  secret.version_id = std::move(version);
  return secret;
}

TEST(ParseValueFrom, ReadsEcsSecretsManagerSyntax) {
  struct Case {
    std::string value_from;
    SecretValueFrom expected;
  };
  std::string db = std::string(kArn) + "db";
  std::string suffixed = std::string(kArn) + "prod/db-AbCdEf";
  std::vector<Case> cases = {
      {db, {ref(db), ""}},
      {suffixed, {ref(suffixed), ""}},  // AWS's 6-character suffix is part of the id
      {suffixed + ":username::", {ref(suffixed), "username"}},
      {suffixed + ":username", {ref(suffixed), "username"}},
      {db + ":::", {ref(db), ""}},  // empty fields: the defaults
      {db + "::AWSPREVIOUS", {ref(db, "AWSPREVIOUS"), ""}},
      {db + ":password:AWSCURRENT:", {ref(db, "AWSCURRENT"), "password"}},
      {db + ":::0b7c5c2e-1111-4a3f-9a50-6b7a2a1c9d01",
       {ref(db, "", "0b7c5c2e-1111-4a3f-9a50-6b7a2a1c9d01"), ""}},
      {"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db",
       {ref("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db"), ""}},
  };
  for (const Case& good : cases) {
    auto parsed = parse_value_from(good.value_from);
    ASSERT_TRUE(parsed) << good.value_from << ": " << parsed.error().message;
    EXPECT_EQ(*parsed, good.expected) << good.value_from;
  }
}

TEST(ParseValueFrom, RefusesMalformedArns) {
  for (std::string bad :
       {std::string(""),
        std::string(kArn),                           // no name
        std::string(kArn) + "db:key:stage:id:more",  // too many fields
        std::string("arn:aws:secretsmanager:us-east-1:123456789012:db"),
        std::string("arn:aws:secretsmanager:us-east-1:123456789012:rotation:db"),
        std::string("arn:aws:secretsmanager::123456789012:secret:db"),
        std::string("arn:aws:secretsmanager"), std::string("arn:aws:s3:::bucket/db.env")}) {
    auto parsed = parse_value_from(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidParameter) << bad;
  }
}

SecretRef parameter(std::string id) {
  SecretRef secret;
  secret.source = SecretSource::kParameterStore;
  secret.secret_id = std::move(id);
  return secret;
}

TEST(ParseValueFrom, ReadsSsmParameterNamesAndArns) {
  for (std::string ssm :
       {"arn:aws:ssm:us-east-1:123456789012:parameter/prod/db",
        "arn:aws:ssm:us-east-1:123456789012:parameter/db", "db-password", "/prod/db"}) {
    auto parsed = parse_value_from(ssm);
    ASSERT_TRUE(parsed) << ssm << ": " << parsed.error().message;
    EXPECT_EQ(*parsed, (SecretValueFrom{parameter(ssm), ""})) << ssm;
  }
  for (std::string bad : {"arn:aws:ssm:us-east-1:123456789012:parameter/",
                          "arn:aws:ssm:us-east-1:123456789012:document/db",
                          "arn:aws:ssm:us-east-1:123456789012:parameter/db:1"}) {
    auto parsed = parse_value_from(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidParameter) << bad;
  }
}

TEST(SelectSecretValue, TakesTheWholeStringOrOneJsonKey) {
  std::string json = R"({"user": "admin", "port": 5432, "tls": {"on": true}, "empty": ""})";
  EXPECT_EQ(select_secret_value("hunter2", "").value(), "hunter2");
  EXPECT_EQ(select_secret_value(json, "").value(), json);
  EXPECT_EQ(select_secret_value(json, "user").value(), "admin");
  EXPECT_EQ(select_secret_value(json, "port").value(), "5432");
  EXPECT_EQ(select_secret_value(json, "tls").value(), R"({"on":true})");
  EXPECT_EQ(select_secret_value(json, "empty").value(), "");
}

TEST(SelectSecretValue, AMissingKeyIsAnErrorThatDoesNotQuoteTheSecret) {
  for (std::string secret : {std::string(R"({"user": "hunter2"})"), std::string("hunter2"),
                             std::string(R"(["hunter2"])")}) {
    auto value = select_secret_value(secret, "password");
    ASSERT_FALSE(value) << secret;
    EXPECT_EQ(value.error().code, ErrorCode::kInvalidParameter);
    EXPECT_NE(value.error().message.find("no JSON key 'password'"), std::string::npos);
    EXPECT_EQ(value.error().message.find("hunter2"), std::string::npos) << value.error().message;
  }
}

TEST(RegistryCredentialsFromSecret, NeedsStringUsernameAndPassword) {
  auto credentials = registry_credentials_from_secret(R"({"username": "alice", "password": "pw"})");
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->username, "alice");
  EXPECT_EQ(credentials->password, "pw");
  for (std::string bad : {"hunter2", R"({"username": "alice"})", R"({"password": "hunter2"})",
                          R"({"username": 7, "password": "hunter2"})", R"(["hunter2"])"}) {
    auto refused = registry_credentials_from_secret(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message.find(
                  R"(store the registry login as {"username": "...", "password": "..."})"),
              std::string::npos);
    EXPECT_EQ(refused.error().message.find("hunter2"), std::string::npos);
  }
}

// A SecretFetcher over a map, counting the calls.
struct FakeSecrets {
  std::map<SecretRef, Result<std::string>> values;
  std::vector<SecretRef> asked;

  SecretFetcher fetcher() {
    return [this](const SecretRef& secret) -> Result<std::string> {
      asked.push_back(secret);
      auto found = values.find(secret);
      if (found != values.end()) return found->second;
      return fail(ErrorCode::kNotFound,
                  "GetSecretValue: HTTP 400 ResourceNotFoundException: Secrets Manager can't "
                  "find the specified secret.");
    };
  }
};

bj::object secret_entry(const std::string& name, const std::string& value_from) {
  return bj::object{{"name", name}, {"valueFrom", value_from}};
}

TEST(FetchContainerSecrets, FetchesEachSecretVersionOnce) {
  std::string app = std::string(kArn) + "app-AbCdEf";
  std::string db = std::string(kArn) + "db";
  FakeSecrets secrets;
  secrets.values[ref(app)] = R"({"user": "admin", "password": "hunter2"})";
  secrets.values[ref(db, "AWSPREVIOUS")] = "old-password";
  secrets.values[ref("registry")] = R"({"username": "alice", "password": "pw"})";
  bj::object container{{"name", "web"},
                       {"repositoryCredentials", bj::object{{"credentialsParameter", "registry"}}},
                       {"secrets", bj::array{secret_entry("DB_USER", app + ":user::"),
                                             secret_entry("DB_PASSWORD", app + ":password::"),
                                             secret_entry("OLD_PASSWORD", db + "::AWSPREVIOUS:")}}};
  auto fetched = fetch_container_secrets(container, secrets.fetcher());
  ASSERT_TRUE(fetched) << fetched.error().message;
  ASSERT_TRUE(fetched->registry.has_value());
  EXPECT_EQ(fetched->registry->username, "alice");
  EXPECT_EQ(fetched->registry->password, "pw");
  using Variables = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(fetched->environment, (Variables{{"DB_USER", "admin"},
                                             {"DB_PASSWORD", "hunter2"},
                                             {"OLD_PASSWORD", "old-password"}}));
  EXPECT_EQ(secrets.asked,
            (std::vector<SecretRef>{ref("registry"), ref(app), ref(db, "AWSPREVIOUS")}));
}

TEST(FetchContainerSecrets, NothingToFetchWithoutSecrets) {
  FakeSecrets secrets;
  auto fetched = fetch_container_secrets(bj::object{{"name", "web"}}, secrets.fetcher());
  ASSERT_TRUE(fetched);
  EXPECT_FALSE(fetched->registry.has_value());
  EXPECT_TRUE(fetched->environment.empty());
  EXPECT_TRUE(secrets.asked.empty());
  EXPECT_TRUE(fetch_container_secrets(bj::object{{"name", "web"}}, SecretFetcher{}));
}

TEST(FetchContainerSecrets, FailuresReadAsEcsReasons) {
  const std::string asm_failure =
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
      "retrieval failed: unable to retrieve secret from asm: ";
  std::string db = std::string(kArn) + "db";
  FakeSecrets secrets;
  secrets.values[ref("registry")] = "hunter2";
  secrets.values[ref(db)] = R"({"user": "hunter2"})";

  auto missing = fetch_container_secrets(
      bj::object{{"secrets", bj::array{secret_entry("A", std::string(kArn) + "gone")}}},
      secrets.fetcher());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            asm_failure + "failed to fetch secret " + std::string(kArn) +
                "gone from secrets manager: GetSecretValue: HTTP 400 ResourceNotFoundException: "
                "Secrets Manager can't find the specified secret.");

  auto no_key = fetch_container_secrets(
      bj::object{{"secrets", bj::array{secret_entry("PASSWORD", db + ":password::")}}},
      secrets.fetcher());
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().message,
            asm_failure + "secret PASSWORD (" + db + "): the secret has no JSON key 'password'");

  auto registry_login = fetch_container_secrets(
      bj::object{{"repositoryCredentials", bj::object{{"credentialsParameter", "registry"}}}},
      secrets.fetcher());
  ASSERT_FALSE(registry_login);
  EXPECT_TRUE(registry_login.error().message.starts_with(std::string(kSecretsFailure) +
                                                         ": the repositoryCredentials secret "
                                                         "registry: its SecretString is not JSON"))
      << registry_login.error().message;
  EXPECT_EQ(registry_login.error().message.find("hunter2"), std::string::npos);

  auto no_client = fetch_container_secrets(
      bj::object{{"secrets", bj::array{secret_entry("A", db)}}}, SecretFetcher{});
  ASSERT_FALSE(no_client);
  EXPECT_TRUE(no_client.error().message.starts_with(asm_failure));
}

TEST(FetchContainerSecrets, SsmParametersAreFetchedWithEcsWordsOnFailure) {
  FakeSecrets secrets;
  std::string arn = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db";
  secrets.values.emplace(parameter(arn), std::string("hunter2"));
  auto fetched = fetch_container_secrets(
      bj::object{{"secrets", bj::array{secret_entry("DB", arn)}}}, secrets.fetcher());
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->environment,
            (std::vector<std::pair<std::string, std::string>>{{"DB", "hunter2"}}));
  EXPECT_EQ(secrets.asked, std::vector<SecretRef>{parameter(arn)});

  auto missing = fetch_container_secrets(
      bj::object{{"secrets", bj::array{secret_entry("DB", "/prod/missing")}}}, secrets.fetcher());
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().message.starts_with(
      std::string(kSecretsFailure) +
      ": unable to retrieve secrets from ssm: failed to fetch parameter /prod/missing from "
      "parameter store: "))
      << missing.error().message;
}

// A client of the fake service for Secrets Manager or SSM.
class AwsClientTest : public testkit::FakeAwsServiceTest {
 protected:
  AwsJsonClient client(AwsJsonService service) const {
    AwsJsonClientOptions options;
    options.endpoint = endpoint();
    options.credentials = {"AKIDEXAMPLE", "secret", "", "us-east-1"};
    options.service = service;
    return AwsJsonClient(options, clock_);
  }

  SystemClock clock_;
};

using GetSecretValueTest = AwsClientTest;
using GetParameterValueTest = AwsClientTest;

TEST_F(GetSecretValueTest, AsksForTheVersionAndReturnsTheSecretString) {
  service_.answer(200, R"({"ARN": "arn", "Name": "db", "VersionId": "v1",
                            "SecretString": "hunter2", "VersionStages": ["AWSPREVIOUS"]})");
  AwsJsonClient secrets = client(kSecretsManagerService);
  auto value = get_secret_value(secrets, ref("db", "AWSPREVIOUS", "v1"));
  ASSERT_TRUE(value) << value.error().message;
  EXPECT_EQ(*value, "hunter2");
  ASSERT_TRUE(get_secret_value(secrets, ref("db")));
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "secretsmanager.GetSecretValue");
  EXPECT_EQ(bj::parse(requests[0].body),
            (bj::object{{"SecretId", "db"}, {"VersionId", "v1"}, {"VersionStage", "AWSPREVIOUS"}}));
  EXPECT_EQ(bj::parse(requests[1].body), (bj::object{{"SecretId", "db"}}));
}

TEST_F(GetSecretValueTest, BinarySecretsAndErrorsAreErrors) {
  AwsJsonClient secrets = client(kSecretsManagerService);
  service_.answer(200, R"({"Name": "db", "SecretBinary": "aHVudGVyMg=="})");
  auto binary = get_secret_value(secrets, ref("db"));
  ASSERT_FALSE(binary);
  EXPECT_EQ(binary.error().code, ErrorCode::kInvalidParameter);
  EXPECT_NE(binary.error().message.find("SecretBinary"), std::string::npos);

  service_.answer(400, R"({"__type": "ResourceNotFoundException", "message": "not there"})");
  auto missing = get_secret_value(secrets, ref("db"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            "GetSecretValue: HTTP 400 ResourceNotFoundException: not there");
}

TEST_F(GetParameterValueTest, AsksForTheDecryptedParameter) {
  service_.answer(200, R"({"Parameters": [{"Name": "/prod/db", "Type": "SecureString",
                                            "Value": "hunter2", "Version": 3}],
                           "InvalidParameters": []})");
  AwsJsonClient ssm = client(kSsmService);
  auto value = get_parameter_value(ssm, parameter("/prod/db"));
  ASSERT_TRUE(value) << value.error().message;
  EXPECT_EQ(*value, "hunter2");
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "AmazonSSM.GetParameters");
  EXPECT_NE(requests[0].authorization.find("/us-east-1/ssm/aws4_request"), std::string::npos);
  EXPECT_EQ(bj::parse(requests[0].body),
            (bj::object{{"Names", bj::array{"/prod/db"}}, {"WithDecryption", true}}));
}

TEST_F(GetParameterValueTest, AnInvalidParameterIsNotFound) {
  service_.answer(200, R"({"Parameters": [], "InvalidParameters": ["/prod/db"]})");
  AwsJsonClient ssm = client(kSsmService);
  auto value = get_parameter_value(ssm, parameter("/prod/db"));
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(value.error().message, "GetParameters: InvalidParameters: /prod/db");
}

}  // namespace
}  // namespace wharf::agent
