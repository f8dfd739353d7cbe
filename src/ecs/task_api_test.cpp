// Unit tests for tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks, the agent's
// WharfPollTasks and state changes, counts and retention; through the operation table the JSON
// router calls, on a real SQLite store and a manual clock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <set>
#include <string>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "aws/service_model.hpp"
#include "common/json.hpp"
#include "ecs/agent_monitor.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/state.hpp"
#include "ecs/vpc.hpp"
#include "store/store.hpp"

namespace wharf::ecs {
namespace {

namespace bj = boost::json;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::string_view kAccount = "123456789012";

struct InstanceSpec {
  int64_t cpu = 2048;
  int64_t memory = 4096;
  std::string zone = "us-east-1a";
};

class TaskApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wharf-task-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open();
    ASSERT_TRUE(call("CreateCluster", {{"clusterName", "prod"}}));
    ASSERT_TRUE(call(
        "RegisterTaskDefinition",
        {{"family", "web"},
         {"containerDefinitions",
          bj::array{bj::object{
              {"name", "web"},
              {"image", "nginx"},
              {"cpu", 512},
              {"memory", 1024},
              {"portMappings", bj::array{bj::object{{"containerPort", 80}, {"hostPort", 8080}}}}}}},
         {"tags", bj::array{bj::object{{"key", "team"}, {"value", "edge"}}}}}));
    ASSERT_TRUE(call(
        "RegisterTaskDefinition",
        {{"family", "batch"},
         {"containerDefinitions",
          bj::array{bj::object{{"name", "main"}, {"image", "busybox"}, {"memory", 256}},
                    bj::object{
                        {"name", "side"}, {"image", "busybox"}, {"cpu", 128}, {"memory", 128}}}}}));
  }

  void TearDown() override {
    close();
    std::filesystem::remove_all(dir_);
  }

