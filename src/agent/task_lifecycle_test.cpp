#include "agent/task_lifecycle.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace wharf::agent {
namespace {

namespace bj = boost::json;

ContainerFacts facts(const char* definition) {
  return container_facts(bj::parse(definition).as_object());
}

// A container in some state (designated initialisers would trip -Wmissing-field-initializers).
ContainerFacts container(std::string name, ContainerRunStatus status = ContainerRunStatus::kPending,
                         std::vector<std::pair<std::string, std::string>> depends_on = {}) {
  ContainerFacts facts;
  facts.name = std::move(name);
  facts.status = status;
  facts.depends_on = std::move(depends_on);
  return facts;
}

TEST(TaskLifecycleTest, StatusesRoundTripInTheirOrder) {
  for (auto status : {TaskStatus::kProvisioning, TaskStatus::kPending, TaskStatus::kActivating,
                      TaskStatus::kRunning, TaskStatus::kDeactivating, TaskStatus::kStopping,
                      TaskStatus::kDeprovisioning, TaskStatus::kStopped}) {
    EXPECT_EQ(parse_task_status(to_string(status)), status);
  }
  EXPECT_LT(TaskStatus::kPending, TaskStatus::kRunning);
  EXPECT_LT(TaskStatus::kDeprovisioning, TaskStatus::kStopped);
  EXPECT_EQ(parse_task_status("running"), std::nullopt);
  EXPECT_EQ(parse_container_status("STOPPED"), ContainerRunStatus::kStopped);
  EXPECT_EQ(parse_health_status("HEALTHY"), HealthStatus::kHealthy);
}

TEST(TaskLifecycleTest, ReadsTheFactsOfADefinition) {
  ContainerFacts web = facts(R"({"name":"web","essential":false,
      "dependsOn":[{"containerName":"db","condition":"HEALTHY"}],
      "healthCheck":{"command":["CMD","true"]}})");
  EXPECT_EQ(web.name, "web");
  EXPECT_FALSE(web.essential);
  EXPECT_TRUE(web.has_health_check);
  ASSERT_EQ(web.depends_on.size(), 1u);
  EXPECT_EQ(web.depends_on[0], (std::pair<std::string, std::string>{"db", "HEALTHY"}));
  EXPECT_TRUE(facts(R"({"name":"x"})").essential);
  EXPECT_FALSE(facts(R"({"name":"x","healthCheck":{"command":["NONE"]}})").has_health_check);
}

struct StartCase {
  const char* condition;
  ContainerRunStatus dependency_status;
  std::optional<int> exit_code;
  HealthStatus health;
  StartDecision expected;
};

class StartVerdictTest : public testing::TestWithParam<StartCase> {};

TEST_P(StartVerdictTest, FollowsTheCondition) {
  const StartCase& c = GetParam();
  ContainerFacts dependency = container("init", c.dependency_status);
  dependency.exit_code = c.exit_code;
  dependency.health = c.health;
  ContainerFacts app = container("app", ContainerRunStatus::kPending, {{"init", c.condition}});
  std::vector<ContainerFacts> containers = {dependency, app};
  StartVerdict verdict = start_verdict(containers, 1);
  EXPECT_EQ(verdict.decision, c.expected) << c.condition << " " << verdict.reason;
  EXPECT_EQ(verdict.reason.empty(), c.expected != StartDecision::kNever);
}

using enum ContainerRunStatus;
using enum HealthStatus;
using enum StartDecision;

INSTANTIATE_TEST_SUITE_P(
    Conditions, StartVerdictTest,
    testing::Values(StartCase{"START", kPending, std::nullopt, kUnknown, kWait},
                    StartCase{"START", kRunning, std::nullopt, kUnknown, kStart},
                    StartCase{"START", kStopped, 3, kUnknown, kStart},
                    StartCase{"START", kStopped, std::nullopt, kUnknown, kNever},
                    StartCase{"COMPLETE", kRunning, std::nullopt, kUnknown, kWait},
                    StartCase{"COMPLETE", kStopped, 1, kUnknown, kStart},
                    StartCase{"SUCCESS", kRunning, std::nullopt, kUnknown, kWait},
                    StartCase{"SUCCESS", kStopped, 0, kUnknown, kStart},
                    StartCase{"SUCCESS", kStopped, 2, kUnknown, kNever},
                    StartCase{"HEALTHY", kRunning, std::nullopt, kUnknown, kWait},
                    StartCase{"HEALTHY", kRunning, std::nullopt, kUnhealthy, kWait},
                    StartCase{"HEALTHY", kRunning, std::nullopt, kHealthy, kStart},
                    StartCase{"HEALTHY", kStopped, 0, kUnknown, kNever}));

