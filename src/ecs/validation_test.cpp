// Unit tests for cluster, tag and account setting validation.
#include <gtest/gtest.h>

#include "ecs/validation.hpp"

namespace wharf::ecs {
namespace {

TEST(ClusterName, FollowsTheEcsPattern) {
  struct Case {
    std::string name;
    bool valid;
  };
  const Case cases[] = {{"prod", true},
                        {"a", true},
                        {"my_cluster-2", true},
                        {std::string(255, 'x'), true},
                        {"", false},
                        {std::string(256, 'x'), false},
                        {"has space", false},
                        {"dots.not.allowed", false},
                        {"slash/no", false},
                        {"ünicode", false}};
  for (const auto& test_case : cases) {
    EXPECT_EQ(validate_cluster_name(test_case.name).has_value(), test_case.valid) << test_case.name;
  }
}

TEST(Tags, FollowTheTaggingRules) {
  struct Case {
    const char* name;
    Tags tags;
    Tags existing;
    bool valid;
  };
  Tags fifty;
  for (int tag_idx = 0; tag_idx < 50; ++tag_idx)
    fifty.emplace_back("k" + std::to_string(tag_idx), "v");
  const Case cases[] = {
      {"plain", {{"team", "web"}}, {}, true},
      {"empty value", {{"team", ""}}, {}, true},
      {"allowed punctuation", {{"a+b-c=d.e_f:g/h@i j", "x"}}, {}, true},
      {"utf-8 letters", {{"équipe", "ça"}}, {}, true},
      {"empty key", {{"", "v"}}, {}, false},
      {"key of 128", {{std::string(128, 'k'), "v"}}, {}, true},
      {"key of 129", {{std::string(129, 'k'), "v"}}, {}, false},
      {"value of 256", {{"k", std::string(256, 'v')}}, {}, true},
      {"value of 257", {{"k", std::string(257, 'v')}}, {}, false},
      {"aws prefix", {{"aws:owner", "me"}}, {}, false},
      {"AWS prefix any case", {{"AwS:owner", "me"}}, {}, false},
      {"aws without colon is fine", {{"awsome", "me"}}, {}, true},
      {"bad character", {{"a*b", "v"}}, {}, false},
      {"repeated key", {{"k", "1"}, {"k", "2"}}, {}, false},
      {"fifty", fifty, {}, true},
      {"fifty-one after merge", {{"new", "v"}}, fifty, false},
      {"replacing within fifty", {{"k1", "other"}}, fifty, true},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(validate_tags(test_case.tags, test_case.existing).has_value(), test_case.valid)
        << test_case.name;
  }
}

TEST(Tags, MergeReplacesInPlace) {
  Tags tags{{"a", "1"}, {"b", "2"}};
  merge_tags(tags, {{"b", "3"}, {"c", "4"}});
  EXPECT_EQ(tags, (Tags{{"a", "1"}, {"b", "3"}, {"c", "4"}}));
}

TEST(ClusterSettings, OnlyContainerInsights) {
  EXPECT_TRUE(validate_cluster_settings({{"containerInsights", "enabled"}}).has_value());
  EXPECT_TRUE(validate_cluster_settings({{"containerInsights", "enhanced"}}).has_value());
  EXPECT_FALSE(validate_cluster_settings({{"containerInsights", "on"}}).has_value());
  EXPECT_FALSE(validate_cluster_settings({{"other", "enabled"}}).has_value());
}

TEST(AccountSettings, ValuesPerName) {
  struct Case {
    const char* name;
    const char* value;
    bool valid;
  };
  const Case cases[] = {
      {"serviceLongArnFormat", "enabled", true},
      {"taskLongArnFormat", "disabled", true},
      {"containerInsights", "enhanced", true},
      {"awsvpcTrunking", "maybe", false},
      {"fargateTaskRetirementWaitPeriod", "7", true},
      {"fargateTaskRetirementWaitPeriod", "3", false},
      {"tagResourceAuthorization", "on", true},
      {"defaultLogDriverMode", "non-blocking", true},
      {"noSuchSetting", "enabled", false},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(validate_account_setting(test_case.name, test_case.value).has_value(),
              test_case.valid)
        << test_case.name << "=" << test_case.value;
  }
  EXPECT_EQ(default_account_setting("containerInsights"), "disabled");
  EXPECT_EQ(account_setting_names().size(), 11u);
}

}  // namespace
}  // namespace wharf::ecs
