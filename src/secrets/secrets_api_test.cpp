// Unit tests for the Secrets Manager API, called through the JSON service as the router calls them
// (after model validation), over a real SQLite store in a temporary directory.
#include "secrets/secrets_api.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "aws/errors.hpp"
#include "aws/json_api_testing.hpp"
#include "aws/service_model.hpp"
#include "common/json.hpp"

namespace wharf::secrets {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;

constexpr const char* kToken1 = "11111111-1111-1111-1111-111111111111";
constexpr const char* kToken2 = "22222222-2222-2222-2222-222222222222";

class SecretsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/wharf-secrets-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    open();
  }
  void TearDown() override {
    close();
    fs::remove_all(dir_);
  }

  void open() {
    auto store = store::open_sqlite_store((dir_ / "wharf.db").string());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    api_ = std::make_unique<SecretsApi>(*store_, clock_, tokens_);
    ASSERT_TRUE(api_->load());
    service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::secretsmanager(),
                                                  "secretsmanager", "1.1");
    api_->register_operations(*service_);
  }
  void close() {
    service_.reset();
    api_.reset();
    if (store_) store_->close();
    store_.reset();
  }

  // Calls as the router does (model validation first); see aws/json_api_testing.hpp.
  Result<bj::object> call(const std::string& operation, bj::object input,
                          std::string region = "us-east-1") {
    return aws::testing::JsonServiceCaller(*service_).call(operation, std::move(input),
                                                           std::move(region));
  }
  bj::object ok(const std::string& operation, bj::object input) {
    return aws::testing::JsonServiceCaller(*service_).ok(operation, std::move(input));
  }
  void expect_error(const std::string& operation, bj::object input, std::string_view type,
                    std::string_view message_part = "") {
    aws::testing::JsonServiceCaller(*service_).expect_error(operation, std::move(input), type,
                                                            message_part);
  }

  std::string value_of(const std::string& secret_id, bj::object extra = {}) {
    extra["SecretId"] = secret_id;
    return json::string_or(ok("GetSecretValue", std::move(extra)), "SecretString", "<none>");
  }

  std::vector<std::string> listed_names(bj::object input = {}) {
    std::vector<std::string> names;
    bj::object listed = ok("ListSecrets", std::move(input));
    for (const auto& entry : listed["SecretList"].as_array()) {
      names.emplace_back(entry.as_object().at("Name").as_string());
    }
    return names;
  }

  fs::path dir_;
  ManualClock clock_{TimePoint(std::chrono::seconds(1'700'000'000))};
  aws::PageTokens tokens_{"paging-secret"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<SecretsApi> api_;
  std::unique_ptr<aws::JsonService> service_;
};

TEST_F(SecretsApiTest, CreateAndGetByNameFullArnAndPartialArn) {
  auto created = ok("CreateSecret", {{"Name", "prod/db"},
                                     {"SecretString", R"({"password":"hunter2"})"},
                                     {"ClientRequestToken", kToken1},
                                     {"Description", "the database"}});
  std::string arn(created["ARN"].as_string());
  EXPECT_TRUE(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-"));
  EXPECT_EQ(
      arn.size(),
      std::string("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-").size() + 6);
  EXPECT_EQ(created["VersionId"], kToken1);

  EXPECT_EQ(value_of("prod/db"), R"({"password":"hunter2"})");
  EXPECT_EQ(value_of(arn), R"({"password":"hunter2"})");
  EXPECT_EQ(value_of("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db"),
            R"({"password":"hunter2"})");
  auto got = ok("GetSecretValue", {{"SecretId", "prod/db"}});
  EXPECT_EQ(got["VersionStages"], (bj::array{"AWSCURRENT"}));
  EXPECT_EQ(got["VersionId"], kToken1);
  EXPECT_EQ(got["ARN"].as_string(), arn);

  expect_error("GetSecretValue", {{"SecretId", "prod/nope"}}, "ResourceNotFoundException",
               "can't find the specified secret");
  // The right name with the wrong suffix, region or account names no secret.
  expect_error(
      "GetSecretValue",
      {{"SecretId", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-XXXXXX"}},
      "ResourceNotFoundException");
  expect_error("GetSecretValue",
               {{"SecretId", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db"}},
               "ResourceNotFoundException");
  expect_error("GetSecretValue", {{"SecretId", "arn:aws:ecs:us-east-1:123456789012:cluster/x"}},
               "InvalidParameterException", "is not a secret ARN");
  // Another region has its own secrets.
  auto elsewhere = call("GetSecretValue", {{"SecretId", "prod/db"}}, "eu-west-1");
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, ErrorCode::kNotFound);
}

TEST_F(SecretsApiTest, CreateRefusesBadInputAndDuplicates) {
  expect_error("CreateSecret", {{"Name", "bad name"}, {"SecretString", "x"}},
               "InvalidParameterException", "may contain only");
  expect_error("CreateSecret", {{"Name", "both"}, {"SecretString", "x"}, {"SecretBinary", "eA=="}},
               "InvalidParameterException", "both a binary secret value and a string");
  expect_error("CreateSecret", {{"Name", "tagged"}, {"Tags", bj::array{{{"Key", "aws:x"}}}}},
               "InvalidParameterException", "reserved");
  expect_error("CreateSecret", {{"Name", "bin"}, {"SecretBinary", "***"}},
               "InvalidParameterException", "base64");

  ok("CreateSecret", {{"Name", "dup"}, {"SecretString", "a"}, {"ClientRequestToken", kToken1}});
  // The same request again (a retry) is answered as the first was.
  auto again =
      ok("CreateSecret", {{"Name", "dup"}, {"SecretString", "a"}, {"ClientRequestToken", kToken1}});
  EXPECT_EQ(again["VersionId"], kToken1);
  expect_error(
      "CreateSecret", {{"Name", "dup"}, {"SecretString", "b"}, {"ClientRequestToken", kToken2}},
      "ResourceExistsException", "The operation failed because the secret dup already exists");
}

TEST_F(SecretsApiTest, PutSecretValueMovesStagesAndKeepsVersionsImmutable) {
  ok("CreateSecret", {{"Name", "app"}, {"SecretString", "v1"}, {"ClientRequestToken", kToken1}});
  auto put = ok("PutSecretValue",
                {{"SecretId", "app"}, {"SecretString", "v2"}, {"ClientRequestToken", kToken2}});
  EXPECT_EQ(put["VersionStages"], (bj::array{"AWSCURRENT"}));
  EXPECT_EQ(value_of("app"), "v2");
  EXPECT_EQ(value_of("app", {{"VersionStage", "AWSPREVIOUS"}}), "v1");
  EXPECT_EQ(value_of("app", {{"VersionId", kToken1}}), "v1");

  // A retry is fine; the same token with another value is not.
  ok("PutSecretValue",
     {{"SecretId", "app"}, {"SecretString", "v2"}, {"ClientRequestToken", kToken2}});
  expect_error("PutSecretValue",
               {{"SecretId", "app"}, {"SecretString", "other"}, {"ClientRequestToken", kToken2}},
               "ResourceExistsException", "only create a new version");
  expect_error("PutSecretValue", {{"SecretId", "app"}}, "InvalidParameterException",
               "either SecretString or SecretBinary");

  // A custom stage moves off the version that had it, AWSCURRENT stays.
  ok("PutSecretValue",
     {{"SecretId", "app"}, {"SecretString", "v3"}, {"VersionStages", bj::array{"PENDING"}}});
  EXPECT_EQ(value_of("app"), "v2");
  EXPECT_EQ(value_of("app", {{"VersionStage", "PENDING"}}), "v3");
  expect_error("GetSecretValue", {{"SecretId", "app"}, {"VersionStage", "NOPE"}},
               "ResourceNotFoundException", "staging label: NOPE");
  expect_error("GetSecretValue",
               {{"SecretId", "app"}, {"VersionId", kToken1}, {"VersionStage", "AWSCURRENT"}},
               "InvalidParameterException", "does not have the staging label");

  auto described = ok("DescribeSecret", {{"SecretId", "app"}});
  const auto& stages = described["VersionIdsToStages"].as_object();
  EXPECT_EQ(stages.at(kToken1), (bj::array{"AWSPREVIOUS"}));
  EXPECT_EQ(stages.at(kToken2), (bj::array{"AWSCURRENT"}));
  EXPECT_EQ(stages.size(), 3u);
  auto versions = ok("ListSecretVersionIds", {{"SecretId", "app"}});
  EXPECT_EQ(versions["Versions"].as_array().size(), 3u);
}

TEST_F(SecretsApiTest, BinarySecretsAndUpdateSecret) {
  ok("CreateSecret", {{"Name", "key"}, {"SecretBinary", "AAEC"}});
  auto got = ok("GetSecretValue", {{"SecretId", "key"}});
  EXPECT_EQ(got["SecretBinary"], "AAEC");
  EXPECT_FALSE(got.contains("SecretString"));

  auto updated =
      ok("UpdateSecret",
         {{"SecretId", "key"}, {"Description", "now a string"}, {"SecretString", "text"}});
  EXPECT_TRUE(updated.contains("VersionId"));
  EXPECT_EQ(value_of("key"), "text");
  EXPECT_EQ(ok("DescribeSecret", {{"SecretId", "key"}})["Description"], "now a string");
  // Only the description: no new version.
  auto described = ok("UpdateSecret", {{"SecretId", "key"}, {"Description", "again"}});
  EXPECT_FALSE(described.contains("VersionId"));
  EXPECT_EQ(value_of("key"), "text");
}

TEST_F(SecretsApiTest, ASecretWithoutValueHasNoCurrentVersion) {
  ok("CreateSecret", {{"Name", "empty"}});
  expect_error("GetSecretValue", {{"SecretId", "empty"}}, "ResourceNotFoundException",
               "staging label: AWSCURRENT");
}

TEST_F(SecretsApiTest, ScheduledDeletionRestoreAndExpiry) {
  ok("CreateSecret", {{"Name", "old"}, {"SecretString", "x"}});
  expect_error("DeleteSecret", {{"SecretId", "old"}, {"RecoveryWindowInDays", 3}},
               "InvalidParameterException", "between 7 and 30 days");
  expect_error(
      "DeleteSecret",
      {{"SecretId", "old"}, {"RecoveryWindowInDays", 7}, {"ForceDeleteWithoutRecovery", true}},
      "InvalidParameterException", "in conjunction with RecoveryWindowInDays");

  auto deleted = ok("DeleteSecret", {{"SecretId", "old"}, {"RecoveryWindowInDays", 7}});
  EXPECT_DOUBLE_EQ(deleted["DeletionDate"].to_number<double>(),
                   epoch_seconds(clock_.now() + std::chrono::days(7)));
  expect_error("GetSecretValue", {{"SecretId", "old"}}, "InvalidRequestException",
               "marked for deletion");
  expect_error("CreateSecret", {{"Name", "old"}, {"SecretString", "y"}}, "InvalidRequestException",
               "already scheduled for deletion");
  EXPECT_TRUE(ok("DescribeSecret", {{"SecretId", "old"}}).contains("DeletedDate"));
  EXPECT_TRUE(listed_names().empty());
  EXPECT_EQ(listed_names({{"IncludePlannedDeletion", true}}), std::vector<std::string>{"old"});

  ok("RestoreSecret", {{"SecretId", "old"}});
  EXPECT_EQ(value_of("old"), "x");

  ok("DeleteSecret", {{"SecretId", "old"}});  // 30 days by default
  clock_.advance(std::chrono::days(29));
  expect_error("GetSecretValue", {{"SecretId", "old"}}, "InvalidRequestException");
  clock_.advance(std::chrono::days(2));
  expect_error("DescribeSecret", {{"SecretId", "old"}}, "ResourceNotFoundException");
  // The next write in the region removes the expired record from the store too.
  ok("CreateSecret", {{"Name", "other"}, {"SecretString", "y"}});
  auto records = store_->load("secretsmanager.secret");
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].key, "us-east-1/other");
  // The name is free again.
  ok("CreateSecret", {{"Name", "old"}, {"SecretString", "new"}});
  close();
  open();
  EXPECT_EQ(value_of("old"), "new");
}

TEST_F(SecretsApiTest, AFullArnNamesItsOwnSecretEvenWhenANameLooksLikeIt) {
  std::string arn(
      ok("CreateSecret", {{"Name", "app"}, {"SecretString", "mine"}})["ARN"].as_string());
  std::string suffixed_name = "app" + arn.substr(arn.rfind('-'));
  ok("CreateSecret", {{"Name", suffixed_name}, {"SecretString", "other"}});
  EXPECT_EQ(value_of(arn), "mine");
  EXPECT_EQ(value_of(suffixed_name), "other");
}

TEST_F(SecretsApiTest, AVersionGivenAwsPreviousKeepsItAlone) {
  ok("CreateSecret", {{"Name", "p"}, {"SecretString", "v1"}, {"ClientRequestToken", kToken1}});
  ok("PutSecretValue", {{"SecretId", "p"},
                        {"SecretString", "v2"},
                        {"ClientRequestToken", kToken2},
                        {"VersionStages", bj::array{"AWSPREVIOUS", "AWSCURRENT"}}});
  auto stages = ok("DescribeSecret", {{"SecretId", "p"}})["VersionIdsToStages"].as_object();
  EXPECT_EQ(stages.size(), 1u) << bj::serialize(stages);
  EXPECT_EQ(stages.at(kToken2), (bj::array{"AWSPREVIOUS", "AWSCURRENT"}));
}

TEST_F(SecretsApiTest, AReadDoesNotFailWhenItsLastAccessCannotBeRecorded) {
  ok("CreateSecret", {{"Name", "read"}, {"SecretString", "x"}});
  clock_.advance(std::chrono::days(1));  // a new day: the read records its access
  store_->close();                       // every commit fails from now on
  EXPECT_EQ(value_of("read"), "x");
  auto batch = ok("BatchGetSecretValue", {{"SecretIdList", bj::array{"read"}}});
  EXPECT_EQ(batch["SecretValues"].as_array().size(), 1u);
}

TEST_F(SecretsApiTest, ForceDeleteRemovesAtOnce) {
  ok("CreateSecret", {{"Name", "gone"}, {"SecretString", "x"}});
  ok("DeleteSecret", {{"SecretId", "gone"}, {"ForceDeleteWithoutRecovery", true}});
  expect_error("GetSecretValue", {{"SecretId", "gone"}}, "ResourceNotFoundException");
  ok("CreateSecret", {{"Name", "gone"}, {"SecretString", "again"}});
}

TEST_F(SecretsApiTest, EverythingAcknowledgedSurvivesAReopen) {
  ok("CreateSecret", {{"Name", "kept"},
                      {"SecretString", "v1"},
                      {"Tags", bj::array{bj::object{{"Key", "team"}, {"Value", "web"}}}}});
  ok("PutSecretValue", {{"SecretId", "kept"}, {"SecretString", "v2"}});
  std::string arn(ok("DescribeSecret", {{"SecretId", "kept"}})["ARN"].as_string());
  close();
  open();
  EXPECT_EQ(value_of("kept"), "v2");
  EXPECT_EQ(value_of("kept", {{"VersionStage", "AWSPREVIOUS"}}), "v1");
  auto described = ok("DescribeSecret", {{"SecretId", arn}});
  EXPECT_EQ(described["Tags"], (bj::array{bj::object{{"Key", "team"}, {"Value", "web"}}}));
  EXPECT_TRUE(described.contains("LastAccessedDate"));
}

TEST_F(SecretsApiTest, ListSecretsFiltersSortsAndPages) {
  for (const char* name : {"prod/db", "prod/api", "dev/db", "Prod/cache"}) {
    ok("CreateSecret", {{"Name", name}, {"SecretString", "x"}});
    clock_.advance(std::chrono::seconds(1));
  }
  ok("TagResource",
     {{"SecretId", "dev/db"}, {"Tags", bj::array{bj::object{{"Key", "team"}, {"Value", "data"}}}}});
  ok("UpdateSecret", {{"SecretId", "prod/api"}, {"Description", "Public API keys"}});

  // Newest first by default.
  EXPECT_EQ(listed_names(),
            (std::vector<std::string>{"Prod/cache", "dev/db", "prod/api", "prod/db"}));
  EXPECT_EQ(listed_names({{"SortOrder", "asc"}, {"SortBy", "name"}}),
            (std::vector<std::string>{"Prod/cache", "dev/db", "prod/api", "prod/db"}));
  auto filter = [](const char* key, bj::array values) {
    return bj::object{{"Filters", bj::array{bj::object{{"Key", key}, {"Values", values}}}},
                      {"SortOrder", "asc"}};
  };
  // name: a case-sensitive prefix; '!' negates.
  EXPECT_EQ(listed_names(filter("name", {"prod/"})),
            (std::vector<std::string>{"prod/db", "prod/api"}));
  EXPECT_EQ(listed_names(filter("name", {"!prod/"})),
            (std::vector<std::string>{"dev/db", "Prod/cache"}));
  EXPECT_EQ(listed_names(filter("description", {"public"})),
            (std::vector<std::string>{"prod/api"}));
  EXPECT_EQ(listed_names(filter("tag-key", {"te"})), (std::vector<std::string>{"dev/db"}));
  EXPECT_EQ(listed_names(filter("tag-value", {"data"})), (std::vector<std::string>{"dev/db"}));
  // all: words, any attribute, any case.
  EXPECT_EQ(listed_names(filter("all", {"CACHE"})), (std::vector<std::string>{"Prod/cache"}));
  EXPECT_EQ(listed_names(filter("all", {"api data"})),
            (std::vector<std::string>{"prod/api", "dev/db"}));

  // Pages of two, then the rest; a token from another listing is refused.
  auto first = ok("ListSecrets", {{"MaxResults", 2}});
  ASSERT_EQ(first["SecretList"].as_array().size(), 2u);
  std::string token(first["NextToken"].as_string());
  auto second = ok("ListSecrets", {{"MaxResults", 2}, {"NextToken", token}});
  EXPECT_EQ(second["SecretList"].as_array().size(), 2u);
  EXPECT_FALSE(second.contains("NextToken"));
  expect_error("ListSecrets", {{"NextToken", token}, {"SortOrder", "asc"}},
               "InvalidNextTokenException");
}

TEST_F(SecretsApiTest, TagsAreMergedRemovedAndLimited) {
  ok("CreateSecret", {{"Name", "t"}});
  ok("TagResource", {{"SecretId", "t"},
                     {"Tags", bj::array{bj::object{{"Key", "a"}, {"Value", "1"}},
                                        bj::object{{"Key", "b"}, {"Value", "2"}}}}});
  ok("TagResource",
     {{"SecretId", "t"}, {"Tags", bj::array{bj::object{{"Key", "a"}, {"Value", "3"}}}}});
  ok("UntagResource", {{"SecretId", "t"}, {"TagKeys", bj::array{"b"}}});
  EXPECT_EQ(ok("DescribeSecret", {{"SecretId", "t"}})["Tags"],
            (bj::array{bj::object{{"Key", "a"}, {"Value", "3"}}}));
  bj::array many;
  for (int tag_idx = 0; tag_idx < 50; ++tag_idx) {
    many.push_back(bj::object{{"Key", "k" + std::to_string(tag_idx)}, {"Value", ""}});
  }
  expect_error("TagResource", {{"SecretId", "t"}, {"Tags", many}}, "InvalidParameterException",
               "at most 50 tags");
}

TEST_F(SecretsApiTest, BatchGetSecretValueReportsEachSecret) {
  ok("CreateSecret", {{"Name", "one"}, {"SecretString", "1"}});
  ok("CreateSecret", {{"Name", "two"}, {"SecretString", "2"}});
  auto batch = ok("BatchGetSecretValue", {{"SecretIdList", bj::array{"one", "two", "three"}}});
  ASSERT_EQ(batch["SecretValues"].as_array().size(), 2u);
  EXPECT_EQ(batch["SecretValues"].as_array()[1].as_object().at("SecretString"), "2");
  ASSERT_EQ(batch["Errors"].as_array().size(), 1u);
  EXPECT_EQ(batch["Errors"].as_array()[0].as_object().at("ErrorCode"), "ResourceNotFoundException");
  expect_error("BatchGetSecretValue", {}, "InvalidParameterException", "SecretIdList or Filters");
  expect_error("BatchGetSecretValue", {{"SecretIdList", bj::array{"one"}}, {"MaxResults", 1}},
               "InvalidParameterException", "page a listing by Filters");
  auto filtered = ok("BatchGetSecretValue",
                     {{"Filters", bj::array{bj::object{{"Key", "name"}, {"Values", {"tw"}}}}}});
  EXPECT_EQ(filtered["SecretValues"].as_array().size(), 1u);
}

TEST_F(SecretsApiTest, GetRandomPasswordHonoursItsOptions) {
  auto password = ok("GetRandomPassword", {{"PasswordLength", 40}, {"ExcludePunctuation", true}});
  std::string text(password["RandomPassword"].as_string());
  EXPECT_EQ(text.size(), 40u);
  EXPECT_TRUE(std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c);
  })) << text;
  expect_error("GetRandomPassword",
               {{"ExcludeLowercase", true},
                {"ExcludeUppercase", true},
                {"ExcludeNumbers", true},
                {"ExcludePunctuation", true}},
               "InvalidParameterException", "exclude every character");
}

TEST(SecretsErrors, ServerFaultsAreInternalServiceError) {
  EXPECT_EQ(aws::to_wire(Error{ErrorCode::kInternal, "disk"}, "secretsmanager").type,
            "InternalServiceError");
  EXPECT_EQ(aws::to_wire(Error{ErrorCode::kInternal, "disk"}, "secretsmanager").status, 500);
}

}  // namespace
}  // namespace wharf::secrets
