// Table tests for Parameter Store's naming rules: names, paths, labels, key ids, references.
#include "ssm/names.hpp"

#include <gtest/gtest.h>

#include <string>

#include "aws/errors.hpp"

namespace wharf::ssm {
namespace {

constexpr const char* kRegion = "us-east-1";
constexpr const char* kAccount = "123456789012";

struct NameCase {
  std::string name;
  std::string wire_type;  // empty: valid
  std::string message_part;
};

// "arn:aws:ssm:us-east-1:123456789012:parameter/" is 45 characters; AWS counts them toward 1011.
const std::string kLongest = "/" + std::string(1011 - 45, 'a');

TEST(ParameterNames, FollowAwsRules) {
  const NameCase cases[] = {
      {"plain", "", ""},
      {"/prod/db/password", "", ""},
      {"/a_b.c-d/E9", "", ""},
      {"/x", "", ""},
      {"/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15", "", ""},
      {"/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", "HierarchyLevelLimitExceededException",
       "more than 15"},
      {"", "ValidationException", "empty"},
      {"has space", "ValidationException", "only letters, digits"},
      {"/bad:colon", "ValidationException", "only letters, digits"},
      {"/star*", "ValidationException", "only letters, digits"},
      {"prod/db", "ValidationException", "not fully qualified"},
      {"/prod//db", "ValidationException", "empty hierarchy level"},
      {"/prod/", "ValidationException", "empty hierarchy level"},
      {"awsThing", "ValidationException", "'aws' or 'ssm'"},
      {"AWS-thing", "ValidationException", "'aws' or 'ssm'"},
      {"SsmParam", "ValidationException", "'aws' or 'ssm'"},
      {"/aws/reference", "ValidationException", "'aws' or 'ssm'"},
      {"/SSM/x", "ValidationException", "'aws' or 'ssm'"},
      {"/prod/aws/ok", "", ""},
      {"/prod/ssm-ok", "", ""},
      {kLongest, "", ""},
      {kLongest + "b", "ValidationException", "too long"},
  };
  for (const auto& test_case : cases) {
    auto status = check_name(test_case.name, kRegion, kAccount);
    if (test_case.wire_type.empty()) {
      EXPECT_TRUE(status) << test_case.name << ": " << status.error().message;
      continue;
    }
    ASSERT_FALSE(status) << test_case.name;
    EXPECT_EQ(aws::to_wire(status.error(), "ssm").type, test_case.wire_type) << test_case.name;
    EXPECT_NE(status.error().message.find(test_case.message_part), std::string::npos)
        << status.error().message;
  }
}

TEST(ParameterNames, PathsAreHierarchiesWithOrWithoutTrailingSlash) {
  const std::pair<std::string, std::string> valid[] = {
      {"/", "/"}, {"/prod", "/prod"}, {"/prod/", "/prod"}, {"/aws/service", "/aws/service"}};
  for (const auto& [path, normalized] : valid) {
    auto checked = check_path(path);
    ASSERT_TRUE(checked) << path << ": " << checked.error().message;
    EXPECT_EQ(*checked, normalized);
  }
  for (const std::string path : {"prod", "", "/a b", "/a//b"}) {
    auto checked = check_path(path);
    ASSERT_FALSE(checked) << path;
    EXPECT_EQ(aws::to_wire(checked.error(), "ssm").type, "ValidationException") << path;
  }
  auto deep = check_path("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16");
  ASSERT_FALSE(deep);
  EXPECT_EQ(aws::to_wire(deep.error(), "ssm").type, "HierarchyLevelLimitExceededException");
}

TEST(ParameterNames, Labels) {
  const std::pair<std::string, bool> cases[] = {
      {"prod", true},
      {"Release_1.2-b", true},
      {"", false},
      {"1st", false},
      {"awsLabel", false},
      {"SSM-x", false},
      {"has space", false},
      {"a/b", false},
      {"a:b", false},
      {std::string(100, 'x'), true},
      {std::string(101, 'x'), false},
  };
  for (const auto& [label, valid] : cases) EXPECT_EQ(is_valid_label(label), valid) << label;
}

TEST(ParameterNames, KeyIds) {
  const std::pair<std::string, bool> cases[] = {
      {"alias/aws/ssm", true},
      {"alias/mine", true},
      {"1234abcd-12ab-34cd-56ef-1234567890ab", true},
      {"mrk-1234abcd12ab34cd56ef1234567890ab", true},
      {"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
      {"arn:aws:kms:us-east-1:123456789012:alias/mine", true},
      {"alias/", false},
      {"my-key", false},
      {"arn:aws:s3:::bucket", false},
  };
  for (const auto& [key_id, valid] : cases) EXPECT_EQ(is_valid_key_id(key_id), valid) << key_id;
}

TEST(ParameterNames, ReferencesWithSelectorsAndArns) {
  struct ReferenceCase {
    std::string text;
    std::string name;
    std::string selector;
    bool ambiguous_root = false;
  };
  const ReferenceCase cases[] = {
      {"/prod/db", "/prod/db", ""},
      {"/prod/db:3", "/prod/db", ":3"},
      {"/prod/db:current", "/prod/db", ":current"},
      {"arn:aws:ssm:us-east-1:123456789012:parameter/prod/db", "/prod/db", ""},
      {"arn:aws:ssm:us-east-1:123456789012:parameter/prod/db:2", "/prod/db", ":2"},
      {"arn:aws:ssm:us-east-1:123456789012:parameter/plain", "plain", "", true},
  };
  for (const auto& test_case : cases) {
    auto reference = parse_reference(test_case.text, kRegion, kAccount, true, true);
    ASSERT_TRUE(reference) << test_case.text << ": " << reference.error().message;
    EXPECT_EQ(reference->name, test_case.name);
    EXPECT_EQ(reference->selector(), test_case.selector);
    EXPECT_EQ(reference->ambiguous_root, test_case.ambiguous_root) << test_case.text;
  }
  const std::pair<std::string, std::string> refused[] = {
      {"/prod/db:", "not a valid parameter selector"},
      {"/prod/db:a:b", "not a valid parameter selector"},
      {"/prod/db:0", "versions start at 1"},
      {"/prod/db:3x", "versions start at 1"},
      {"arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "not a parameter ARN"},
      {"arn:aws:ssm:eu-west-1:123456789012:parameter/x", "region eu-west-1"},
  };
  for (const auto& [text, message] : refused) {
    auto reference = parse_reference(text, kRegion, kAccount, true, true);
    ASSERT_FALSE(reference) << text;
    EXPECT_NE(reference.error().message.find(message), std::string::npos)
        << reference.error().message;
  }
  EXPECT_FALSE(parse_reference("/prod/db:1", kRegion, kAccount, false, true));
  EXPECT_FALSE(parse_reference("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db", kRegion,
                               kAccount, true, false));
  EXPECT_EQ(parameter_arn(kRegion, kAccount, "/prod/db"),
            "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db");
  EXPECT_EQ(parameter_arn(kRegion, kAccount, "plain"),
            "arn:aws:ssm:us-east-1:123456789012:parameter/plain");
}

}  // namespace
}  // namespace wharf::ssm