  void open() {
    auto store = store::open_sqlite_store((dir_ / "wharf.db").string());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    state_ = std::make_unique<EcsState>(*store_);
    ASSERT_TRUE(state_->load());
    api_ = std::make_unique<EcsApi>(*state_, clock_, tokens_);
    service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::ecs(), "ecs", "1.1");
    api_->register_operations(*service_);
    monitor_ = std::make_unique<AgentMonitor>(*state_, clock_, seconds(10));
  }

  void close() {
    monitor_.reset();
    if (api_) api_->stop_long_polls();
    if (store_) store_->close();
    service_.reset();
    api_.reset();
    state_.reset();
    store_.reset();
  }

  // Starts an operation and returns its answer to come (for held polls).
  std::future<Result<bj::object>> call_async(const std::string& operation, bj::object input) {
    const auto* implementation = service_->find(operation);
    EXPECT_NE(implementation, nullptr) << operation;
    aws::CallContext context{"us-east-1", std::string(kAccount),
                             "AKIA",      "arn:aws:iam::123456789012:root",
                             "request",   operation};
    auto answer = std::make_shared<std::promise<Result<bj::object>>>();
    auto future = answer->get_future();
    (*implementation)(context, input, [answer](Result<bj::object> result) {
      answer->set_value(std::move(result));
    });
    return future;
  }

  Result<bj::object> call(const std::string& operation, bj::object input) {
    return call_async(operation, std::move(input)).get();
  }

  std::string register_instance(const InstanceSpec& spec = {}) {
    bj::object input{
        {"cluster", "prod"},
        {"totalResources",
         bj::array{
             bj::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", spec.cpu}},
             bj::object{{"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", spec.memory}},
             bj::object{
                 {"name", "PORTS"}, {"type", "STRINGSET"}, {"stringSetValue", bj::array{"22"}}}}},
        {"versionInfo", bj::object{{"agentVersion", "0.1.0"}}},
        {"attributes",
         bj::array{bj::object{{"name", "ecs.availability-zone"}, {"value", spec.zone}},
                   bj::object{{"name", "ecs.cpu-architecture"}, {"value", "x86_64"}},
                   bj::object{{"name", "ecs.capability.task-eni"}},
                   bj::object{{"name", "com.amazonaws.ecs.capability.docker-remote-api.1.18"}}}}};
    auto output = call("RegisterContainerInstance", std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    if (!output) return "";
    return json::string_or(output->at("containerInstance").as_object(), "containerInstanceArn", "");
  }

  bj::object instance(const std::string& arn) {
    auto output = call("DescribeContainerInstances",
                       {{"cluster", "prod"}, {"containerInstances", bj::array{bj::string(arn)}}});
    EXPECT_TRUE(output);
    return output ? output->at("containerInstances").as_array().at(0).as_object() : bj::object{};
  }

  int64_t remaining(const std::string& arn, std::string_view name) {
    bj::object described = instance(arn);
    for (const auto& resource : described.at("remainingResources").as_array()) {
      if (resource.at("name").as_string() == name) return resource.at("integerValue").as_int64();
    }
    return -1;
  }

  std::set<std::string> remaining_ports(const std::string& arn) {
    std::set<std::string> ports;
    bj::object described = instance(arn);
    for (const auto& resource : described.at("remainingResources").as_array()) {
      if (resource.at("name") != "PORTS") continue;
      for (const auto& port : resource.at("stringSetValue").as_array()) {
        ports.emplace(port.as_string());
      }
    }
    return ports;
  }

  Result<bj::object> run(bj::object input) {
    input["cluster"] = "prod";
    if (!input.contains("taskDefinition")) input["taskDefinition"] = "web";
    return call("RunTask", std::move(input));
  }

  // Runs one task that must be placed; returns it.
  bj::object run_one(bj::object input = {}) {
    auto output = run(std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    if (!output || output->at("tasks").as_array().empty()) {
      ADD_FAILURE() << "no task placed";
      return {};
    }
    return output->at("tasks").as_array()[0].as_object();
  }

  bj::object describe_task(const std::string& arn, bool tags = false) {
    bj::object input{{"cluster", "prod"}, {"tasks", bj::array{bj::string(arn)}}};
    if (tags) input["include"] = bj::array{"TAGS"};
    auto output = call("DescribeTasks", std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    if (!output || output->at("tasks").as_array().empty()) return {};
    return output->at("tasks").as_array()[0].as_object();
  }

  Result<bj::object> report(const std::string& task_arn, std::string status,
                            bj::object extra = {}) {
    extra["cluster"] = "prod";
    extra["task"] = task_arn;
    extra["status"] = std::move(status);
    return call("SubmitTaskStateChange", std::move(extra));
  }

  std::vector<std::string> list_tasks(bj::object input = {}) {
    input["cluster"] = "prod";
    auto output = call("ListTasks", std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    std::vector<std::string> arns;
    if (!output) return arns;
    for (const auto& arn : output->at("taskArns").as_array()) arns.emplace_back(arn.as_string());
    return arns;
  }

  bj::object cluster() {
    auto output = call("DescribeClusters", {{"clusters", bj::array{"prod"}}});
    EXPECT_TRUE(output);
    return output ? output->at("clusters").as_array().at(0).as_object() : bj::object{};
  }

  static std::string arn_of(const bj::object& task) {
    return std::string(task.at("taskArn").as_string());
  }

  std::filesystem::path dir_;
  ManualClock clock_{from_epoch_seconds(1'700'000'000)};
  aws::PageTokens tokens_{"secret"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EcsState> state_;
  std::unique_ptr<EcsApi> api_;
  std::unique_ptr<aws::JsonService> service_;
  std::unique_ptr<AgentMonitor> monitor_;
};

TEST_F(TaskApiTest, RunTaskPlacesATaskAndReservesItsResources) {
  std::string instance_arn = register_instance();
  bj::object task =
      run_one({{"startedBy", "ci"}, {"tags", bj::array{bj::object{{"key", "k"}, {"value", "v"}}}}});

  std::string prefix = "arn:aws:ecs:us-east-1:123456789012:task/prod/";
  std::string arn = arn_of(task);
  ASSERT_TRUE(arn.starts_with(prefix)) << arn;
  std::string id = arn.substr(prefix.size());
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(task.at("lastStatus"), "PROVISIONING");
  EXPECT_EQ(task.at("desiredStatus"), "RUNNING");
  EXPECT_EQ(task.at("launchType"), "EC2");
  EXPECT_EQ(task.at("group"), "family:web");
  EXPECT_EQ(task.at("startedBy"), "ci");
  EXPECT_EQ(task.at("version"), 1);
  EXPECT_EQ(task.at("connectivity"), "CONNECTED");
  EXPECT_EQ(task.at("availabilityZone"), "us-east-1a");
  EXPECT_EQ(task.at("containerInstanceArn"), bj::value(instance_arn));
  EXPECT_EQ(task.at("clusterArn"), "arn:aws:ecs:us-east-1:123456789012:cluster/prod");
  EXPECT_EQ(task.at("taskDefinitionArn"),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1");
  EXPECT_EQ(task.at("attributes"),
            (bj::array{bj::object{{"name", "ecs.cpu-architecture"}, {"value", "x86_64"}}}));
  EXPECT_EQ(task.at("tags"), (bj::array{bj::object{{"key", "k"}, {"value", "v"}}}));
  const auto& container = task.at("containers").as_array().at(0).as_object();
  EXPECT_TRUE(container.at("containerArn")
                  .as_string()
                  .starts_with("arn:aws:ecs:us-east-1:123456789012:container/prod/" + id + "/"));
  EXPECT_EQ(container.at("name"), "web");
  EXPECT_EQ(container.at("lastStatus"), "PENDING");
  EXPECT_EQ(container.at("cpu"), "512");
  EXPECT_EQ(container.at("memory"), "1024");
  EXPECT_EQ(task.at("overrides"),
            (bj::object{{"containerOverrides", bj::array{bj::object{{"name", "web"}}}},
                        {"inferenceAcceleratorOverrides", bj::array{}}}));

  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048 - 512);
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 1024);
  EXPECT_EQ(remaining_ports(instance_arn), (std::set<std::string>{"22", "8080"}));
  EXPECT_EQ(instance(instance_arn).at("pendingTasksCount"), 1);
  EXPECT_EQ(cluster().at("pendingTasksCount"), 1);
  EXPECT_EQ(cluster().at("runningTasksCount"), 0);
}

TEST_F(TaskApiTest, RunTaskReportsFailuresAsTheEngineDoes) {
  std::string instance_arn = register_instance({1024, 4096, "us-east-1a"});
  // The static host port fits once.
  auto output = run({{"count", 2}});
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_EQ(output->at("tasks").as_array().size(), 1u);
  EXPECT_EQ(output->at("failures"),
            (bj::array{bj::object{{"arn", instance_arn}, {"reason", "RESOURCE:PORTS"}}}));

  auto memory = run({{"taskDefinition", "batch"}, {"overrides", bj::object{{"memory", "8192"}}}});
  ASSERT_TRUE(memory);
  EXPECT_TRUE(memory->at("tasks").as_array().empty());
  EXPECT_EQ(memory->at("failures").as_array().at(0).at("reason"), "RESOURCE:MEMORY");
  auto cpu = run({{"taskDefinition", "batch"}, {"overrides", bj::object{{"cpu", "4096"}}}});
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->at("failures").as_array().at(0).at("reason"), "RESOURCE:CPU");
  EXPECT_EQ(remaining(instance_arn, "CPU"), 1024 - 512);  // failures reserve nothing
}

TEST_F(TaskApiTest, RunTaskWithoutActiveInstancesIsRefused) {
  auto none = run({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(none.error().message, "No Container Instances were found in your cluster.");

  // DRAINING instances take no new tasks.
  std::string draining = register_instance();
  ASSERT_TRUE(call("UpdateContainerInstancesState",
                   {{"cluster", "prod"},
                    {"containerInstances", bj::array{bj::string(draining)}},
                    {"status", "DRAINING"}}));
  EXPECT_FALSE(run({}));
  std::string active = register_instance();
  auto placed = run({{"taskDefinition", "batch"}, {"count", 4}});
  ASSERT_TRUE(placed);
  for (const auto& task : placed->at("tasks").as_array()) {
    EXPECT_EQ(task.at("containerInstanceArn"), bj::value(active));
  }
  EXPECT_EQ(remaining(draining, "CPU"), 2048);
}

TEST_F(TaskApiTest, MemberOfConstraintsFromRequestAndDefinitionApply) {
  register_instance({2048, 4096, "us-east-1a"});
  std::string east_b = register_instance({2048, 4096, "us-east-1b"});
  bj::array constraint{bj::object{{"type", "memberOf"},
                                  {"expression", "attribute:ecs.availability-zone == us-east-1b"}}};
  auto placed =
      run({{"taskDefinition", "batch"}, {"count", 3}, {"placementConstraints", constraint}});
  ASSERT_TRUE(placed) << placed.error().message;
  for (const auto& task : placed->at("tasks").as_array()) {
    EXPECT_EQ(task.at("containerInstanceArn"), bj::value(east_b));
  }
  bj::array impossible{bj::object{{"type", "memberOf"},
                                  {"expression", "attribute:ecs.availability-zone == eu-west-1a"}}};
  auto refused = run({{"taskDefinition", "batch"}, {"placementConstraints", impossible}});
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->at("tasks").as_array().empty());
  ASSERT_EQ(refused->at("failures").as_array().size(), 2u);
  EXPECT_EQ(refused->at("failures").as_array()[0].at("reason"),
            "MemberOf placement constraint unsatisfied.");
  bj::array eleven;
  for (int constraint_idx = 0; constraint_idx < 11; ++constraint_idx) {
    eleven.push_back(bj::object{{"type", "distinctInstance"}});
  }
  EXPECT_FALSE(run({{"placementConstraints", eleven}}));
}

TEST_F(TaskApiTest, RunTaskChecksItsRequest) {
  register_instance();
  struct Case {
    const char* name;
    bj::object input;
    ErrorCode code;
  };
  const Case cases[] = {
      {"count 0", {{"count", 0}}, ErrorCode::kInvalidParameter},
      {"count 11", {{"count", 11}}, ErrorCode::kInvalidParameter},
      {"fargate", {{"launchType", "FARGATE"}}, ErrorCode::kInvalidParameter},
      {"external", {{"launchType", "EXTERNAL"}}, ErrorCode::kInvalidParameter},
      {"capacity providers",
       {{"capacityProviderStrategy", bj::array{bj::object{{"capacityProvider", "FARGATE"}}}}},
       ErrorCode::kInvalidParameter},
      {"unknown container override",
       {{"overrides", bj::object{{"containerOverrides", bj::array{bj::object{{"name", "nope"}}}}}}},
       ErrorCode::kInvalidParameter},
      {"bad task cpu override",
       {{"overrides", bj::object{{"cpu", "lots"}}}},
       ErrorCode::kInvalidParameter},
      {"negative container memory",
       {{"overrides", bj::object{{"containerOverrides",
                                  bj::array{bj::object{{"name", "web"}, {"memory", -1}}}}}}},
       ErrorCode::kInvalidParameter},
      {"unknown family", {{"taskDefinition", "nope"}}, ErrorCode::kClient},
      {"unknown cluster", {{"cluster", "nope"}}, ErrorCode::kClusterNotFound},
  };
  for (const auto& test_case : cases) {
    bj::object input = test_case.input;
    if (!input.contains("taskDefinition")) input["taskDefinition"] = "web";
    if (!input.contains("cluster")) input["cluster"] = "prod";
    auto output = call("RunTask", input);
    ASSERT_FALSE(output) << test_case.name;
    EXPECT_EQ(output.error().code, test_case.code)
        << test_case.name << ": " << output.error().message;
  }
  EXPECT_EQ(run({{"overrides",
                  bj::object{{"containerOverrides", bj::array{bj::object{{"name", "nope"}}}}}}})
                .error()
                .message,
            "Override for container named nope is not a container in the TaskDefinition.");

  ASSERT_TRUE(call("DeregisterTaskDefinition", {{"taskDefinition", "web:1"}}));
  auto inactive = run({{"taskDefinition", "web:1"}});
  ASSERT_FALSE(inactive);
  EXPECT_EQ(inactive.error().code, ErrorCode::kClient);
  EXPECT_EQ(inactive.error().message, "TaskDefinition is inactive");
}

TEST_F(TaskApiTest, OverridesChangeSizesAndShowInTheTask) {
  std::string instance_arn = register_instance();
  bj::object overrides{
      {"containerOverrides",
       bj::array{bj::object{{"name", "main"}, {"memory", 512}, {"command", bj::array{"true"}}}}},
      {"taskRoleArn", "arn:aws:iam::123456789012:role/app"}};
  bj::object task = run_one({{"taskDefinition", "batch:1"}, {"overrides", overrides}});
  const auto& containers = task.at("containers").as_array();
  EXPECT_EQ(containers[0].at("memory"), "512");
  EXPECT_EQ(containers[0].at("cpu"), "0");
  EXPECT_EQ(containers[1].at("cpu"), "128");
  EXPECT_EQ(task.at("overrides").at("taskRoleArn"), "arn:aws:iam::123456789012:role/app");
  EXPECT_EQ(task.at("overrides").at("containerOverrides").as_array().size(), 2u);
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 512 - 128);
  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048 - 128);

  bj::object sized = run_one(
      {{"taskDefinition", "batch"}, {"overrides", bj::object{{"cpu", "256"}, {"memory", "300"}}}});
  EXPECT_EQ(sized.at("cpu"), "256");
  EXPECT_EQ(sized.at("memory"), "300");
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 640 - 300);
}

TEST_F(TaskApiTest, AClientTokenReturnsTheSameTasks) {
  std::string instance_arn = register_instance();
  bj::object input{{"taskDefinition", "batch"}, {"count", 2}, {"clientToken", "abc"}};
  auto first = run(input);
  ASSERT_TRUE(first);
  auto again = run(input);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->at("tasks").as_array().size(), 2u);
  std::set<std::string> first_arns;
  std::set<std::string> again_arns;
  for (const auto& task : first->at("tasks").as_array())
    first_arns.insert(arn_of(task.as_object()));
  for (const auto& task : again->at("tasks").as_array())
    again_arns.insert(arn_of(task.as_object()));
  EXPECT_EQ(first_arns, again_arns);
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 2 * 384);
  input["clientToken"] = "other";
  ASSERT_TRUE(run(input));
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 4 * 384);
  // Long after, the token starts new tasks.
  input["clientToken"] = "abc";
  clock_.advance(std::chrono::hours(13));
  ASSERT_TRUE(run(input));
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096 - 6 * 384);
}

