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

TEST(Attributes, FollowTheEcsCharacterRules) {
  struct Case {
    const char* name;
    Attribute attribute;
    bool valid;
  };
  const Case cases[] = {
      {"name only", {"stack", std::nullopt}, true},
      {"name and value", {"stack", "prod"}, true},
      {"name punctuation", {"a-b_c/d\\e.f", std::nullopt}, true},
      {"name of 128", {std::string(128, 'n'), std::nullopt}, true},
      {"name of 129", {std::string(129, 'n'), std::nullopt}, false},
      {"empty name", {"", "v"}, false},
      {"name with space", {"my stack", std::nullopt}, false},
      {"name with colon", {"a:b", std::nullopt}, false},
      {"name with at sign", {"a@b", std::nullopt}, false},
      {"value punctuation", {"k", "a-b_c.d@e/f\\g:h i"}, true},
      {"value of 128", {"k", std::string(128, 'v')}, true},
      {"value of 129", {"k", std::string(129, 'v')}, false},
      {"empty value", {"k", ""}, false},
      {"value with leading space", {"k", " v"}, false},
      {"value with trailing space", {"k", "v "}, false},
      {"value with comma", {"k", "a,b"}, false},
      {"value with equals", {"k", "a=b"}, false},
      {"non-ASCII value", {"k", "ça"}, false},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(validate_attribute(test_case.attribute).has_value(), test_case.valid)
        << test_case.name;
  }
}

TEST(Attributes, AtMostTenCustomOnes) {
  Attributes attributes{{"ecs.os-type", "linux"}, {"ecs.instance-type", "wharf"}};
  for (int attribute_idx = 0; attribute_idx < 10; ++attribute_idx) {
    put_attribute(attributes, {"custom" + std::to_string(attribute_idx), std::nullopt});
  }
  EXPECT_TRUE(validate_custom_attribute_count(attributes).has_value());
  put_attribute(attributes, {"custom3", "replaced, not added"});
  EXPECT_TRUE(validate_custom_attribute_count(attributes).has_value());
  put_attribute(attributes, {"eleventh", std::nullopt});
  auto status = validate_custom_attribute_count(attributes);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kAttributeLimitExceeded);
  EXPECT_FALSE(is_custom_attribute("ecs.capability.foo"));
  EXPECT_FALSE(is_custom_attribute("com.amazonaws.ecs.capability.ecr-auth"));
  EXPECT_TRUE(is_custom_attribute("com.amazonaws.other"));
  EXPECT_TRUE(is_custom_attribute("ecsx"));
}

TEST(Attributes, KeptSortedAndUniqueByName) {
  Attributes attributes;
  put_attribute(attributes, {"b", "1"});
  put_attribute(attributes, {"a", std::nullopt});
  put_attribute(attributes, {"c", "3"});
  put_attribute(attributes, {"b", "2"});
  EXPECT_EQ(attributes, (Attributes{{"a", std::nullopt}, {"b", "2"}, {"c", "3"}}));
}

TEST(TotalResources, WhatAnAgentMayRegister) {
  auto integer = [](std::string name, int64_t value) {
    Resource resource;
    resource.name = std::move(name);
    resource.type = "INTEGER";
    resource.integer_value = value;
    return resource;
  };
  auto ports = [](std::string name, std::vector<std::string> values) {
    Resource resource;
    resource.name = std::move(name);
    resource.type = "STRINGSET";
    resource.string_set_value = std::move(values);
    return resource;
  };
  const Resource cpu = integer("CPU", 2048);
  const Resource memory = integer("MEMORY", 3840);
  struct Case {
    const char* name;
    std::vector<Resource> resources;
    bool valid;
  };
  Resource long_cpu = cpu;
  long_cpu.type = "LONG";
  Resource odd_type = integer("CUSTOM", 1);
  odd_type.type = "MAP";
  const Case cases[] = {
      {"cpu and memory", {cpu, memory}, true},
      {"with ports", {cpu, memory, ports("PORTS", {"22", "65535"}), ports("PORTS_UDP", {})}, true},
      {"with gpu", {cpu, memory, integer("GPU", 2)}, true},
      {"custom double", {cpu, memory, Resource{"SPEED", "DOUBLE", 0, 0, 1.5, {}}}, true},
      {"no cpu", {memory}, false},
      {"no memory", {cpu}, false},
      {"negative memory", {cpu, integer("MEMORY", -1)}, false},
      {"cpu as LONG", {long_cpu, memory}, false},
      {"unknown type", {cpu, memory, odd_type}, false},
      {"repeated", {cpu, memory, cpu}, false},
      {"port too big", {cpu, memory, ports("PORTS", {"65536"})}, false},
      {"port not a number", {cpu, memory, ports("PORTS", {"ssh"})}, false},
      {"ports as integer", {cpu, memory, integer("PORTS", 22)}, false},
      {"unnamed", {cpu, memory, integer("", 1)}, false},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(validate_total_resources(test_case.resources).has_value(), test_case.valid)
        << test_case.name;
  }
}

}  // namespace
}  // namespace wharf::ecs
