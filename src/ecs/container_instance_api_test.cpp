// Unit tests for the container instance operations and the agent monitor, through the same
// operation table the JSON router calls, on a real SQLite store and a manual clock.
#include <gtest/gtest.h>
#include <unistd.h>

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
#include "store/store.hpp"

namespace wharf::ecs {
namespace {

namespace bj = boost::json;
using std::chrono::seconds;

constexpr std::string_view kAccount = "123456789012";

class ContainerInstanceApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wharf-ci-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open();
    ASSERT_TRUE(call("CreateCluster", {{"clusterName", "prod"}}));
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
    if (store_) store_->close();
    service_.reset();
    api_.reset();
    state_.reset();
    store_.reset();
  }

  Result<bj::object> call(const std::string& operation, bj::object input) {
    const auto* implementation = service_->find(operation);
    EXPECT_NE(implementation, nullptr) << operation;
    aws::CallContext context{"us-east-1", std::string(kAccount),
                             "AKIA",      "arn:aws:iam::123456789012:root",
                             "request",   operation};
    std::promise<Result<bj::object>> answer;
    (*implementation)(context, input, [&answer](Result<bj::object> result) {
      answer.set_value(std::move(result));
    });
    return answer.get_future().get();
  }

  // Registers an instance the way `wharf agent` does; returns its ARN.
  std::string register_instance(std::string previous_arn = "", std::string zone = "us-east-1a") {
    bj::object input{
        {"cluster", "prod"},
        {"totalResources",
         bj::array{bj::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", 2048}},
                   bj::object{{"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", 3840}},
                   bj::object{{"name", "PORTS"},
                              {"type", "STRINGSET"},
                              {"stringSetValue", bj::array{"22", "51678"}}}}},
        {"versionInfo", bj::object{{"agentVersion", "0.1.0"}}},
        {"attributes", bj::array{bj::object{{"name", "ecs.availability-zone"}, {"value", zone}},
                                 bj::object{{"name", "ecs.os-type"}, {"value", "linux"}}}},
        {"instanceIdentityDocument", R"({"instanceId":"i-0123456789abcdef0"})"}};
    if (!previous_arn.empty()) input["containerInstanceArn"] = previous_arn;
    auto output = call("RegisterContainerInstance", std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    if (!output) return "";
    return json::string_or(output->at("containerInstance").as_object(), "containerInstanceArn", "");
  }

  bj::object describe(const std::string& arn) {
    auto output = call("DescribeContainerInstances",
                       {{"cluster", "prod"}, {"containerInstances", bj::array{bj::string(arn)}}});
    EXPECT_TRUE(output);
    auto& instances = output->at("containerInstances").as_array();
    EXPECT_EQ(instances.size(), 1u);
    return instances.empty() ? bj::object{} : instances[0].as_object();
  }

  std::vector<std::string> list(bj::object input) {
    input["cluster"] = "prod";
    auto output = call("ListContainerInstances", std::move(input));
    EXPECT_TRUE(output) << output.error().message;
    std::vector<std::string> arns;
    if (!output) return arns;
    for (const auto& arn : output->at("containerInstanceArns").as_array()) {
      arns.emplace_back(arn.as_string());
    }
    return arns;
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

TEST_F(ContainerInstanceApiTest, RegistersWithAnArnOfTheClusterAndAHexId) {
  std::string arn = register_instance();
  std::string prefix = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/";
  ASSERT_TRUE(arn.starts_with(prefix)) << arn;
  std::string id = arn.substr(prefix.size());
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);

  bj::object instance = describe(arn);
  EXPECT_EQ(instance.at("status"), "ACTIVE");
  EXPECT_EQ(instance.at("agentConnected"), true);
  EXPECT_EQ(instance.at("ec2InstanceId"), "i-0123456789abcdef0");
  EXPECT_EQ(instance.at("registeredResources"), instance.at("remainingResources"));
  auto cluster = call("DescribeClusters", {{"clusters", bj::array{"prod"}}});
  ASSERT_TRUE(cluster);
  EXPECT_EQ(cluster->at("clusters").as_array()[0].at("registeredContainerInstancesCount"), 1);
  // By bare id, too.
  EXPECT_EQ(describe(id).at("containerInstanceArn").as_string(), arn);
}

TEST_F(ContainerInstanceApiTest, ReRegistrationKeepsTheIdAndCustomAttributes) {
  std::string arn = register_instance();
  ASSERT_TRUE(
      call("PutAttributes",
           {{"cluster", "prod"},
            {"attributes",
             bj::array{bj::object{{"name", "stack"}, {"value", "blue"}, {"targetId", arn}}}}}));
  EXPECT_EQ(register_instance(arn, "us-east-1b"), arn);
  bj::object instance = describe(arn);
  bj::array expected{bj::object{{"name", "ecs.availability-zone"}, {"value", "us-east-1b"}},
                     bj::object{{"name", "ecs.os-type"}, {"value", "linux"}},
                     bj::object{{"name", "stack"}, {"value", "blue"}}};
  EXPECT_EQ(instance.at("attributes"), expected);
  EXPECT_EQ(list({}).size(), 1u);
}

TEST_F(ContainerInstanceApiTest, ReRegistrationOfADeregisteredInstanceIsRefused) {
  std::string arn = register_instance();
  ASSERT_TRUE(
      call("DeregisterContainerInstance", {{"cluster", "prod"}, {"containerInstance", arn}}));
  bj::object input{
      {"cluster", "prod"},
      {"containerInstanceArn", arn},
      {"totalResources",
       bj::array{bj::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", 1}},
                 bj::object{{"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", 1}}}}};
  auto output = call("RegisterContainerInstance", input);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().code, ErrorCode::kClient);
  EXPECT_EQ(describe(arn).at("status"), "INACTIVE");
  EXPECT_TRUE(list({}).empty());
}

TEST_F(ContainerInstanceApiTest, ListFiltersByStatusAndQuery) {
  std::string east_a = register_instance("", "us-east-1a");
  std::string east_b = register_instance("", "us-east-1b");
  ASSERT_TRUE(
      call("UpdateContainerInstancesState", {{"cluster", "prod"},
                                             {"containerInstances", bj::array{bj::string(east_b)}},
                                             {"status", "DRAINING"}}));
  EXPECT_EQ(list({{"status", "DRAINING"}}), std::vector<std::string>{east_b});
  EXPECT_EQ(list({{"status", "ACTIVE"}}), std::vector<std::string>{east_a});
  EXPECT_EQ(list({{"filter", "attribute:ecs.availability-zone == us-east-1b"}}),
            std::vector<std::string>{east_b});
  EXPECT_EQ(list({{"filter", "agentConnected == true"}}).size(), 2u);
  auto bad = call("ListContainerInstances", {{"cluster", "prod"}, {"filter", "attribute:"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidParameter);
}

TEST_F(ContainerInstanceApiTest, ListPagesThroughEveryInstance) {
  std::set<std::string> registered;
  for (int instance_idx = 0; instance_idx < 5; ++instance_idx) {
    registered.insert(register_instance());
  }
  std::set<std::string> seen;
  bj::object input{{"cluster", "prod"}, {"maxResults", 2}};
  for (int page_idx = 0; page_idx < 5; ++page_idx) {
    auto output = call("ListContainerInstances", input);
    ASSERT_TRUE(output) << output.error().message;
    for (const auto& arn : output->at("containerInstanceArns").as_array()) {
      EXPECT_TRUE(seen.insert(std::string(arn.as_string())).second);
    }
    auto token = json::get_string(*output, "nextToken");
    if (!token) break;
    input["nextToken"] = *token;
  }
  EXPECT_EQ(seen, registered);
}

TEST_F(ContainerInstanceApiTest, AnAgentSilentForThreeIntervalsIsDisconnected) {
  std::string arn = register_instance();
  bj::object heartbeat{{"cluster", "prod"}, {"containerInstance", arn}};
  clock_.advance(seconds(25));
  ASSERT_TRUE(call("DiscoverPollEndpoint", heartbeat));
  clock_.advance(seconds(30));  // exactly three intervals: not yet
  EXPECT_EQ(monitor_->check_once(), 0u);
  EXPECT_EQ(describe(arn).at("agentConnected"), true);
  clock_.advance(seconds(1));
  EXPECT_EQ(monitor_->check_once(), 1u);
  EXPECT_EQ(describe(arn).at("agentConnected"), false);
  EXPECT_EQ(list({{"filter", "agentConnected == false"}}), std::vector<std::string>{arn});

  ASSERT_TRUE(call("DiscoverPollEndpoint", heartbeat));
  EXPECT_EQ(describe(arn).at("agentConnected"), true);
}

TEST_F(ContainerInstanceApiTest, AfterARestartEveryAgentGetsAFullTimeout) {
  std::string arn = register_instance();
  close();
  clock_.advance(seconds(3600));
  open();
  EXPECT_EQ(describe(arn).at("agentConnected"), true);
  EXPECT_EQ(monitor_->check_once(), 0u);  // starts the clock for loaded instances
  clock_.advance(seconds(31));
  EXPECT_EQ(monitor_->check_once(), 1u);
  close();
  open();
  EXPECT_EQ(describe(arn).at("agentConnected"), false);  // the change was durable
}

TEST_F(ContainerInstanceApiTest, HeartbeatsOfDeregisteredInstancesAreRefused) {
  std::string arn = register_instance();
  ASSERT_TRUE(
      call("DeregisterContainerInstance", {{"cluster", "prod"}, {"containerInstance", arn}}));
  auto beat = call("DiscoverPollEndpoint", {{"cluster", "prod"}, {"containerInstance", arn}});
  ASSERT_FALSE(beat);
  EXPECT_EQ(beat.error().code, ErrorCode::kClient);
}

TEST_F(ContainerInstanceApiTest, AttributesAreLimitedToTenCustomOnesPerInstance) {
  std::string arn = register_instance();
  bj::array ten;
  for (int attribute_idx = 0; attribute_idx < 10; ++attribute_idx) {
    ten.push_back(
        bj::object{{"name", "custom" + std::to_string(attribute_idx)}, {"targetId", arn}});
  }
  ASSERT_TRUE(call("PutAttributes", {{"cluster", "prod"}, {"attributes", ten}}));
  auto eleventh =
      call("PutAttributes",
           {{"cluster", "prod"},
            {"attributes", bj::array{bj::object{{"name", "one-more"}, {"targetId", arn}}}}});
  ASSERT_FALSE(eleventh);
  EXPECT_EQ(eleventh.error().code, ErrorCode::kAttributeLimitExceeded);
  auto listed = call(
      "ListAttributes",
      {{"cluster", "prod"}, {"targetType", "container-instance"}, {"attributeName", "one-more"}});
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->at("attributes").as_array().empty());

  ASSERT_TRUE(
      call("DeleteAttributes",
           {{"cluster", "prod"},
            {"attributes", bj::array{bj::object{{"name", "custom0"}, {"targetId", arn}}}}}));
  EXPECT_TRUE(
      call("PutAttributes",
           {{"cluster", "prod"},
            {"attributes", bj::array{bj::object{{"name", "one-more"}, {"targetId", arn}}}}}));
  auto unknown =
      call("PutAttributes",
           {{"cluster", "prod"},
            {"attributes",
             bj::array{bj::object{
                 {"name", "x"}, {"targetId", "0123"}, {"targetType", "container-instance"}}}}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kTargetNotFound);
}

TEST_F(ContainerInstanceApiTest, ListAttributesPages) {
  register_instance();
  register_instance();
  // Two instances with two agent attributes each: two pages of at most three.
  std::vector<std::string> keys;
  bj::object input{{"cluster", "prod"}, {"targetType", "container-instance"}, {"maxResults", 3}};
  for (int page_idx = 0; page_idx < 4; ++page_idx) {
    auto output = call("ListAttributes", input);
    ASSERT_TRUE(output) << output.error().message;
    for (const auto& attribute : output->at("attributes").as_array()) {
      keys.push_back(std::string(attribute.at("targetId").as_string()) + " " +
                     std::string(attribute.at("name").as_string()));
    }
    auto token = json::get_string(*output, "nextToken");
    if (!token) break;
    input["nextToken"] = *token;
  }
  EXPECT_EQ(keys.size(), 4u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 4u);
}

TEST_F(ContainerInstanceApiTest, AClusterWithInstancesCannotBeDeleted) {
  std::string arn = register_instance();
  auto refused = call("DeleteCluster", {{"cluster", "prod"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kClusterContainsContainerInstances);
  ASSERT_TRUE(
      call("UpdateContainerInstancesState", {{"cluster", "prod"},
                                             {"containerInstances", bj::array{bj::string(arn)}},
                                             {"status", "DRAINING"}}));
  EXPECT_FALSE(call("DeleteCluster", {{"cluster", "prod"}}));  // draining still counts
  ASSERT_TRUE(
      call("DeregisterContainerInstance", {{"cluster", "prod"}, {"containerInstance", arn}}));
  EXPECT_TRUE(call("DeleteCluster", {{"cluster", "prod"}}));
}

}  // namespace
}  // namespace wharf::ecs