TEST_F(TaskApiTest, StartTaskRunsOnTheNamedInstances) {
  std::string first = register_instance();
  std::string draining = register_instance();
  ASSERT_TRUE(call("UpdateContainerInstancesState",
                   {{"cluster", "prod"},
                    {"containerInstances", bj::array{bj::string(draining)}},
                    {"status", "DRAINING"}}));
  std::string missing = "0123456789abcdef0123456789abcdef";
  auto output = call(
      "StartTask", {{"cluster", "prod"},
                    {"taskDefinition", "web"},
                    {"containerInstances", bj::array{bj::string(first), bj::string(first),
                                                     bj::string(draining), bj::string(missing)}}});
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->at("tasks").as_array().size(), 1u);
  EXPECT_EQ(output->at("tasks").as_array()[0].at("containerInstanceArn"), bj::value(first));
  const auto& failures = output->at("failures").as_array();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].at("reason"), "RESOURCE:PORTS");  // the second task on `first`
  EXPECT_EQ(failures[1].at("arn"), bj::value(draining));
  EXPECT_EQ(failures[1].at("reason"), "DRAINING");
  EXPECT_EQ(failures[2].at("arn"),
            bj::value("arn:aws:ecs:us-east-1:123456789012:container-instance/prod/" + missing));
  EXPECT_EQ(failures[2].at("reason"), "MISSING");
  EXPECT_FALSE(
      call("StartTask",
           {{"cluster", "prod"}, {"taskDefinition", "web"}, {"containerInstances", bj::array{}}}));
}

TEST_F(TaskApiTest, DescribeTasksByIdOrArnWithFailures) {
  register_instance();
  bj::object task = run_one({{"propagateTags", "TASK_DEFINITION"}});
  std::string arn = arn_of(task);
  std::string id = arn.substr(arn.rfind('/') + 1);
  auto output = call("DescribeTasks", {{"cluster", "prod"},
                                       {"tasks", bj::array{bj::string(id), bj::string(arn), "f00"}},
                                       {"include", bj::array{"TAGS"}}});
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->at("tasks").as_array().size(), 2u);
  EXPECT_EQ(output->at("tasks").as_array()[0].at("taskArn"), bj::value(arn));
  EXPECT_EQ(output->at("tasks").as_array()[0].at("tags"),
            (bj::array{bj::object{{"key", "team"}, {"value", "edge"}}}));
  EXPECT_EQ(output->at("failures"),
            (bj::array{bj::object{{"arn", "arn:aws:ecs:us-east-1:123456789012:task/prod/f00"},
                                  {"reason", "MISSING"}}}));
  EXPECT_FALSE(describe_task(arn).contains("tags"));
  EXPECT_FALSE(call("DescribeTasks", {{"cluster", "prod"}, {"tasks", bj::array{}}}));
}

