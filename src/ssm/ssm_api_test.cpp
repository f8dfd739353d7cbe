// Unit tests for the Parameter Store API, called through the JSON service as the router calls
// them (after model validation), over a real SQLite store in a temporary directory.
#include "ssm/ssm_api.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "aws/errors.hpp"
#include "aws/json_api_testing.hpp"
#include "aws/service_model.hpp"
#include "common/crypto.hpp"
#include "common/json.hpp"

namespace wharf::ssm {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;

constexpr const char* kArnPrefix = "arn:aws:ssm:us-east-1:123456789012:parameter";

class SsmApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/wharf-ssm-test-XXXXXX";
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
    api_ = std::make_unique<SsmApi>(*store_, clock_, tokens_);
    ASSERT_TRUE(api_->load());
    service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::ssm(), "ssm", "1.1");
    api_->register_operations(*service_);
  }
  void close() {
    service_.reset();
    api_.reset();
    if (store_) store_->close();
    store_.reset();
  }

  aws::testing::JsonServiceCaller caller() const {
    return aws::testing::JsonServiceCaller(*service_);
  }
  bj::object ok(const std::string& operation, bj::object input) {
    return caller().ok(operation, std::move(input));
  }
  void expect_error(const std::string& operation, bj::object input, std::string_view type,
                    std::string_view message_part = "") {
    caller().expect_error(operation, std::move(input), type, message_part);
  }

  std::int64_t put(const std::string& name, const std::string& value, bj::object extra = {}) {
    extra["Name"] = name;
    extra["Value"] = value;
    if (!extra.contains("Type")) extra["Type"] = "String";
    return ok("PutParameter", std::move(extra))["Version"].as_int64();
  }
  bj::object get(const std::string& name, bool decrypt = false) {
    return ok("GetParameter", {{"Name", name}, {"WithDecryption", decrypt}})["Parameter"]
        .as_object();
  }
  std::string value_of(const std::string& name, bool decrypt = false) {
    return std::string(get(name, decrypt)["Value"].as_string());
  }
  static std::vector<std::string> names_in(const bj::object& output,
                                           const char* member = "Parameters") {
    std::vector<std::string> names;
    for (const auto& item : output.at(member).as_array()) {
      names.emplace_back(item.as_object().at("Name").as_string());
    }
    return names;
  }

  fs::path dir_;
  ManualClock clock_{TimePoint(std::chrono::seconds(1'700'000'000))};
  aws::PageTokens tokens_{"paging-secret"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<SsmApi> api_;
  std::unique_ptr<aws::JsonService> service_;
};

TEST_F(SsmApiTest, PutThenGetByNameAndArn) {
  auto put_output = ok("PutParameter", {{"Name", "/prod/db/host"},
                                        {"Value", "db.internal"},
                                        {"Type", "String"},
                                        {"Description", "the database"}});
  EXPECT_EQ(put_output["Version"], 1);
  EXPECT_EQ(put_output["Tier"], "Standard");
  auto parameter = get("/prod/db/host");
  EXPECT_EQ(parameter["Name"], "/prod/db/host");
  EXPECT_EQ(parameter["Type"], "String");
  EXPECT_EQ(parameter["Value"], "db.internal");
  EXPECT_EQ(parameter["Version"], 1);
  EXPECT_EQ(parameter["ARN"], bj::value(std::string(kArnPrefix) + "/prod/db/host"));
  EXPECT_EQ(parameter["DataType"], "text");
  EXPECT_EQ(parameter["LastModifiedDate"].to_number<double>(), 1'700'000'000);
  EXPECT_FALSE(parameter.contains("Selector"));
  EXPECT_EQ(value_of(std::string(kArnPrefix) + "/prod/db/host"), "db.internal");

  put("plain", "root level");
  EXPECT_EQ(value_of(std::string(kArnPrefix) + "/plain"), "root level");
  expect_error("GetParameter", {{"Name", "/prod/db/nope"}}, "ParameterNotFound",
               "Parameter /prod/db/nope not found");
  expect_error("GetParameter", {{"Name", "arn:aws:ssm:eu-west-1:123456789012:parameter/plain"}},
               "ValidationException", "region eu-west-1");
}

TEST_F(SsmApiTest, OverwriteMakesVersionsAndIsRequiredToChangeAValue) {
  put("/app/mode", "one");
  expect_error("PutParameter", {{"Name", "/app/mode"}, {"Value", "two"}, {"Type", "String"}},
               "ParameterAlreadyExists", "set the overwrite option");
  EXPECT_EQ(put("/app/mode", "two", {{"Overwrite", true}}), 2);
  // Type may be left out when updating; it is kept.
  EXPECT_EQ(ok("PutParameter",
               {{"Name", "/app/mode"}, {"Value", "three"}, {"Overwrite", true}})["Version"],
            3);
  EXPECT_EQ(value_of("/app/mode"), "three");
  EXPECT_EQ(get("/app/mode")["Type"], "String");
  expect_error("PutParameter", {{"Name", "/app/new"}, {"Value", "x"}}, "ValidationException",
               "type is required");
  expect_error(
      "PutParameter",
      {{"Name", "/app/mode"}, {"Value", "x"}, {"Type", "SecureString"}, {"Overwrite", true}},
      "HierarchyTypeMismatchException", "from String to SecureString");
  expect_error("PutParameter", {{"Name", "/app/empty"}, {"Value", ""}, {"Type", "String"}},
               "ValidationException", "must not be empty");
  expect_error("PutParameter", {{"Name", "/app/x"}, {"Value", "x"}, {"Type", "Number"}},
               "ValidationException", "enum value set");
  expect_error("PutParameter", {{"Name", "/app/bad name"}, {"Value", "x"}, {"Type", "String"}},
               "ValidationException", "only letters, digits");
  expect_error(
      "PutParameter",
      {{"Name", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16"}, {"Value", "x"}, {"Type", "String"}},
      "HierarchyLevelLimitExceededException");
  expect_error("PutParameter",
               {{"Name", "arn:aws:ssm:us-east-1:123456789012:parameter/x"},
                {"Value", "x"},
                {"Type", "String"}},
               "ValidationException");
}

TEST_F(SsmApiTest, TagsOnCreateButNotWithOverwrite) {
  put("/tagged", "v", {{"Tags", bj::array{bj::object{{"Key", "team"}, {"Value", "web"}}}}});
  auto tags = ok("ListTagsForResource", {{"ResourceType", "Parameter"}, {"ResourceId", "/tagged"}});
  EXPECT_EQ(tags["TagList"], (bj::array{bj::object{{"Key", "team"}, {"Value", "web"}}}));
  expect_error("PutParameter",
               {{"Name", "/tagged"},
                {"Value", "w"},
                {"Overwrite", true},
                {"Tags", bj::array{bj::object{{"Key", "a"}, {"Value", "b"}}}}},
               "ValidationException", "tags and overwrite can't be used together");
  EXPECT_EQ(value_of("/tagged"), "v");
}

TEST_F(SsmApiTest, TiersLimitValueSizes) {
  std::string four_kb(4096, 'a');
  EXPECT_EQ(put("/tier/standard", four_kb), 1);
  expect_error("PutParameter",
               {{"Name", "/tier/big"}, {"Value", four_kb + "b"}, {"Type", "String"}},
               "ValidationException", "maximum parameter value of 4096");
  auto advanced = ok("PutParameter", {{"Name", "/tier/big"},
                                      {"Value", std::string(8192, 'b')},
                                      {"Type", "String"},
                                      {"Tier", "Advanced"}});
  EXPECT_EQ(advanced["Tier"], "Advanced");
  expect_error("PutParameter",
               {{"Name", "/tier/bigger"},
                {"Value", std::string(8193, 'b')},
                {"Type", "String"},
                {"Tier", "Advanced"}},
               "ValidationException", "maximum parameter value of 8192");
  // Advanced stays Advanced, and cannot go back to Standard.
  EXPECT_EQ(
      ok("PutParameter", {{"Name", "/tier/big"}, {"Value", "small"}, {"Overwrite", true}})["Tier"],
      "Advanced");
  expect_error("PutParameter",
               {{"Name", "/tier/big"}, {"Value", "s"}, {"Overwrite", true}, {"Tier", "Standard"}},
               "ValidationException", "can't downgrade");
  auto intelligent = [&](const std::string& name, std::size_t size) {
    return ok("PutParameter", {{"Name", name},
                               {"Value", std::string(size, 'c')},
                               {"Type", "String"},
                               {"Tier", "Intelligent-Tiering"}})["Tier"];
  };
  EXPECT_EQ(intelligent("/tier/auto-small", 10), "Standard");
  EXPECT_EQ(intelligent("/tier/auto-large", 5000), "Advanced");
  auto described =
      ok("DescribeParameters",
         {{"ParameterFilters",
           bj::array{bj::object{{"Key", "Tier"}, {"Values", bj::array{"Advanced"}}}}}});
  EXPECT_EQ(names_in(described), (std::vector<std::string>{"/tier/auto-large", "/tier/big"}));
}

TEST_F(SsmApiTest, AllowedPatternChecksEveryNewValue) {
  put("/port", "8080", {{"AllowedPattern", "^\\d+$"}});
  expect_error("PutParameter", {{"Name", "/port"}, {"Value", "eighty"}, {"Overwrite", true}},
               "ParameterPatternMismatchException", "^\\d+$");
  EXPECT_EQ(put("/port", "81", {{"Overwrite", true}}), 2);
  expect_error("PutParameter",
               {{"Name", "/other"}, {"Value", "x"}, {"Type", "String"}, {"AllowedPattern", "(["}},
               "InvalidAllowedPatternException");
  auto history = ok("GetParameterHistory", {{"Name", "/port"}});
  EXPECT_EQ(history["Parameters"].as_array()[1].as_object()["AllowedPattern"], "^\\d+$");
}

// A backtracking matcher would take for ever on this (or overflow its stack on a longer value).
TEST_F(SsmApiTest, AnAllowedPatternCannotHoldUpTheServer) {
  std::string value(4000, 'a');
  expect_error(
      "PutParameter",
      {{"Name", "/slow"}, {"Value", value}, {"Type", "String"}, {"AllowedPattern", "(a|aa)*c"}},
      "ParameterPatternMismatchException");
  put("/long", value, {{"AllowedPattern", "(a|aa)*"}});
  expect_error(
      "PutParameter",
      {{"Name", "/backref"}, {"Value", "aa"}, {"Type", "String"}, {"AllowedPattern", "(a)\\1"}},
      "InvalidAllowedPatternException");
}

TEST_F(SsmApiTest, DataTypeIsText) {
  put("/dt", "x", {{"DataType", "text"}});
  EXPECT_EQ(get("/dt")["DataType"], "text");
  expect_error(
      "PutParameter",
      {{"Name", "/dt2"}, {"Value", "ami-1"}, {"Type", "String"}, {"DataType", "aws:ec2:image"}},
      "ValidationException", "not supported");
  expect_error("PutParameter",
               {{"Name", "/pol"}, {"Value", "x"}, {"Type", "String"}, {"Policies", "[]"}},
               "ValidationException", "policies");
}

TEST_F(SsmApiTest, SecureStringsNeedWithDecryption) {
  put("/prod/db/password", "hunter2", {{"Type", "SecureString"}});
  auto hidden = get("/prod/db/password");
  EXPECT_NE(hidden["Value"], "hunter2");
  auto token = base64_decode(std::string(hidden["Value"].as_string()));
  ASSERT_TRUE(token);
  EXPECT_EQ(*token, "wharf:ssm:not-decrypted:" + std::string(kArnPrefix) + "/prod/db/password:1");
  EXPECT_EQ(value_of("/prod/db/password", true), "hunter2");
  auto got =
      ok("GetParameters", {{"Names", bj::array{"/prod/db/password"}}, {"WithDecryption", true}});
  EXPECT_EQ(got["Parameters"].as_array()[0].as_object()["Value"], "hunter2");
  auto history = ok("GetParameterHistory", {{"Name", "/prod/db/password"}});
  EXPECT_NE(history["Parameters"].as_array()[0].as_object()["Value"], "hunter2");
  EXPECT_EQ(history["Parameters"].as_array()[0].as_object()["KeyId"], "alias/aws/ssm");

  put("/prod/api/key", "k", {{"Type", "SecureString"}, {"KeyId", "alias/mine"}});
  auto described =
      ok("DescribeParameters",
         {{"ParameterFilters",
           bj::array{bj::object{{"Key", "KeyId"}, {"Values", bj::array{"alias/mine"}}}}}});
  ASSERT_EQ(names_in(described), std::vector<std::string>{"/prod/api/key"});
  EXPECT_EQ(described["Parameters"].as_array()[0].as_object()["KeyId"], "alias/mine");
  expect_error("PutParameter",
               {{"Name", "/k2"}, {"Value", "x"}, {"Type", "SecureString"}, {"KeyId", "nokey"}},
               "InvalidKeyId");
  expect_error("PutParameter",
               {{"Name", "/k3"}, {"Value", "x"}, {"Type", "String"}, {"KeyId", "alias/mine"}},
               "ValidationException", "SecureString parameters only");
  // A String ignores WithDecryption either way.
  put("/plain", "shown");
  EXPECT_EQ(value_of("/plain"), "shown");
}

TEST_F(SsmApiTest, SelectorsPickVersionsAndLabels) {
  put("/sel", "one");
  put("/sel", "two", {{"Overwrite", true}});
  ok("LabelParameterVersion",
     {{"Name", "/sel"}, {"ParameterVersion", 1}, {"Labels", bj::array{"stable"}}});
  auto first = get("/sel:1");
  EXPECT_EQ(first["Value"], "one");
  EXPECT_EQ(first["Selector"], ":1");
  EXPECT_EQ(first["Name"], "/sel");
  EXPECT_EQ(value_of("/sel:stable"), "one");
  EXPECT_EQ(value_of("/sel"), "two");
  EXPECT_EQ(value_of(std::string(kArnPrefix) + "/sel:2"), "two");
  expect_error("GetParameter", {{"Name", "/sel:9"}}, "ParameterVersionNotFound", ":9");
  expect_error("GetParameter", {{"Name", "/sel:nolabel"}}, "ParameterVersionNotFound", ":nolabel");
  expect_error("GetParameter", {{"Name", "/sel:"}}, "ValidationException", "selector");
}

TEST_F(SsmApiTest, GetParametersReportsInvalidNames) {
  put("/a", "1");
  put("/b", "2");
  auto got = ok("GetParameters", {{"Names", bj::array{"/a", "/missing", "/b:1", "/b:7", "/a"}}});
  EXPECT_EQ(names_in(got), (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(got["InvalidParameters"], (bj::array{"/missing", "/b:7"}));
  EXPECT_EQ(ok("GetParameters", {{"Names", bj::array{"/a"}}})["InvalidParameters"], bj::array{});
  bj::array eleven;
  for (int name_idx = 0; name_idx < 11; ++name_idx)
    eleven.push_back(bj::string("/n" + std::to_string(name_idx)));
  expect_error("GetParameters", {{"Names", eleven}}, "ValidationException");
}

TEST_F(SsmApiTest, GetParametersByPathOneLevelOrRecursiveWithFilters) {
  put("/app/a", "1");
  put("/app/b", "2", {{"Type", "SecureString"}});
  put("/app/deep/c", "3");
  put("/apples", "4");
  put("/other/d", "5");
  put("root", "6");
  auto one_level = ok("GetParametersByPath", {{"Path", "/app"}});
  EXPECT_EQ(names_in(one_level), (std::vector<std::string>{"/app/a", "/app/b"}));
  EXPECT_NE(one_level["Parameters"].as_array()[1].as_object()["Value"], "2");
  auto recursive =
      ok("GetParametersByPath", {{"Path", "/app/"}, {"Recursive", true}, {"WithDecryption", true}});
  EXPECT_EQ(names_in(recursive), (std::vector<std::string>{"/app/a", "/app/b", "/app/deep/c"}));
  EXPECT_EQ(recursive["Parameters"].as_array()[1].as_object()["Value"], "2");
  EXPECT_EQ(names_in(ok("GetParametersByPath", {{"Path", "/"}})),
            (std::vector<std::string>{"/apples", "root"}));

  auto type_filter = [](const char* type) {
    return bj::array{bj::object{{"Key", "Type"}, {"Values", bj::array{type}}}};
  };
  auto secure = ok(
      "GetParametersByPath",
      {{"Path", "/app"}, {"Recursive", true}, {"ParameterFilters", type_filter("SecureString")}});
  EXPECT_EQ(names_in(secure), std::vector<std::string>{"/app/b"});

  put("/app/a", "1-new", {{"Overwrite", true}});
  ok("LabelParameterVersion",
     {{"Name", "/app/a"}, {"ParameterVersion", 1}, {"Labels", bj::array{"old"}}});
  auto labelled = ok("GetParametersByPath",
                     {{"Path", "/app"},
                      {"ParameterFilters", bj::array{bj::object{{"Key", "Label"},
                                                                {"Option", "Equals"},
                                                                {"Values", bj::array{"old"}}}}}});
  ASSERT_EQ(names_in(labelled), std::vector<std::string>{"/app/a"});
  EXPECT_EQ(labelled["Parameters"].as_array()[0].as_object()["Value"], "1");

  expect_error("GetParametersByPath", {{"Path", "app"}}, "ValidationException", "begins with '/'");
  expect_error(
      "GetParametersByPath",
      {{"Path", "/app"},
       {"ParameterFilters", bj::array{bj::object{{"Key", "Name"}, {"Values", bj::array{"x"}}}}}},
      "InvalidFilterKey");
  expect_error("GetParametersByPath",
               {{"Path", "/app"},
                {"ParameterFilters",
                 bj::array{bj::object{
                     {"Key", "Type"}, {"Option", "BeginsWith"}, {"Values", bj::array{"String"}}}}}},
               "InvalidFilterOption");
  expect_error("GetParametersByPath",
               {{"Path", "/app"}, {"ParameterFilters", type_filter("Number")}},
               "InvalidFilterValue");
}

TEST_F(SsmApiTest, GetParametersByPathPages) {
  for (int name_idx = 0; name_idx < 25; ++name_idx) {
    put("/paged/p" + std::string(name_idx < 10 ? "0" : "") + std::to_string(name_idx), "v");
  }
  std::vector<std::string> seen;
  bj::object input{{"Path", "/paged"}};
  int pages = 0;
  while (true) {
    auto page = ok("GetParametersByPath", input);
    ++pages;
    for (const auto& name : names_in(page)) seen.push_back(name);
    if (!page.contains("NextToken")) break;
    input["NextToken"] = page["NextToken"];
  }
  EXPECT_EQ(pages, 3);  // at most 10 a page by default
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "/paged/p00");
  EXPECT_EQ(seen.back(), "/paged/p24");
  auto small = ok("GetParametersByPath", {{"Path", "/paged"}, {"MaxResults", 4}});
  EXPECT_EQ(small["Parameters"].as_array().size(), 4u);
  expect_error("GetParametersByPath", {{"Path", "/paged"}, {"MaxResults", 11}},
               "ValidationException");
  expect_error("GetParametersByPath", {{"Path", "/paged"}, {"NextToken", "forged"}},
               "InvalidNextToken");
  // A token from another path is refused too.
  expect_error("GetParametersByPath", {{"Path", "/other"}, {"NextToken", small["NextToken"]}},
               "InvalidNextToken");
  // The parameter a page ended with may go before the next page is asked for.
  ok("DeleteParameter", {{"Name", "/paged/p03"}});
  auto next = ok("GetParametersByPath",
                 {{"Path", "/paged"}, {"MaxResults", 4}, {"NextToken", small["NextToken"]}});
  EXPECT_EQ(names_in(next),
            (std::vector<std::string>{"/paged/p04", "/paged/p05", "/paged/p06", "/paged/p07"}));
}

TEST_F(SsmApiTest, DeleteParameterAndDeleteParameters) {
  put("/del/a", "1");
  put("/del/b", "2");
  put("/del/c", "3");
  ok("DeleteParameter", {{"Name", "/del/a"}});
  expect_error("GetParameter", {{"Name", "/del/a"}}, "ParameterNotFound");
  expect_error("DeleteParameter", {{"Name", "/del/a"}}, "ParameterNotFound");
  expect_error("DeleteParameter", {{"Name", std::string(kArnPrefix) + "/del/b"}},
               "ValidationException", "takes the parameter's name");
  auto deleted = ok("DeleteParameters", {{"Names", bj::array{"/del/b", "/del/zz", "/del/c"}}});
  EXPECT_EQ(deleted["DeletedParameters"], (bj::array{"/del/b", "/del/c"}));
  EXPECT_EQ(deleted["InvalidParameters"], (bj::array{"/del/zz"}));
  // A deleted name starts again at version 1.
  EXPECT_EQ(put("/del/b", "again"), 1);
}

TEST_F(SsmApiTest, DescribeParametersFilters) {
  put("/svc/web/url", "u");
  put("/svc/web/tls/key", "k", {{"Type", "SecureString"}, {"Description", "tls key"}});
  put("/svc/db/list", "a,b", {{"Type", "StringList"}});
  put("loose", "l");
  auto describe = [&](bj::array filters) {
    return names_in(ok("DescribeParameters", {{"ParameterFilters", std::move(filters)}}));
  };
  auto filter = [](const char* key, const char* option, const char* value) {
    bj::object out{{"Key", key}, {"Values", bj::array{value}}};
    if (*option) out["Option"] = option;
    return out;
  };
  EXPECT_EQ(
      names_in(ok("DescribeParameters", {})),
      (std::vector<std::string>{"/svc/db/list", "/svc/web/tls/key", "/svc/web/url", "loose"}));
  EXPECT_EQ(describe({filter("Name", "", "/svc/web/url")}),
            std::vector<std::string>{"/svc/web/url"});
  EXPECT_EQ(describe({filter("Name", "BeginsWith", "/svc/web")}),
            (std::vector<std::string>{"/svc/web/tls/key", "/svc/web/url"}));
  EXPECT_EQ(describe({filter("Name", "Contains", "db")}), std::vector<std::string>{"/svc/db/list"});
  EXPECT_EQ(describe({filter("Path", "", "/svc/web")}), std::vector<std::string>{"/svc/web/url"});
  EXPECT_EQ(describe({filter("Path", "OneLevel", "/svc")}), std::vector<std::string>{});
  EXPECT_EQ(describe({filter("Path", "Recursive", "/svc")}),
            (std::vector<std::string>{"/svc/db/list", "/svc/web/tls/key", "/svc/web/url"}));
  EXPECT_EQ(describe({filter("Type", "Equals", "StringList")}),
            std::vector<std::string>{"/svc/db/list"});
  EXPECT_EQ(describe({filter("KeyId", "", "alias/aws/ssm")}),
            std::vector<std::string>{"/svc/web/tls/key"});
  EXPECT_EQ(describe({filter("Tier", "", "Standard"), filter("Path", "", "/")}),
            std::vector<std::string>{"loose"});
  auto old =
      ok("DescribeParameters",
         {{"Filters", bj::array{bj::object{{"Key", "Name"}, {"Values", bj::array{"/svc/web"}}}}}});
  EXPECT_EQ(names_in(old), (std::vector<std::string>{"/svc/web/tls/key", "/svc/web/url"}));
  auto metadata = ok("DescribeParameters",
                     {{"ParameterFilters", bj::array{filter("Name", "", "/svc/web/tls/key")}}});
  auto& entry = metadata["Parameters"].as_array()[0].as_object();
  EXPECT_EQ(entry["Description"], "tls key");
  EXPECT_EQ(entry["Version"], 1);
  EXPECT_EQ(entry["Tier"], "Standard");
  EXPECT_EQ(entry["LastModifiedUser"], "arn:aws:iam::123456789012:root");
  EXPECT_EQ(entry["ARN"], bj::value(std::string(kArnPrefix) + "/svc/web/tls/key"));
  EXPECT_FALSE(entry.contains("Value"));

  expect_error("DescribeParameters",
               {{"Filters", bj::array{bj::object{{"Key", "Name"}, {"Values", bj::array{"x"}}}}},
                {"ParameterFilters", bj::array{filter("Name", "", "x")}}},
               "ValidationException", "not both");
  expect_error("DescribeParameters", {{"ParameterFilters", bj::array{filter("Label", "", "x")}}},
               "InvalidFilterKey");
  expect_error("DescribeParameters",
               {{"ParameterFilters", bj::array{filter("Path", "Equals", "/svc")}}},
               "InvalidFilterOption", "OneLevel, Recursive");
  expect_error("DescribeParameters", {{"ParameterFilters", bj::array{filter("Path", "", "svc")}}},
               "InvalidFilterValue");
}

TEST_F(SsmApiTest, DescribeParametersByTagAndPages) {
  for (int name_idx = 0; name_idx < 7; ++name_idx) {
    bj::object extra;
    if (name_idx % 2 == 0) extra["Tags"] = bj::array{bj::object{{"Key", "env"}, {"Value", "prod"}}};
    put("/t/p" + std::to_string(name_idx), "v", std::move(extra));
  }
  auto tagged = ok("DescribeParameters",
                   {{"ParameterFilters",
                     bj::array{bj::object{{"Key", "tag:env"}, {"Values", bj::array{"prod"}}}}}});
  EXPECT_EQ(names_in(tagged), (std::vector<std::string>{"/t/p0", "/t/p2", "/t/p4", "/t/p6"}));
  auto any_env =
      ok("DescribeParameters", {{"ParameterFilters", bj::array{bj::object{{"Key", "tag:env"}}}}});
  EXPECT_EQ(names_in(any_env).size(), 4u);
  auto first = ok("DescribeParameters", {{"MaxResults", 3}});
  EXPECT_EQ(names_in(first), (std::vector<std::string>{"/t/p0", "/t/p1", "/t/p2"}));
  auto second = ok("DescribeParameters", {{"MaxResults", 3}, {"NextToken", first["NextToken"]}});
  EXPECT_EQ(names_in(second), (std::vector<std::string>{"/t/p3", "/t/p4", "/t/p5"}));
  expect_error("DescribeParameters", {{"MaxResults", 51}}, "ValidationException");
}

TEST_F(SsmApiTest, HistoryListsEveryVersionWithLabelsAndPages) {
  for (int version_idx = 1; version_idx <= 5; ++version_idx) {
    clock_.advance(std::chrono::seconds(10));
    put("/hist", "v" + std::to_string(version_idx), {{"Overwrite", true}});
  }
  ok("LabelParameterVersion",
     {{"Name", "/hist"}, {"ParameterVersion", 2}, {"Labels", bj::array{"two"}}});
  auto history = ok("GetParameterHistory", {{"Name", std::string(kArnPrefix) + "/hist"}});
  const auto& versions = history["Parameters"].as_array();
  ASSERT_EQ(versions.size(), 5u);
  EXPECT_EQ(versions[0].as_object().at("Value"), "v1");
  EXPECT_EQ(versions[1].as_object().at("Labels"), (bj::array{"two"}));
  EXPECT_EQ(versions[4].as_object().at("Version"), 5);
  EXPECT_EQ(versions[4].as_object().at("LastModifiedDate").to_number<double>(), 1'700'000'050);
  auto page = ok("GetParameterHistory", {{"Name", "/hist"}, {"MaxResults", 2}});
  EXPECT_EQ(page["Parameters"].as_array().size(), 2u);
  auto next = ok("GetParameterHistory",
                 {{"Name", "/hist"}, {"MaxResults", 2}, {"NextToken", page["NextToken"]}});
  EXPECT_EQ(next["Parameters"].as_array()[0].as_object()["Version"], 3);
  expect_error("GetParameterHistory", {{"Name", "/nohist"}}, "ParameterNotFound");
  expect_error("GetParameterHistory", {{"Name", "/hist"}, {"NextToken", "forged"}},
               "InvalidNextToken");
}

TEST_F(SsmApiTest, LabelsMoveBetweenVersionsAndAreChecked) {
  put("/lab", "1");
  put("/lab", "2", {{"Overwrite", true}});
  auto labelled =
      ok("LabelParameterVersion",
         {{"Name", "/lab"}, {"Labels", bj::array{"prod", "1bad", "awsx", "has space"}}});
  EXPECT_EQ(labelled["ParameterVersion"], 2);  // the latest by default
  EXPECT_EQ(labelled["InvalidLabels"], (bj::array{"1bad", "awsx", "has space"}));
  EXPECT_EQ(value_of("/lab:prod"), "2");
  // Moving a label to another version takes it off the one that had it.
  ok("LabelParameterVersion",
     {{"Name", "/lab"}, {"ParameterVersion", 1}, {"Labels", bj::array{"prod"}}});
  EXPECT_EQ(value_of("/lab:prod"), "1");
  auto history = ok("GetParameterHistory", {{"Name", "/lab"}});
  EXPECT_EQ(history["Parameters"].as_array()[1].as_object()["Labels"], bj::array{});

  bj::array ten;
  for (int label_idx = 0; label_idx < 9; ++label_idx)
    ten.push_back(bj::string("l" + std::to_string(label_idx)));
  ok("LabelParameterVersion", {{"Name", "/lab"}, {"ParameterVersion", 1}, {"Labels", ten}});  // 10
  expect_error("LabelParameterVersion",
               {{"Name", "/lab"}, {"ParameterVersion", 1}, {"Labels", bj::array{"eleventh"}}},
               "ParameterVersionLabelLimitExceeded", "at most 10");
  expect_error("LabelParameterVersion",
               {{"Name", "/lab"}, {"ParameterVersion", 7}, {"Labels", bj::array{"x"}}},
               "ParameterVersionNotFound");
  expect_error("LabelParameterVersion", {{"Name", "/nolab"}, {"Labels", bj::array{"x"}}},
               "ParameterNotFound");

  auto unlabelled =
      ok("UnlabelParameterVersion",
         {{"Name", "/lab"}, {"ParameterVersion", 1}, {"Labels", bj::array{"prod", "never"}}});
  EXPECT_EQ(unlabelled["RemovedLabels"], (bj::array{"prod"}));
  EXPECT_EQ(unlabelled["InvalidLabels"], (bj::array{"never"}));
  expect_error("GetParameter", {{"Name", "/lab:prod"}}, "ParameterVersionNotFound");
  expect_error("UnlabelParameterVersion",
               {{"Name", "/lab"}, {"ParameterVersion", 9}, {"Labels", bj::array{"x"}}},
               "ParameterVersionNotFound");
}

TEST_F(SsmApiTest, KeepsAHundredVersionsUnlessTheOldestIsLabelled) {
  for (int version_idx = 1; version_idx <= 100; ++version_idx) {
    put("/many", "v" + std::to_string(version_idx), {{"Overwrite", true}});
  }
  EXPECT_EQ(put("/many", "v101", {{"Overwrite", true}}), 101);
  auto history = ok("GetParameterHistory", {{"Name", "/many"}});
  EXPECT_EQ(history["Parameters"].as_array().size(), 50u);  // the first page
  EXPECT_EQ(history["Parameters"].as_array()[0].as_object()["Version"], 2);
  expect_error("GetParameter", {{"Name", "/many:1"}}, "ParameterVersionNotFound");
  ok("LabelParameterVersion",
     {{"Name", "/many"}, {"ParameterVersion", 2}, {"Labels", bj::array{"keep"}}});
  expect_error("PutParameter", {{"Name", "/many"}, {"Value", "v102"}, {"Overwrite", true}},
               "ParameterMaxVersionLimitExceeded", "UnlabelParameterVersion");
  EXPECT_EQ(value_of("/many"), "v101");
}

TEST_F(SsmApiTest, TagsOnParameters) {
  put("/tags/p", "v");
  auto resource = [](bj::object extra = {}) {
    extra["ResourceType"] = "Parameter";
    extra["ResourceId"] = "/tags/p";
    return extra;
  };
  ok("AddTagsToResource",
     resource({{"Tags", bj::array{bj::object{{"Key", "a"}, {"Value", "1"}},
                                  bj::object{{"Key", "b"}, {"Value", "2"}}}}}));
  ok("AddTagsToResource",
     resource({{"Tags", bj::array{bj::object{{"Key", "a"}, {"Value", "3"}}}}}));
  ok("RemoveTagsFromResource", resource({{"TagKeys", bj::array{"b"}}}));
  EXPECT_EQ(ok("ListTagsForResource", resource())["TagList"],
            (bj::array{bj::object{{"Key", "a"}, {"Value", "3"}}}));
  expect_error("ListTagsForResource", {{"ResourceType", "Document"}, {"ResourceId", "/tags/p"}},
               "InvalidResourceType", "give Parameter");
  expect_error("ListTagsForResource", {{"ResourceType", "Parameter"}, {"ResourceId", "/tags/none"}},
               "InvalidResourceId");
  expect_error("ListTagsForResource", {{"ResourceType", "Bucket"}, {"ResourceId", "/tags/p"}},
               "ValidationException", "enum value set");
  bj::array many;
  for (int tag_idx = 0; tag_idx < 50; ++tag_idx) {
    many.push_back(bj::object{{"Key", "k" + std::to_string(tag_idx)}, {"Value", "v"}});
  }
  expect_error("AddTagsToResource", resource({{"Tags", many}}), "TooManyTagsError", "at most 50");
  expect_error("AddTagsToResource",
               resource({{"Tags", bj::array{bj::object{{"Key", "aws:x"}, {"Value", "v"}}}}}),
               "ValidationException", "reserved");
}

TEST_F(SsmApiTest, ParametersAreDurableAndPerRegion) {
  put("/durable", "one", {{"Tags", bj::array{bj::object{{"Key", "k"}, {"Value", "v"}}}}});
  put("/durable", "two", {{"Overwrite", true}});
  ok("LabelParameterVersion",
     {{"Name", "/durable"}, {"ParameterVersion", 1}, {"Labels", bj::array{"first"}}});
  put("/secure", "s3cret", {{"Type", "SecureString"}});
  put("/gone", "x");
  ok("DeleteParameter", {{"Name", "/gone"}});
  ASSERT_TRUE(caller().call(
      "PutParameter", {{"Name", "/durable"}, {"Value", "west"}, {"Type", "String"}}, "us-west-2"));
  close();
  open();
  EXPECT_EQ(value_of("/durable"), "two");
  EXPECT_EQ(value_of("/durable:first"), "one");
  EXPECT_EQ(value_of("/secure", true), "s3cret");
  expect_error("GetParameter", {{"Name", "/gone"}}, "ParameterNotFound");
  EXPECT_EQ(ok("ListTagsForResource",
               {{"ResourceType", "Parameter"}, {"ResourceId", "/durable"}})["TagList"]
                .as_array()
                .size(),
            1u);
  auto west = caller().call("GetParameter", {{"Name", "/durable"}}, "us-west-2");
  ASSERT_TRUE(west);
  EXPECT_EQ((*west)["Parameter"].as_object()["Value"], "west");
  EXPECT_EQ((*west)["Parameter"].as_object()["ARN"],
            "arn:aws:ssm:us-west-2:123456789012:parameter/durable");
}

TEST_F(SsmApiTest, AStoreFailureIsAnInternalServerError) {
  store_->close();
  expect_error("PutParameter", {{"Name", "/x"}, {"Value", "v"}, {"Type", "String"}},
               "InternalServerError");
  EXPECT_EQ(aws::to_wire(Error{ErrorCode::kInternal, "disk"}, "ssm").status, 500);
}

}  // namespace
}  // namespace wharf::ssm
