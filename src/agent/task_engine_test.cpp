// The agent's copy of its desired state: WharfPollTasks answers with stubs for unchanged tasks.
#include "agent/task_engine.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace wharf::agent {
namespace {

namespace bj = boost::json;

bj::object entry(const std::string& arn, const std::string& desired = "RUNNING") {
  return bj::object{
      {"taskArn", arn},
      {"desiredStatus", desired},
      {"taskDefinition",
       bj::object{{"family", "web"},
                  {"containerDefinitions", bj::array{bj::object{{"name", "main"}}}}}},
      {"containers", bj::array{bj::object{{"name", "main"}, {"containerArn", arn + "/main"}}}}};
}

bj::object stub(const std::string& arn) {
  return bj::object{{"taskArn", arn}, {"unchanged", true}};
}

std::vector<std::string> arns(const std::vector<DesiredTask>& tasks) {
  std::vector<std::string> out;
  for (const DesiredTask& task : tasks) out.push_back(task.arn);
  return out;
}

TEST(DesiredStateTest, StubsStandForWhatTheAgentWasToldBefore) {
  DesiredState state;
  auto first = state.merge(
      bj::object{{"version", 5},
                 {"tasks", bj::array{entry("task/a"), entry("task/b")}},
                 {"groupMembers", bj::object{{"sg-1", bj::array{"172.31.0.4", "172.31.0.5"}}}}});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->listed, (std::set<std::string>{"task/a", "task/b"}));
  EXPECT_EQ(arns(first->changed), (std::vector<std::string>{"task/a", "task/b"}));
  ASSERT_TRUE(first->group_members.has_value());
  EXPECT_EQ(first->group_members->at("sg-1"),
            (std::vector<std::string>{"172.31.0.4", "172.31.0.5"}));

  // a unchanged, b told to stop, c new.
  auto second = state.merge(bj::object{
      {"version", 6},
      {"tasks", bj::array{stub("task/a"), entry("task/b", "STOPPED"), entry("task/c")}}});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->listed, (std::set<std::string>{"task/a", "task/b", "task/c"}));
  EXPECT_EQ(arns(second->changed), (std::vector<std::string>{"task/b", "task/c"}));
  EXPECT_EQ(second->changed[0].desired_status, "STOPPED");
  EXPECT_EQ(second->changed[1].container_arns.at("main"), "task/c/main");
  EXPECT_FALSE(second->group_members.has_value());  // not in the answer: sets left alone

  // b is no longer listed: forgotten, so a stub for it is an error (poll again from 0).
  auto third = state.merge(bj::object{{"tasks", bj::array{stub("task/a"), stub("task/c")}}});
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_TRUE(third->changed.empty());
  EXPECT_EQ(third->listed, (std::set<std::string>{"task/a", "task/c"}));
  auto confused = state.merge(bj::object{{"tasks", bj::array{stub("task/b")}}});
  ASSERT_FALSE(confused);
  EXPECT_EQ(confused.error().code, ErrorCode::kNotFound);

  state.clear();
  EXPECT_FALSE(state.merge(bj::object{{"tasks", bj::array{stub("task/a")}}}));
  auto whole = state.merge(bj::object{{"tasks", bj::array{entry("task/a")}}});
  ASSERT_TRUE(whole);
  EXPECT_EQ(arns(whole->changed), (std::vector<std::string>{"task/a"}));
}

}  // namespace
}  // namespace wharf::agent