TEST_F(TaskApiTest, ListTasksFiltersAndPages) {
  std::string first = register_instance();
  std::string second = register_instance();
  std::set<std::string> all;
  for (int task_idx = 0; task_idx < 5; ++task_idx) {
    all.insert(
        arn_of(run_one({{"taskDefinition", "batch"}, {"startedBy", task_idx < 2 ? "me" : "you"}})));
  }
  std::string web = arn_of(run_one({}));
  all.insert(web);
  auto listed = list_tasks();
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), all);
  EXPECT_EQ(list_tasks({{"family", "web"}}), std::vector<std::string>{web});
  EXPECT_EQ(list_tasks({{"startedBy", "me"}}).size(), 2u);
  EXPECT_TRUE(list_tasks({{"serviceName", "svc"}}).empty());
  EXPECT_TRUE(list_tasks({{"desiredStatus", "PENDING"}}).empty());
  EXPECT_TRUE(list_tasks({{"launchType", "FARGATE"}}).empty());
  size_t on_instances = list_tasks({{"containerInstance", first}}).size() +
                        list_tasks({{"containerInstance", second}}).size();
  EXPECT_EQ(on_instances, 6u);

  ASSERT_TRUE(call("StopTask", {{"cluster", "prod"}, {"task", web}}));
  EXPECT_EQ(list_tasks({{"desiredStatus", "STOPPED"}}), std::vector<std::string>{web});
  EXPECT_EQ(list_tasks().size(), 5u);

  std::set<std::string> seen;
  bj::object input{{"cluster", "prod"}, {"maxResults", 2}};
  for (int page_idx = 0; page_idx < 5; ++page_idx) {
    auto output = call("ListTasks", input);
    ASSERT_TRUE(output) << output.error().message;
    EXPECT_LE(output->at("taskArns").as_array().size(), 2u);
    for (const auto& arn : output->at("taskArns").as_array()) {
      EXPECT_TRUE(seen.insert(std::string(arn.as_string())).second);
    }
    auto token = json::get_string(*output, "nextToken");
    if (!token) break;
    input["nextToken"] = *token;
  }
  all.erase(web);
  EXPECT_EQ(seen, all);
}

