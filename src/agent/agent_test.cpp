// Unit tests for the agent's pure parts: saved registrations and built-in attributes.
#include "agent/agent.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>

namespace wharf::agent {
namespace {

TEST(Agent, SavedRegistrationRoundTrips) {
  SavedRegistration saved{"prod", "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/ab",
                          "i-0123456789abcdef0"};
  auto loaded = saved_registration_from_json(saved_registration_to_json(saved));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(*loaded, saved);
  EXPECT_FALSE(saved_registration_from_json("not json"));
  EXPECT_EQ(saved_registration_from_json("{}").value(), SavedRegistration{});
}

TEST(Agent, BuiltInAttributes) {
  AgentConfig config;
  config.credentials.region = "eu-west-1";
  config.instance_type = "m5.large";
  auto attributes = builtin_attributes(config, "x86_64");
  boost::json::array expected{
      boost::json::object{{"name", "ecs.os-type"}, {"value", "linux"}},
      boost::json::object{{"name", "ecs.cpu-architecture"}, {"value", "x86_64"}},
      boost::json::object{{"name", "ecs.instance-type"}, {"value", "m5.large"}},
      boost::json::object{{"name", "ecs.availability-zone"}, {"value", "eu-west-1a"}}};
  EXPECT_EQ(attributes, expected);

  config.availability_zone = "eu-west-1c";
  attributes = builtin_attributes(config, "aarch64");
  EXPECT_EQ(attributes[1].at("value"), "arm64");  // as ECS names it
  EXPECT_EQ(attributes[3].at("value"), "eu-west-1c");
}

std::vector<std::string> names(const boost::json::array& attributes) {
  std::vector<std::string> out;
  for (const auto& attribute : attributes) {
    out.emplace_back(attribute.as_object().at("name").as_string());
    EXPECT_FALSE(attribute.as_object().contains("value"));
  }
  return out;
}

TEST(Agent, CapabilityAttributesFollowWhatTheHostHas) {
  auto with_init = names(capability_attributes(true, true));
  auto without = names(capability_attributes(false, true));
  auto has = [](const std::vector<std::string>& list, const std::string& name) {
    return std::ranges::find(list, name) != list.end();
  };
  const std::string api = "com.amazonaws.ecs.capability.docker-remote-api.1.";
  EXPECT_TRUE(has(with_init, api + "17"));
  EXPECT_TRUE(has(with_init, api + "29"));  // initProcessEnabled needs 1.25
  EXPECT_TRUE(has(without, api + "24"));
  EXPECT_FALSE(has(without, api + "25"));
  for (const auto& list : {with_init, without}) {
    EXPECT_TRUE(has(list, "ecs.capability.container-ordering"));
    EXPECT_TRUE(has(list, "ecs.capability.container-health-check"));
    EXPECT_TRUE(has(list, "com.amazonaws.ecs.capability.ecr-auth"));
    EXPECT_TRUE(
        has(list, "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"));
    EXPECT_TRUE(has(list, "ecs.capability.secrets.asm.environment-variables"));
    EXPECT_TRUE(has(list, "ecs.capability.secrets.ssm.environment-variables"));
    EXPECT_TRUE(has(list, "ecs.capability.env-files.s3"));
    EXPECT_TRUE(has(list, "ecs.capability.task-eni"));
  }
  // awsvpc needs nftables for the security groups: without it, no awsvpc task is placed here.
  EXPECT_FALSE(has(names(capability_attributes(true, false)), "ecs.capability.task-eni"));
}

}  // namespace
}  // namespace wharf::agent