TEST(TaskLifecycleTest, AMissingDependencyNeverHolds) {
  std::vector<ContainerFacts> containers = {container("app", kPending, {{"ghost", "START"}})};
  EXPECT_EQ(start_verdict(containers, 0).decision, kNever);
}

TEST(TaskLifecycleTest, ShutdownRunsDependenciesInReverse) {
  std::vector<ContainerFacts> containers = {container("db", kRunning),
                                            container("app", kRunning, {{"db", "START"}}),
                                            container("sidecar", kRunning)};
  EXPECT_FALSE(may_stop(containers, 0));  // app still runs and depends on db
  EXPECT_TRUE(may_stop(containers, 1));
  EXPECT_TRUE(may_stop(containers, 2));
  containers[1].status = kStopped;
  EXPECT_TRUE(may_stop(containers, 0));
}

TEST(TaskLifecycleTest, TaskHealthComesFromEssentialContainersWithChecks) {
  std::vector<ContainerFacts> containers = {container("web"), container("log"), container("plain")};
  containers[0].health = kHealthy;
  containers[0].has_health_check = true;
  containers[1].essential = false;
  containers[1].health = kUnhealthy;
  containers[1].has_health_check = true;
  EXPECT_EQ(task_health(containers), kHealthy);
  containers[0].health = kUnknown;
  EXPECT_EQ(task_health(containers), kUnknown);
  containers[0].health = kUnhealthy;
  EXPECT_EQ(task_health(containers), kUnhealthy);
  EXPECT_EQ(task_health({container("plain")}), kUnknown);
}

TEST(TaskLifecycleTest, ParsesHealthChecks) {
  auto shell = parse_health_check(bj::parse(R"({"healthCheck":{"command":["CMD-SHELL",
      "wget -q localhost || exit 1"],"interval":5,"timeout":2,"retries":4,"startPeriod":10}})")
                                      .as_object());
  ASSERT_TRUE(shell.has_value() && shell->has_value());
  EXPECT_EQ((*shell)->command,
            (std::vector<std::string>{"/bin/sh", "-c", "wget -q localhost || exit 1"}));
  EXPECT_EQ((*shell)->interval.count(), 5);
  EXPECT_EQ((*shell)->timeout.count(), 2);
  EXPECT_EQ((*shell)->retries, 4);
  EXPECT_EQ((*shell)->start_period.count(), 10);
  auto exec = parse_health_check(
      bj::parse(R"({"healthCheck":{"command":["CMD","/bin/true","x"]}})").as_object());
  ASSERT_TRUE(exec.has_value() && exec->has_value());
  EXPECT_EQ((*exec)->command, (std::vector<std::string>{"/bin/true", "x"}));
  EXPECT_EQ((*exec)->interval.count(), 30);
  auto none = parse_health_check(bj::parse(R"({"name":"x"})").as_object());
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(parse_health_check(bj::parse(R"({"healthCheck":{"command":["true"]}})").as_object())
                   .has_value());
}

TEST(TaskLifecycleTest, HealthFollowsDockersRules) {
  HealthCheck check;
  check.retries = 2;
  HealthTracker tracker(check);
  EXPECT_EQ(tracker.record(false, true), kUnknown);  // start period: not counted
  EXPECT_EQ(tracker.record(false, true), kUnknown);
  EXPECT_EQ(tracker.record(false, false), kUnknown);
  EXPECT_EQ(tracker.record(false, false), kUnhealthy);
  EXPECT_EQ(tracker.record(true, false), kHealthy);
  EXPECT_EQ(tracker.record(false, true), kHealthy);  // after a pass the start period is over
  EXPECT_EQ(tracker.record(false, true), kUnhealthy);
}

}  // namespace
}  // namespace wharf::agent