TEST_F(TaskApiTest, StopTaskMarksTheTaskForStopping) {
  register_instance();
  std::string arn = arn_of(run_one());
  clock_.advance(seconds(5));
  auto stopped = call("StopTask", {{"cluster", "prod"}, {"task", arn}});
  ASSERT_TRUE(stopped) << stopped.error().message;
  const auto& task = stopped->at("task").as_object();
  EXPECT_EQ(task.at("desiredStatus"), "STOPPED");
  EXPECT_EQ(task.at("lastStatus"), "PROVISIONING");  // the agent has yet to stop it
  EXPECT_EQ(task.at("stopCode"), "UserInitiated");
  EXPECT_EQ(task.at("stoppedReason"), "Task stopped by user");
  EXPECT_EQ(task.at("stoppingAt"), 1'700'000'005.0);
  EXPECT_EQ(task.at("version"), 2);
  // Again: unchanged, whatever the reason.
  auto again = call("StopTask", {{"cluster", "prod"}, {"task", arn}, {"reason", "other"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->at("task"), task);

  auto unknown = call("StopTask", {{"cluster", "prod"}, {"task", "0123"}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(unknown.error().message, "The referenced task was not found.");
  std::string other = arn_of(run_one({{"taskDefinition", "batch"}}));
  EXPECT_FALSE(
      call("StopTask", {{"cluster", "prod"}, {"task", other}, {"reason", std::string(256, 'x')}}));
  auto reasoned = call("StopTask", {{"cluster", "prod"}, {"task", other}, {"reason", "done"}});
  ASSERT_TRUE(reasoned);
  EXPECT_EQ(reasoned->at("task").at("stoppedReason"), "done");
}

TEST_F(TaskApiTest, StoppingATaskNoAgentWillReportStopsItAtOnce) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048 - 512);
  clock_.advance(seconds(31));
  ASSERT_EQ(monitor_->check_once(), 1u);  // the agent went silent before seeing the task
  auto stopped = call("StopTask", {{"cluster", "prod"}, {"task", arn}});
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->at("task").at("lastStatus"), "STOPPED");
  EXPECT_TRUE(stopped->at("task").as_object().contains("stoppedAt"));
  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048);
  EXPECT_EQ(remaining_ports(instance_arn), std::set<std::string>{"22"});
}

TEST_F(TaskApiTest, TaskStateChangesMoveForwardOnly) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  clock_.advance(seconds(1));
  auto ack = report(arn, "PENDING", {{"pullStartedAt", 1'700'000'000.5}});
  ASSERT_TRUE(ack) << ack.error().message;
  EXPECT_EQ(*ack, (bj::object{{"acknowledgment", "ACK"}}));
  clock_.advance(seconds(1));
  bj::array running_containers{bj::object{
      {"containerName", "web"},
      {"status", "RUNNING"},
      {"runtimeId", "rt-1"},
      {"imageDigest", "sha256:abc"},
      {"networkBindings",
       bj::array{bj::object{{"containerPort", 80}, {"hostPort", 8080}, {"protocol", "tcp"}},
                 // A dynamic port the agent picked: held on the instance until the task stops.
                 bj::object{{"containerPort", 81}, {"hostPort", 49200}, {"protocol", "tcp"}},
                 // A containerPortRange mapping, reported as ranges.
                 bj::object{{"containerPortRange", "9000-9001"},
                            {"hostPortRange", "49300-49301"},
                            {"protocol", "tcp"}}}}}};
  ASSERT_TRUE(report(arn, "RUNNING",
                     {{"containers", running_containers},
                      {"pullStoppedAt", 1'700'000'001.5},
                      {"healthStatus", "HEALTHY"},
                      {"containerHealth", bj::object{{"web", "HEALTHY"}}}}));
  bj::object task = describe_task(arn);
  EXPECT_EQ(task.at("lastStatus"), "RUNNING");
  EXPECT_EQ(task.at("startedAt"), 1'700'000'002.0);
  EXPECT_EQ(task.at("pullStartedAt"), 1'700'000'000.5);
  EXPECT_EQ(task.at("healthStatus"), "HEALTHY");
  const auto& container = task.at("containers").as_array()[0].as_object();
  EXPECT_EQ(container.at("lastStatus"), "RUNNING");
  EXPECT_EQ(container.at("runtimeId"), "rt-1");
  EXPECT_EQ(container.at("imageDigest"), "sha256:abc");
  EXPECT_EQ(container.at("healthStatus"), "HEALTHY");
  EXPECT_EQ(container.at("networkBindings").as_array().size(), 3u);
  EXPECT_EQ(remaining_ports(instance_arn),
            (std::set<std::string>{"22", "8080", "49200", "49300", "49301"}));
  EXPECT_EQ(cluster().at("runningTasksCount"), 1);
  EXPECT_EQ(instance(instance_arn).at("runningTasksCount"), 1);
  int64_t version = task.at("version").as_int64();

  // An older report is acknowledged and changes nothing.
  ASSERT_TRUE(report(arn, "PENDING"));
  EXPECT_EQ(describe_task(arn).at("lastStatus"), "RUNNING");
  EXPECT_EQ(describe_task(arn).at("version"), version);
  EXPECT_FALSE(report(arn, "SLEEPING"));
  EXPECT_FALSE(
      report(arn, "RUNNING", {{"containers", bj::array{bj::object{{"containerName", "x"}}}}}));
  EXPECT_FALSE(report("0123", "RUNNING"));

  // It stops by itself: desired STOPPED, the agent's stop code and reason, resources back.
  clock_.advance(seconds(1));
  bj::array stopped_containers{
      bj::object{{"containerName", "web"}, {"status", "STOPPED"}, {"exitCode", 1}}};
  ASSERT_TRUE(report(arn, "STOPPED",
                     {{"containers", stopped_containers},
                      {"reason", "Essential container in task exited"},
                      {"stopCode", "EssentialContainerExited"}}));
  task = describe_task(arn);
  EXPECT_EQ(task.at("lastStatus"), "STOPPED");
  EXPECT_EQ(task.at("desiredStatus"), "STOPPED");
  EXPECT_EQ(task.at("stopCode"), "EssentialContainerExited");
  EXPECT_EQ(task.at("stoppedReason"), "Essential container in task exited");
  EXPECT_EQ(task.at("stoppedAt"), 1'700'000'003.0);
  EXPECT_EQ(task.at("stoppingAt"), 1'700'000'003.0);
  EXPECT_TRUE(task.contains("executionStoppedAt"));
  EXPECT_EQ(task.at("containers").as_array()[0].at("exitCode"), 1);
  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048);
  EXPECT_EQ(remaining(instance_arn, "MEMORY"), 4096);
  EXPECT_EQ(remaining_ports(instance_arn), std::set<std::string>{"22"});
  EXPECT_EQ(cluster().at("runningTasksCount"), 0);
  // STOPPED is final.
  ASSERT_TRUE(report(arn, "RUNNING"));
  EXPECT_EQ(describe_task(arn).at("lastStatus"), "STOPPED");
}

TEST_F(TaskApiTest, AStopTasksCodeAndReasonStayWhenTheAgentReports) {
  register_instance();
  std::string arn = arn_of(run_one());
  ASSERT_TRUE(report(arn, "RUNNING"));
  ASSERT_TRUE(call("StopTask", {{"cluster", "prod"}, {"task", arn}, {"reason", "deploy"}}));
  ASSERT_TRUE(report(arn, "STOPPED",
                     {{"reason", "Essential container in task exited"},
                      {"stopCode", "EssentialContainerExited"}}));
  bj::object task = describe_task(arn);
  EXPECT_EQ(task.at("stopCode"), "UserInitiated");
  EXPECT_EQ(task.at("stoppedReason"), "deploy");
  // SubmitContainerStateChange on a stopped task is acknowledged, ignored.
  EXPECT_TRUE(
      call("SubmitContainerStateChange",
           {{"cluster", "prod"}, {"task", arn}, {"containerName", "web"}, {"status", "RUNNING"}}));
}

TEST_F(TaskApiTest, ContainerStateChangesUpdateOneContainer) {
  register_instance();
  std::string arn = arn_of(run_one({{"taskDefinition", "batch"}}));
  ASSERT_TRUE(call("SubmitContainerStateChange", {{"cluster", "prod"},
                                                  {"task", arn},
                                                  {"containerName", "side"},
                                                  {"status", "RUNNING"},
                                                  {"runtimeId", "r2"}}));
  bj::object task = describe_task(arn);
  EXPECT_EQ(task.at("containers").as_array()[0].at("lastStatus"), "PENDING");
  EXPECT_EQ(task.at("containers").as_array()[1].at("lastStatus"), "RUNNING");
  EXPECT_EQ(task.at("containers").as_array()[1].at("runtimeId"), "r2");
  EXPECT_FALSE(call("SubmitContainerStateChange",
                    {{"cluster", "prod"}, {"task", arn}, {"containerName", "ghost"}}));
}

TEST_F(TaskApiTest, PollAnswersAtOnceWhenTheAgentIsBehind) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  std::string stopped = arn_of(run_one({{"taskDefinition", "batch"}}));
  ASSERT_TRUE(report(stopped, "STOPPED"));
  auto output = call("WharfPollTasks", {{"cluster", "prod"},
                                        {"containerInstance", instance_arn},
                                        {"version", 0},
                                        {"waitSeconds", 20}});
  ASSERT_TRUE(output) << output.error().message;
  EXPECT_GT(output->at("version").as_int64(), 0);
  const auto& tasks = output->at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 1u);  // not the STOPPED one
  const auto& task = tasks[0].as_object();
  EXPECT_EQ(task.at("taskArn"), bj::value(arn));
  EXPECT_EQ(task.at("desiredStatus"), "RUNNING");
  EXPECT_EQ(task.at("lastStatus"), "PROVISIONING");
  EXPECT_EQ(task.at("taskDefinition").at("family"), "web");
  EXPECT_EQ(task.at("containers").as_array()[0].at("name"), "web");
  EXPECT_TRUE(task.at("containers").as_array()[0].as_object().contains("containerArn"));

  auto bad = call("WharfPollTasks",
                  {{"cluster", "prod"}, {"containerInstance", instance_arn}, {"waitSeconds", 21}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidParameter);
  auto missing = call("WharfPollTasks", {{"cluster", "nope"}, {"containerInstance", instance_arn}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kClusterNotFound);
}

TEST_F(TaskApiTest, AHeldPollIsAnsweredByRunTaskAndStopTask) {
  std::string instance_arn = register_instance();
  bj::object poll{{"cluster", "prod"}, {"containerInstance", instance_arn}, {"waitSeconds", 20}};
  auto first = call("WharfPollTasks", poll);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->at("tasks").as_array().empty());
  poll["version"] = first->at("version");

  auto held = call_async("WharfPollTasks", poll);
  EXPECT_EQ(held.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  std::string arn = arn_of(run_one());
  ASSERT_EQ(held.wait_for(seconds(5)), std::future_status::ready);
  auto answer = held.get();
  ASSERT_TRUE(answer);
  EXPECT_GT(answer->at("version").as_int64(), first->at("version").as_int64());
  ASSERT_EQ(answer->at("tasks").as_array().size(), 1u);
  EXPECT_EQ(answer->at("tasks").as_array()[0].at("taskArn"), bj::value(arn));

  poll["version"] = answer->at("version");
  held = call_async("WharfPollTasks", poll);
  ASSERT_TRUE(call("StopTask", {{"cluster", "prod"}, {"task", arn}}));
  ASSERT_EQ(held.wait_for(seconds(5)), std::future_status::ready);
  answer = held.get();
  ASSERT_TRUE(answer);
  const auto& task = answer->at("tasks").as_array().at(0).as_object();
  EXPECT_EQ(task.at("desiredStatus"), "STOPPED");
  EXPECT_EQ(task.at("stopCode"), "UserInitiated");
}

TEST_F(TaskApiTest, AnAgentsOwnReportDoesNotAnswerItsPollUnlessTheTaskLeavesTheList) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  bj::object poll{{"cluster", "prod"}, {"containerInstance", instance_arn}, {"waitSeconds", 20}};
  auto first = call("WharfPollTasks", poll);
  ASSERT_TRUE(first);
  poll["version"] = first->at("version");
  auto held = call_async("WharfPollTasks", poll);
  ASSERT_TRUE(report(arn, "RUNNING"));  // the agent knows: no need to send the list back
  EXPECT_EQ(held.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  ASSERT_TRUE(report(arn, "STOPPED"));  // the task leaves the list: the agent is told
  ASSERT_EQ(held.wait_for(seconds(5)), std::future_status::ready);
  auto answer = held.get();
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->at("tasks").as_array().empty());
}

TEST_F(TaskApiTest, AHeldPollTimesOutWithTheCurrentState) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  bj::object poll{{"cluster", "prod"}, {"containerInstance", instance_arn}, {"waitSeconds", 10}};
  auto first = call("WharfPollTasks", poll);
  ASSERT_TRUE(first);
  poll["version"] = first->at("version");
  auto held = call_async("WharfPollTasks", poll);
  clock_.advance(seconds(9));
  EXPECT_EQ(api_->expire_long_polls(), 0u);
  clock_.advance(seconds(1));
  EXPECT_EQ(api_->expire_long_polls(), 1u);
  ASSERT_EQ(held.wait_for(seconds(1)), std::future_status::ready);
  auto answer = held.get();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->at("version"), first->at("version"));
  EXPECT_EQ(answer->at("tasks").as_array().at(0).at("taskArn"), bj::value(arn));

  // Stopping answers what is held, and later polls at once.
  held = call_async("WharfPollTasks", poll);
  api_->stop_long_polls();
  ASSERT_EQ(held.wait_for(seconds(1)), std::future_status::ready);
  EXPECT_TRUE(held.get());
  EXPECT_TRUE(call("WharfPollTasks", poll));
}

TEST_F(TaskApiTest, DeregisteringWithTasksNeedsForceWhichStopsThem) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one());
  ASSERT_TRUE(report(arn, "RUNNING"));
  bj::object poll{{"cluster", "prod"}, {"containerInstance", instance_arn}, {"waitSeconds", 20}};
  auto first = call("WharfPollTasks", poll);
  ASSERT_TRUE(first);
  poll["version"] = first->at("version");

  auto refused = call("DeleteCluster", {{"cluster", "prod"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kClusterContainsTasks);
  auto kept = call("DeregisterContainerInstance",
                   {{"cluster", "prod"}, {"containerInstance", instance_arn}});
  ASSERT_FALSE(kept);
  EXPECT_EQ(kept.error().code, ErrorCode::kInvalidParameter);

  auto held = call_async("WharfPollTasks", poll);
  ASSERT_TRUE(call("DeregisterContainerInstance",
                   {{"cluster", "prod"}, {"containerInstance", instance_arn}, {"force", true}}));
  ASSERT_EQ(held.wait_for(seconds(5)), std::future_status::ready);
  auto answer = held.get();
  ASSERT_FALSE(answer);  // tells the agent to register again
  EXPECT_EQ(answer.error().code, ErrorCode::kInvalidParameter);
  bj::object task = describe_task(arn);
  EXPECT_EQ(task.at("lastStatus"), "STOPPED");
  EXPECT_EQ(task.at("desiredStatus"), "STOPPED");
  EXPECT_FALSE(call("WharfPollTasks", poll));
  EXPECT_TRUE(call("DeleteCluster", {{"cluster", "prod"}}));
}

TEST_F(TaskApiTest, StoppedTasksAreForgottenAfterAnHour) {
  register_instance();
  std::string arn = arn_of(run_one());
  std::string running = arn_of(run_one({{"taskDefinition", "batch"}}));
  ASSERT_TRUE(report(arn, "STOPPED"));
  clock_.advance(minutes(59));
  EXPECT_EQ(monitor_->prune_once(), 0u);
  EXPECT_FALSE(describe_task(arn).empty());
  clock_.advance(minutes(2));
  EXPECT_EQ(monitor_->prune_once(), 1u);
  auto output = call("DescribeTasks", {{"cluster", "prod"}, {"tasks", bj::array{bj::string(arn)}}});
  ASSERT_TRUE(output);
  EXPECT_EQ(output->at("failures").as_array().at(0).at("reason"), "MISSING");
  EXPECT_FALSE(describe_task(running).empty());
  close();
  open();
  output = call("DescribeTasks", {{"cluster", "prod"}, {"tasks", bj::array{bj::string(arn)}}});
  ASSERT_TRUE(output);
  EXPECT_TRUE(output->at("tasks").as_array().empty());
  EXPECT_EQ(list_tasks(), std::vector<std::string>{running});
}

TEST_F(TaskApiTest, TasksAndReservationsSurviveARestart) {
  std::string instance_arn = register_instance();
  std::string arn = arn_of(run_one({{"clientToken", "t1"}, {"referenceId", "ref"}}));
  std::string batch = arn_of(run_one({{"taskDefinition", "batch"}}));
  ASSERT_TRUE(report(arn, "RUNNING",
                     {{"containers", bj::array{bj::object{{"containerName", "web"},
                                                          {"status", "RUNNING"},
                                                          {"runtimeId", "rt"}}}}}));
  ASSERT_TRUE(call("StopTask", {{"cluster", "prod"}, {"task", batch}}));
  bj::object before = describe_task(arn, true);
  bj::object stopping = describe_task(batch, true);
  bj::object instance_before = instance(instance_arn);
  close();
  open();
  EXPECT_EQ(describe_task(arn, true), before);
  EXPECT_EQ(describe_task(batch, true), stopping);
  EXPECT_EQ(instance(instance_arn).at("remainingResources"),
            instance_before.at("remainingResources"));
  EXPECT_EQ(instance(instance_arn).at("runningTasksCount"), 1);
  // The token index came back too.
  auto again = run({{"clientToken", "t1"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(arn_of(again->at("tasks").as_array().at(0).as_object()), arn);
  // A fresh server still tells the agent its tasks.
  auto poll = call("WharfPollTasks", {{"cluster", "prod"}, {"containerInstance", instance_arn}});
  ASSERT_TRUE(poll);
  EXPECT_EQ(poll->at("tasks").as_array().size(), 2u);
  // Re-registration after an agent restart keeps what the tasks hold.
  bj::object reregister{
      {"cluster", "prod"},
      {"containerInstanceArn", instance_arn},
      {"totalResources",
       bj::array{
           bj::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", 2048}},
           bj::object{{"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", 4096}},
           bj::object{
               {"name", "PORTS"}, {"type", "STRINGSET"}, {"stringSetValue", bj::array{"22"}}}}}};
  ASSERT_TRUE(call("RegisterContainerInstance", reregister));
  EXPECT_EQ(remaining(instance_arn, "CPU"), 2048 - 512 - 128);
  EXPECT_EQ(remaining_ports(instance_arn), (std::set<std::string>{"22", "8080"}));
}

TEST_F(TaskApiTest, TasksCanBeTagged) {
  register_instance();
  std::string arn = arn_of(run_one());
  ASSERT_TRUE(call("TagResource", {{"resourceArn", arn},
                                   {"tags", bj::array{bj::object{{"key", "a"}, {"value", "b"}}}}}));
  auto listed = call("ListTagsForResource", {{"resourceArn", arn}});
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(listed->at("tags"), (bj::array{bj::object{{"key", "a"}, {"value", "b"}}}));
}

}  // namespace
}  // namespace wharf::ecs

namespace wharf::ecs {
namespace {

class AwsvpcTaskTest : public TaskApiTest {
 protected:
  void SetUp() override {
    TaskApiTest::SetUp();
    ASSERT_TRUE(
        call("RegisterTaskDefinition",
             {{"family", "vpc"},
              {"networkMode", "awsvpc"},
              {"containerDefinitions",
               bj::array{bj::object{{"name", "app"}, {"image", "busybox"}, {"memory", 64}},
                         bj::object{{"name", "side"}, {"image", "busybox"}, {"memory", 64}}}}}));
  }

  static bj::object awsvpc(std::vector<std::string> subnets, std::vector<std::string> groups = {}) {
    bj::array subnet_list;
    for (auto& subnet : subnets) subnet_list.emplace_back(subnet);
    bj::object config{{"subnets", std::move(subnet_list)}};
    if (!groups.empty()) {
      bj::array group_list;
      for (auto& group : groups) group_list.emplace_back(group);
      config["securityGroups"] = std::move(group_list);
    }
    return bj::object{{"awsvpcConfiguration", std::move(config)}};
  }

  Result<bj::object> run_vpc(bj::object network, int count = 1) {
    return run({{"taskDefinition", "vpc"}, {"count", count}, {"networkConfiguration", network}});
  }

  static std::map<std::string, std::string> details(const bj::object& task) {
    std::map<std::string, std::string> out;
    const auto& attachment = task.at("attachments").as_array().at(0).as_object();
    for (const auto& detail : attachment.at("details").as_array()) {
      out[std::string(detail.at("name").as_string())] = detail.at("value").as_string();
    }
    return out;
  }

  bj::object poll(const std::string& instance_arn, int64_t seen = 0) {
    auto output =
        call("WharfPollTasks",
             {{"cluster", "prod"}, {"containerInstance", instance_arn}, {"version", seen}});
    EXPECT_TRUE(output) << output.error().message;
    return output.value_or(bj::object{});
  }
  bj::array poll_tasks(const std::string& instance_arn) {
    bj::object output = poll(instance_arn);
    return output.contains("tasks") ? output.at("tasks").as_array() : bj::array{};
  }

  std::string subnet_ = default_subnet_id("us-east-1");
};

TEST_F(AwsvpcTaskTest, EachTaskGetsAnEniWithTheNextAddressOfItsSubnet) {
  register_instance();
  auto output = run_vpc(awsvpc({subnet_}), 2);
  ASSERT_TRUE(output) << output.error().message;
  const auto& tasks = output->at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 2u);
  const auto& first = tasks[0].as_object();
  const auto& attachment = first.at("attachments").as_array().at(0).as_object();
  EXPECT_EQ(attachment.at("type"), "ElasticNetworkInterface");
  EXPECT_EQ(attachment.at("status"), "PRECREATED");
  auto first_details = details(first);
  EXPECT_EQ(first_details["subnetId"], subnet_);
  EXPECT_EQ(first_details["privateIPv4Address"], "172.31.0.4");  // AWS keeps .0–.3
  EXPECT_EQ(first_details["privateDnsName"], "ip-172-31-0-4.us-east-1.compute.internal");
  EXPECT_TRUE(first_details["networkInterfaceId"].starts_with("eni-"));
  EXPECT_EQ(first_details["macAddress"].size(), 17u);
  EXPECT_EQ(details(tasks[1].as_object())["privateIPv4Address"], "172.31.0.5");
  const auto& interfaces =
      first.at("containers").as_array().at(0).at("networkInterfaces").as_array();
  ASSERT_EQ(interfaces.size(), 1u);
  EXPECT_EQ(interfaces[0].at("attachmentId"), attachment.at("id"));
  EXPECT_EQ(interfaces[0].at("privateIpv4Address"), "172.31.0.4");
  // awsvpc tasks take no host ports, and the ENI survives a restart.
  close();
  open();
  EXPECT_EQ(details(describe_task(arn_of(first)))["privateIPv4Address"], "172.31.0.4");
}

TEST_F(AwsvpcTaskTest, NetworkConfigurationIsChecked) {
  register_instance();
  auto expect_error = [&](Result<bj::object> output, std::string_view words) {
    ASSERT_FALSE(output);
    EXPECT_EQ(output.error().code, ErrorCode::kInvalidParameter);
    EXPECT_NE(output.error().message.find(words), std::string::npos) << output.error().message;
  };
  expect_error(run({{"taskDefinition", "vpc"}}), "Network Configuration must be provided");
  expect_error(run({{"taskDefinition", "batch"}, {"networkConfiguration", awsvpc({subnet_})}}),
               "not valid for the given networkMode");
  expect_error(run_vpc(awsvpc({})), "subnets can not be empty");
  expect_error(run_vpc(awsvpc({"subnet-00000000000000000"})), "InvalidSubnetID.NotFound");
  expect_error(run_vpc(awsvpc({subnet_}, {"sg-00000000000000000"})), "InvalidGroup.NotFound");
  bj::object public_ip = awsvpc({subnet_});
  public_ip["awsvpcConfiguration"].as_object()["assignPublicIp"] = "ENABLED";
  expect_error(run_vpc(public_ip), "Assign public IP is not supported");
  EXPECT_TRUE(list_tasks().empty());
}

TEST_F(AwsvpcTaskTest, AnExhaustedSubnetIsAClearError) {
  register_instance({.cpu = 20480, .memory = 40960});
  {
    std::unique_lock lock(state_->mutex());
    RegionState& region = state_->region("us-east-1");
    ensure_default_network(region, "us-east-1");
    region.subnets["subnet-0000000000000000a"] = Subnet{"subnet-0000000000000000a",
                                                        default_vpc_id("us-east-1"),
                                                        "172.31.16.0/28",
                                                        "us-east-1a",
                                                        false,
                                                        {}};
  }
  // A /28 has 16 addresses; AWS keeps five.
  auto ten = run_vpc(awsvpc({"subnet-0000000000000000a"}), 10);
  ASSERT_TRUE(ten) << ten.error().message;
  EXPECT_EQ(ten->at("tasks").as_array().size(), 10u);
  auto two = run_vpc(awsvpc({"subnet-0000000000000000a"}), 2);
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message.find("1 free IPv4 address"), std::string::npos)
      << two.error().message;
  EXPECT_EQ(list_tasks().size(), 10u);  // nothing half-placed
}

TEST_F(AwsvpcTaskTest, AgentsHearTheEniAndTheirGroupsMembersAndAddressesComeBackWhenDetached) {
  std::string instance_arn = register_instance();
  auto first = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(first) << first.error().message;
  std::string first_arn = arn_of(first->at("tasks").as_array()[0].as_object());
  auto second = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(second) << second.error().message;

  // The default group admits its own members: each task's rules name it, and its members (both
  // addresses) come beside the tasks.
  bj::object answer = poll(instance_arn);
  std::string group = default_security_group_id("us-east-1");
  EXPECT_EQ(answer.at("groupMembers"),
            (bj::object{{group, bj::array{"172.31.0.4", "172.31.0.5"}}}));
  bj::array polled = answer.at("tasks").as_array();
  ASSERT_EQ(polled.size(), 2u);
  for (const auto& entry : polled) {
    const auto& eni = entry.at("eni").as_object();
    EXPECT_TRUE(eni.at("attachmentArn")
                    .as_string()
                    .starts_with("arn:aws:ecs:us-east-1:123456789012:attachment/"));
    EXPECT_EQ(eni.at("subnetCidrBlock"), "172.31.0.0/20");
    EXPECT_EQ(eni.at("subnetGatewayIpv4Address"), "172.31.0.1");
    const auto& ingress = eni.at("ingress").as_array();
    ASSERT_EQ(ingress.size(), 1u);
    EXPECT_EQ(ingress[0].at("protocol"), "all");
    EXPECT_EQ(ingress[0].at("sources"), bj::array{});
    EXPECT_EQ(ingress[0].at("sourceGroups"), bj::array{bj::string(group)});
    EXPECT_FALSE(eni.contains("groupMembers"));
  }

  // The first task's agent attaches its ENI.
  const bj::object* first_entry = nullptr;
  for (const auto& entry : polled) {
    if (entry.at("taskArn") == bj::value(first_arn)) first_entry = &entry.as_object();
  }
  ASSERT_NE(first_entry, nullptr);
  std::string attachment_arn(first_entry->at("eni").at("attachmentArn").as_string());
  auto attachment = [&](std::string status) {
    return bj::object{{"attachments", bj::array{bj::object{{"attachmentArn", attachment_arn},
                                                           {"status", std::move(status)}}}}};
  };
  ASSERT_TRUE(report(first_arn, "RUNNING", attachment("ATTACHED")));
  EXPECT_EQ(describe_task(first_arn).at("attachments").at(0).at("status"), "ATTACHED");
  auto wrong =
      report(first_arn, "RUNNING",
             {{"attachments",
               bj::array{bj::object{{"attachmentArn", "arn:x/other"}, {"status", "ATTACHED"}}}}});
  EXPECT_FALSE(wrong);

  // STOPPED without a word about the ENI: its address stays held (the namespace may still have
  // it), so the next task gets another one.
  ASSERT_TRUE(report(first_arn, "STOPPED"));
  EXPECT_EQ(describe_task(first_arn).at("attachments").at(0).at("status"), "ATTACHED");
  auto third = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(details(third->at("tasks").as_array()[0].as_object())["privateIPv4Address"],
            "172.31.0.6");

  // DETACHED, even after STOPPED: the address leaves the group and is handed out again.
  ASSERT_TRUE(report(first_arn, "STOPPED", attachment("DETACHED")));
  EXPECT_EQ(describe_task(first_arn).at("attachments").at(0).at("status"), "DETACHED");
  answer = poll(instance_arn);
  ASSERT_EQ(answer.at("tasks").as_array().size(), 2u);
  EXPECT_EQ(answer.at("groupMembers").at(group), (bj::array{"172.31.0.5", "172.31.0.6"}));
  auto fourth = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(fourth) << fourth.error().message;
  EXPECT_EQ(details(fourth->at("tasks").as_array()[0].as_object())["privateIPv4Address"],
            "172.31.0.4");
}

// After the first answer, an agent that says which version it has is sent only the entries that
// changed since; the others are stubs. Group members come beside the tasks, so a task joining
// the default group changes no other task's entry.
TEST_F(AwsvpcTaskTest, APollSendsWholeOnlyTheEntriesThatChanged) {
  std::string instance_arn = register_instance();
  auto first = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(first) << first.error().message;
  std::string first_arn = arn_of(first->at("tasks").as_array()[0].as_object());
  bj::object full = poll(instance_arn);
  int64_t seen = full.at("version").as_int64();
  ASSERT_EQ(full.at("tasks").as_array().size(), 1u);
  EXPECT_TRUE(full.at("tasks").at(0).as_object().contains("taskDefinition"));

  auto second = run_vpc(awsvpc({subnet_}));
  ASSERT_TRUE(second) << second.error().message;
  std::string second_arn = arn_of(second->at("tasks").as_array()[0].as_object());
  bj::object delta = poll(instance_arn, seen);
  ASSERT_GT(delta.at("version").as_int64(), seen);
  const bj::array& tasks = delta.at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 2u);
  for (const auto& task : tasks) {
    if (task.at("taskArn") == bj::value(first_arn)) {
      EXPECT_EQ(task, (bj::object{{"taskArn", first_arn}, {"unchanged", true}}));
    } else {
      EXPECT_EQ(task.at("taskArn"), bj::value(second_arn));
      EXPECT_TRUE(task.as_object().contains("taskDefinition"));
    }
  }
  EXPECT_EQ(delta.at("groupMembers").at(default_security_group_id("us-east-1")),
            (bj::array{"172.31.0.4", "172.31.0.5"}));

  // A new desired status is a change; the other task stays a stub.
  seen = delta.at("version").as_int64();
  ASSERT_TRUE(call("StopTask", {{"cluster", "prod"}, {"task", second_arn}}));
  bj::object after_stop = poll(instance_arn, seen);
  for (const auto& task : after_stop.at("tasks").as_array()) {
    bool stub = task.as_object().contains("unchanged");
    EXPECT_EQ(stub, task.at("taskArn") == bj::value(first_arn)) << task;
  }

  // A version it does not know (0, or one from another run: other high bits) gets everything
  // whole, even when its number falls inside this run's range.
  int64_t other_run = seen ^ (int64_t{1} << 40);
  for (int64_t unknown : {int64_t{0}, int64_t{1}, other_run}) {
    bj::object answer = poll(instance_arn, unknown);
    for (const auto& task : answer.at("tasks").as_array()) {
      EXPECT_FALSE(task.as_object().contains("unchanged")) << task;
    }
  }
}

TEST_F(AwsvpcTaskTest, ARuleChangeReachesTheAgentsPoll) {
  std::string instance_arn = register_instance();
  std::string group = default_security_group_id("us-east-1");
  ASSERT_TRUE(run_vpc(awsvpc({subnet_}, {group})));
  auto before = call("WharfPollTasks", {{"cluster", "prod"}, {"containerInstance", instance_arn}});
  ASSERT_TRUE(before);
  int64_t version = before->at("version").as_int64();
  {
    std::unique_lock lock(state_->mutex());
    state_->region("us-east-1")
        .security_groups[group]
        .ingress.push_back(IpPermission{"tcp", 8080, 8080, {"0.0.0.0/0"}, {}});
  }
  api_->security_groups_changed("us-east-1");
  auto after = call("WharfPollTasks", {{"cluster", "prod"},
                                       {"containerInstance", instance_arn},
                                       {"version", version},
                                       {"waitSeconds", 1}});
  ASSERT_TRUE(after);
  EXPECT_GT(after->at("version").as_int64(), version);
  const auto& ingress = after->at("tasks").at(0).at("eni").at("ingress").as_array();
  ASSERT_EQ(ingress.size(), 2u);
  EXPECT_EQ(ingress[1].at("protocol"), "tcp");
  EXPECT_EQ(ingress[1].at("fromPort"), 8080);
  EXPECT_EQ(ingress[1].at("sources"), (bj::array{"0.0.0.0/0"}));

  // An ICMP rule carries its type and code (EC2's FromPort and ToPort).
  {
    std::unique_lock lock(state_->mutex());
    state_->region("us-east-1")
        .security_groups[group]
        .ingress.push_back(IpPermission{"icmp", 8, -1, {"10.0.0.0/8"}, {}});
  }
  api_->security_groups_changed("us-east-1");
  // Published once the store has everything before it: wait for the version to move.
  auto icmp = call("WharfPollTasks", {{"cluster", "prod"},
                                      {"containerInstance", instance_arn},
                                      {"version", after->at("version")},
                                      {"waitSeconds", 1}});
  ASSERT_TRUE(icmp);
  const auto& rule = icmp->at("tasks").at(0).at("eni").at("ingress").at(2).as_object();
  EXPECT_EQ(rule.at("protocol"), "icmp");
  EXPECT_EQ(rule.at("icmpType"), 8);
  EXPECT_FALSE(rule.contains("icmpCode"));
}

}  // namespace
}  // namespace wharf::ecs
