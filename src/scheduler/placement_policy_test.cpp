// Table tests of placement constraint and strategy validation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scheduler/placement_policy.hpp"

namespace wharf::scheduler {
namespace {

TEST(PlacementPolicy, ValidatesConstraintsAndStrategies) {
  struct Case {
    const char* name;
    std::vector<PlacementConstraint> constraints;
    std::vector<PlacementStrategy> strategies;
    const char* error;  // nullptr when valid; else a part of the message
  };
  const std::vector<PlacementConstraint> eleven(11, {"distinctInstance", ""});
  const std::vector<PlacementStrategy> six(6, {"random", ""});
  const Case cases[] = {
      {"nothing", {}, {}, nullptr},
      {"memberOf", {{"memberOf", "attribute:ecs.instance-type =~ t2.*"}}, {}, nullptr},
      {"distinctInstance", {{"distinctInstance", ""}}, {}, nullptr},
      {"ten constraints",
       std::vector<PlacementConstraint>(10, {"distinctInstance", ""}),
       {},
       nullptr},
      {"eleven constraints", eleven, {}, "at most 10 placement constraints"},
      {"distinctInstance with expression",
       {{"distinctInstance", "attribute:a exists"}},
       {},
       "placementConstraints[0]: an expression cannot be given"},
      {"memberOf without expression", {{"memberOf", ""}}, {}, "needs an expression"},
      {"unknown constraint type",
       {{"sameInstance", ""}},
       {},
       "must be distinctInstance or memberOf"},
      {"bad expression",
       {{"distinctInstance", ""}, {"memberOf", "attribute:a =="}},
       {},
       "placementConstraints[1].expression: at position 15: expected a value"},
      {"binpack memory", {}, {{"binpack", "memory"}}, nullptr},
      {"binpack cpu any case", {}, {{"binpack", "CPU"}}, nullptr},
      {"binpack disk", {}, {{"binpack", "disk"}}, "placementStrategy[0]: the field of a binpack"},
      {"binpack without field", {}, {{"binpack", ""}}, "must be cpu or memory"},
      {"spread instanceId", {}, {{"spread", "instanceId"}}, nullptr},
      {"spread host", {}, {{"spread", "host"}}, nullptr},
      {"spread attribute", {}, {{"spread", "attribute:ecs.availability-zone"}}, nullptr},
      {"spread empty attribute", {}, {{"spread", "attribute:"}}, "must be instanceId, host"},
      {"spread nothing", {}, {{"spread", ""}}, "must be instanceId, host"},
      {"random ignores field", {}, {{"random", "whatever"}}, nullptr},
      {"unknown strategy", {}, {{"pack", "memory"}}, "must be random, spread or binpack"},
      {"second strategy wrong",
       {},
       {{"spread", "instanceId"}, {"binpack", "gpu"}},
       "placementStrategy[1]"},
      {"five strategies", {}, std::vector<PlacementStrategy>(5, {"random", ""}), nullptr},
      {"six strategies", {}, six, "at most 5 placement strategies"},
  };
  for (const auto& test_case : cases) {
    auto policy = PlacementPolicy::compile(test_case.constraints, test_case.strategies);
    if (test_case.error == nullptr) {
      EXPECT_TRUE(policy.has_value()) << test_case.name << ": " << policy.error().message;
      continue;
    }
    ASSERT_FALSE(policy.has_value()) << test_case.name;
    EXPECT_EQ(policy.error().code, ErrorCode::kInvalidParameter) << test_case.name;
    EXPECT_NE(policy.error().message.find(test_case.error), std::string::npos)
        << test_case.name << ": " << policy.error().message;
  }
}

TEST(PlacementPolicy, CompilesWhatItWasGiven) {
  const std::vector<PlacementConstraint> constraints = {{"memberOf", "attribute:a exists"},
                                                        {"distinctInstance", ""},
                                                        {"memberOf", "task:group == x"}};
  const std::vector<PlacementStrategy> strategies = {
      {"spread", "attribute:ecs.availability-zone"}, {"binpack", "cpu"}, {"random", ""}};
  auto policy = PlacementPolicy::compile(constraints, strategies);
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  ASSERT_EQ(policy->member_of().size(), 2u);
  EXPECT_EQ(policy->member_of()[1].text(), "task:group == x");
  EXPECT_TRUE(policy->distinct_instance());
  ASSERT_EQ(policy->strategies().size(), 3u);
  EXPECT_EQ(policy->strategies()[0].type, StrategyType::kSpread);
  EXPECT_EQ(policy->strategies()[0].spread_attribute, "ecs.availability-zone");
  EXPECT_EQ(policy->strategies()[1].type, StrategyType::kBinpack);
  EXPECT_EQ(policy->strategies()[1].binpack_field, BinpackField::kCpu);
  EXPECT_EQ(policy->strategies()[2].type, StrategyType::kRandom);
}

TEST(PlacementPolicy, DefaultsDependOnTheCaller) {
  auto run_task = PlacementPolicy::compile({}, {}, PlacementCaller::kRunTask);
  ASSERT_TRUE(run_task.has_value());
  ASSERT_EQ(run_task->strategies().size(), 1u);
  EXPECT_EQ(run_task->strategies()[0].type, StrategyType::kRandom);

  auto service = PlacementPolicy::compile({}, {}, PlacementCaller::kService);
  ASSERT_TRUE(service.has_value());
  ASSERT_EQ(service->strategies().size(), 2u);
  EXPECT_EQ(service->strategies()[0].type, StrategyType::kSpread);
  EXPECT_EQ(service->strategies()[0].spread_attribute, "ecs.availability-zone");
  EXPECT_EQ(service->strategies()[1].type, StrategyType::kSpread);
  EXPECT_EQ(service->strategies()[1].spread_attribute, "");

  const std::vector<PlacementStrategy> given = {{"binpack", "memory"}};
  auto explicit_policy = PlacementPolicy::compile({}, given, PlacementCaller::kService);
  ASSERT_TRUE(explicit_policy.has_value());
  ASSERT_EQ(explicit_policy->strategies().size(), 1u);
  EXPECT_EQ(explicit_policy->strategies()[0].type, StrategyType::kBinpack);
}

}  // namespace
}  // namespace wharf::scheduler
