// Unit tests for the EC2 networking operations: security groups and rules, subnets, the default
// VPC and tags, through the operations registered on the EC2 Query service (their answers encoded
// as its XML) on a real SQLite store, including a reload of the state.
#include "ecs/ec2_api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "aws/query_api.hpp"
#include "aws/service_model.hpp"
#include "common/json.hpp"
#include "ecs/state.hpp"
#include "ecs/vpc.hpp"
#include "store/store.hpp"

namespace wharf::ecs {
namespace {

namespace bj = boost::json;

constexpr std::string_view kAccount = "123456789012";
constexpr std::string_view kRegion = "us-east-1";

using Handler = void (Ec2Api::*)(const Ec2Api::Context&, const Ec2Api::Input&, Ec2Api::Reply);

// Operations Wharf's EC2 model may leave out (so not registered): called directly.
const std::map<std::string, Handler>& unregistered() {
  static const std::map<std::string, Handler> kHandlers = {
      {"AuthorizeSecurityGroupEgress", &Ec2Api::authorize_security_group_egress},
      {"RevokeSecurityGroupEgress", &Ec2Api::revoke_security_group_egress},
  };
  return kHandlers;
}

// Text as a JSON string, to compare with members of the output.
bj::value json_text(std::string_view text) {
  return bj::string(text);
}

bj::object tcp_from_cidr(int64_t port, std::string cidr) {
  return {{"IpProtocol", "tcp"},
          {"FromPort", port},
          {"ToPort", port},
          {"IpRanges", bj::array{bj::object{{"CidrIp", cidr}}}}};
}

bj::object tcp_from_group(int64_t port, std::string group_id) {
  return {{"IpProtocol", "tcp"},
          {"FromPort", port},
          {"ToPort", port},
          {"UserIdGroupPairs", bj::array{bj::object{{"GroupId", group_id}}}}};
}

class Ec2ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wharf-ec2-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open();
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
    api_ = std::make_unique<Ec2Api>(*state_, clock_);
    service_ = std::make_unique<aws::QueryService>(aws::ServiceModel::ec2(), "ec2", "2016-11-15",
                                                   "http://ec2.amazonaws.com/doc/2016-11-15/");
    api_->register_operations(*service_);
    api_->on_security_groups_changed([this](const std::string& region) {
      std::lock_guard lock(changes_mutex_);
      changes_.push_back(region);
    });
  }

  void close() {
    if (store_) store_->close();
    service_.reset();
    api_.reset();
    state_.reset();
    store_.reset();
  }

  void reopen() {
    close();
    open();
  }

  // Calls the operation as the Query layer would (or directly, when it is not registered); a
  // registered operation's answer must encode as the model's XML.
  Result<bj::object> call(const std::string& operation, bj::object input,
                          std::string_view region = kRegion) {
    aws::CallContext context{std::string(region),
                             std::string(kAccount),
                             "AKIA",
                             "arn:aws:iam::123456789012:root",
                             "request",
                             operation};
    std::promise<Result<bj::object>> answer;
    auto future = answer.get_future();
    auto reply = [&answer](Result<bj::object> result) { answer.set_value(std::move(result)); };
    const aws::JsonOperation* registered = service_->find(operation);
    if (registered != nullptr) {
      (*registered)(context, input, reply);
    } else {
      auto handler = unregistered().find(operation);
      EXPECT_NE(handler, unregistered().end()) << operation;
      (api_.get()->*handler->second)(context, input, reply);
    }
    auto result = future.get();
    if (result && registered != nullptr) {
      auto xml = service_->encode_output(operation, *result, "request");
      EXPECT_TRUE(xml) << operation << ": " << xml.error().message;
    }
    return result;
  }

  bj::object ok(const std::string& operation, bj::object input) {
    auto output = call(operation, std::move(input));
    EXPECT_TRUE(output) << operation << ": " << output.error().wire_type << " "
                        << output.error().message;
    return output ? *output : bj::object{};
  }

  // The EC2 error code the call fails with ("" when it succeeds).
  std::string code(const std::string& operation, bj::object input) {
    auto output = call(operation, std::move(input));
    if (output) return "";
    EXPECT_FALSE(output.error().message.empty());
    EXPECT_NE(output.error().code, ErrorCode::kInternal) << output.error().message;
    return output.error().wire_type;
  }

  std::string create_group(const std::string& name, bj::object extra = {}) {
    extra["GroupName"] = name;
    extra["Description"] = name + " servers";
    auto output = ok("CreateSecurityGroup", std::move(extra));
    return json::string_or(output, "GroupId", "");
  }

  bj::object group(const std::string& id) {
    auto output = ok("DescribeSecurityGroups", {{"GroupIds", bj::array{bj::string(id)}}});
    const auto* groups = json::get_array(output, "SecurityGroups");
    EXPECT_TRUE(groups != nullptr && groups->size() == 1);
    return groups != nullptr && groups->size() == 1 ? groups->at(0).as_object() : bj::object{};
  }

  bj::object subnet(const std::string& id) {
    auto output = ok("DescribeSubnets", {{"SubnetIds", bj::array{bj::string(id)}}});
    const auto* subnets = json::get_array(output, "Subnets");
    EXPECT_TRUE(subnets != nullptr && subnets->size() == 1);
    return subnets != nullptr && subnets->size() == 1 ? subnets->at(0).as_object() : bj::object{};
  }

  std::vector<std::string> ids(const bj::object& output, std::string_view list,
                               std::string_view key) {
    std::vector<std::string> out;
    if (const auto* items = json::get_array(output, list)) {
      for (const auto& item : *items) out.push_back(json::string_or(item.as_object(), key, ""));
    }
    return out;
  }

  std::vector<std::string> changes() {
    std::lock_guard lock(changes_mutex_);
    return changes_;
  }

  // A task in the region whose ENI names the subnet and groups.
  void add_task_with_eni(const std::string& task_id, const std::string& subnet_id,
                         std::vector<std::string> groups, const std::string& ip,
                         std::string status = "ATTACHED") {
    std::unique_lock lock(state_->mutex());
    Task task;
    task.id = task_id;
    task.cluster = "prod";
    task.container_instance_id = "instance-1";
    EniAttachment eni;
    eni.status = std::move(status);
    eni.subnet_id = subnet_id;
    eni.private_ipv4 = ip;
    eni.security_group_ids = std::move(groups);
    task.eni = eni;
    state_->region(std::string(kRegion)).add_task(std::move(task));
  }

  void set_eni_status(const std::string& task_id, const std::string& status) {
    std::unique_lock lock(state_->mutex());
    state_->region(std::string(kRegion)).find_task("prod", task_id)->eni->status = status;
  }

  std::filesystem::path dir_;
  ManualClock clock_{TimePoint(std::chrono::seconds(1'700'000'000))};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EcsState> state_;
  std::unique_ptr<Ec2Api> api_;
  std::unique_ptr<aws::QueryService> service_;
  std::mutex changes_mutex_;
  std::vector<std::string> changes_;
};

TEST_F(Ec2ApiTest, TheDefaultNetworkIsAlwaysThere) {
  auto vpcs = ok("DescribeVpcs", {});
  ASSERT_EQ(vpcs.at("Vpcs").as_array().size(), 1u);
  const auto& vpc = vpcs.at("Vpcs").as_array()[0].as_object();
  EXPECT_EQ(vpc.at("VpcId"), json_text(default_vpc_id(kRegion)));
  EXPECT_EQ(vpc.at("CidrBlock"), "172.31.0.0/16");
  EXPECT_EQ(vpc.at("IsDefault"), true);
  EXPECT_EQ(vpc.at("State"), "available");
  EXPECT_EQ(vpc.at("OwnerId"), json_text(kAccount));

  auto subnets = ok("DescribeSubnets", {});
  ASSERT_EQ(subnets.at("Subnets").as_array().size(), 1u);
  const auto& subnet = subnets.at("Subnets").as_array()[0].as_object();
  EXPECT_EQ(subnet.at("SubnetId"), json_text(default_subnet_id(kRegion)));
  EXPECT_EQ(subnet.at("VpcId"), vpc.at("VpcId"));
  EXPECT_EQ(subnet.at("CidrBlock"), "172.31.0.0/20");
  EXPECT_EQ(subnet.at("AvailabilityZone"), "us-east-1a");
  EXPECT_EQ(subnet.at("DefaultForAz"), true);
  EXPECT_EQ(subnet.at("AvailableIpAddressCount"), 4096 - 5);
  EXPECT_EQ(subnet.at("State"), "available");
  EXPECT_EQ(subnet.at("SubnetArn"),
            json_text("arn:aws:ec2:us-east-1:123456789012:subnet/" + default_subnet_id(kRegion)));

  auto groups = ok("DescribeSecurityGroups", {});
  ASSERT_EQ(groups.at("SecurityGroups").as_array().size(), 1u);
  const auto& group = groups.at("SecurityGroups").as_array()[0].as_object();
  std::string group_id = default_security_group_id(kRegion);
  EXPECT_EQ(group.at("GroupId"), json_text(group_id));
  EXPECT_EQ(group.at("GroupName"), "default");
  EXPECT_EQ(group.at("VpcId"), vpc.at("VpcId"));
  const auto& ingress = group.at("IpPermissions").as_array();
  ASSERT_EQ(ingress.size(), 1u);
  EXPECT_EQ(ingress[0].at("IpProtocol"), "-1");
  EXPECT_EQ(ingress[0].at("UserIdGroupPairs").as_array()[0].at("GroupId"), json_text(group_id));
  EXPECT_EQ(ingress[0].at("UserIdGroupPairs").as_array()[0].at("UserId"), json_text(kAccount));
  const auto& egress = group.at("IpPermissionsEgress").as_array();
  ASSERT_EQ(egress.size(), 1u);
  EXPECT_EQ(egress[0].at("IpRanges").as_array()[0].at("CidrIp"), "0.0.0.0/0");

  // Each region has its own.
  auto other = call("DescribeVpcs", {}, "eu-west-1");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->at("Vpcs").as_array()[0].at("VpcId"), json_text(default_vpc_id("eu-west-1")));
  auto other_subnets = call("DescribeSubnets", {}, "eu-west-1");
  ASSERT_TRUE(other_subnets);
  EXPECT_EQ(other_subnets->at("Subnets").as_array()[0].at("AvailabilityZone"), "eu-west-1a");
}

TEST_F(Ec2ApiTest, DescribeVpcsFiltersAndErrors) {
  std::string vpc_id = default_vpc_id(kRegion);
  auto filtered = [&](std::string name, std::string value) {
    return ids(ok("DescribeVpcs",
                  {{"Filters", bj::array{bj::object{{"Name", name},
                                                    {"Values", bj::array{bj::string(value)}}}}}}),
               "Vpcs", "VpcId");
  };
  EXPECT_EQ(filtered("is-default", "true"), std::vector{vpc_id});
  EXPECT_TRUE(filtered("is-default", "false").empty());
  EXPECT_EQ(filtered("vpc-id", vpc_id), std::vector{vpc_id});
  EXPECT_EQ(filtered("vpc-id", "vpc-*"), std::vector{vpc_id});
  EXPECT_TRUE(filtered("vpc-id", "vpc-12345678").empty());
  EXPECT_EQ(ids(ok("DescribeVpcs", {{"VpcIds", bj::array{bj::string(vpc_id)}}}), "Vpcs", "VpcId"),
            std::vector{vpc_id});
  EXPECT_EQ(code("DescribeVpcs", {{"VpcIds", bj::array{"vpc-12345678"}}}), "InvalidVpcID.NotFound");
  EXPECT_EQ(code("DescribeVpcs", {{"VpcIds", bj::array{"main"}}}), "InvalidVpcID.Malformed");
  EXPECT_EQ(
      code("DescribeVpcs",
           {{"Filters", bj::array{bj::object{{"Name", "colour"}, {"Values", bj::array{"blue"}}}}}}),
      "InvalidParameterValue");
}

TEST_F(Ec2ApiTest, CreateAndDescribeSecurityGroups) {
  auto created = ok("CreateSecurityGroup",
                    {{"GroupName", "web"},
                     {"Description", "web servers"},
                     {"TagSpecifications",
                      bj::array{bj::object{
                          {"ResourceType", "security-group"},
                          {"Tags", bj::array{bj::object{{"Key", "team"}, {"Value", "edge"}}}}}}}});
  std::string web = json::string_or(created, "GroupId", "");
  EXPECT_TRUE(is_ec2_id(web, "sg"));
  EXPECT_EQ(created.at("SecurityGroupArn"),
            json_text("arn:aws:ec2:us-east-1:123456789012:security-group/" + web));
  EXPECT_EQ(created.at("Tags").as_array()[0].at("Key"), "team");
  std::string db = create_group("db", {{"VpcId", default_vpc_id(kRegion)}});

  bj::object described = group(web);
  EXPECT_EQ(described.at("GroupName"), "web");
  EXPECT_EQ(described.at("Description"), "web servers");
  EXPECT_EQ(described.at("VpcId"), json_text(default_vpc_id(kRegion)));
  EXPECT_EQ(described.at("OwnerId"), json_text(kAccount));
  EXPECT_TRUE(described.at("IpPermissions").as_array().empty());
  // A new group may send anywhere, as in EC2.
  ASSERT_EQ(described.at("IpPermissionsEgress").as_array().size(), 1u);
  EXPECT_EQ(described.at("IpPermissionsEgress").as_array()[0].at("IpProtocol"), "-1");
  EXPECT_EQ(described.at("Tags").as_array()[0].at("Value"), "edge");

  auto by_name = ok("DescribeSecurityGroups", {{"GroupNames", bj::array{"db", "web"}}});
  EXPECT_EQ(ids(by_name, "SecurityGroups", "GroupName").size(), 2u);
  auto filtered = [&](std::string name, std::string value) {
    return ids(ok("DescribeSecurityGroups",
                  {{"Filters", bj::array{bj::object{{"Name", name},
                                                    {"Values", bj::array{bj::string(value)}}}}}}),
               "SecurityGroups", "GroupName");
  };
  EXPECT_EQ(filtered("group-name", "w*"), std::vector<std::string>{"web"});
  EXPECT_EQ(filtered("group-id", db), std::vector<std::string>{"db"});
  EXPECT_EQ(filtered("description", "d? servers"), std::vector<std::string>{"db"});
  EXPECT_EQ(filtered("tag:team", "edge"), std::vector<std::string>{"web"});
  EXPECT_EQ(filtered("tag-key", "team"), std::vector<std::string>{"web"});
  EXPECT_EQ(filtered("vpc-id", default_vpc_id(kRegion)).size(), 3u);
  EXPECT_TRUE(filtered("vpc-id", "vpc-12345678").empty());
  // Ids and filters together: both must hold.
  auto both =
      ok("DescribeSecurityGroups",
         {{"GroupIds", bj::array{bj::string(web), bj::string(db)}},
          {"Filters",
           bj::array{bj::object{{"Name", "group-name"}, {"Values", bj::array{"db", "nope"}}}}}});
  EXPECT_EQ(ids(both, "SecurityGroups", "GroupId"), std::vector{db});

  EXPECT_EQ(code("DescribeSecurityGroups", {{"GroupIds", bj::array{"sg-12345678"}}}),
            "InvalidGroup.NotFound");
  EXPECT_EQ(code("DescribeSecurityGroups", {{"GroupIds", bj::array{"web"}}}),
            "InvalidGroupId.Malformed");
  EXPECT_EQ(code("DescribeSecurityGroups", {{"GroupNames", bj::array{"nope"}}}),
            "InvalidGroup.NotFound");
  EXPECT_EQ(
      code("DescribeSecurityGroups",
           {{"Filters", bj::array{bj::object{{"Name", "colour"}, {"Values", bj::array{"blue"}}}}}}),
      "InvalidParameterValue");
}

TEST_F(Ec2ApiTest, CreateSecurityGroupErrors) {
  create_group("web");
  EXPECT_EQ(code("CreateSecurityGroup", {{"Description", "d"}}), "MissingParameter");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "x"}}), "MissingParameter");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "web"}, {"Description", "again"}}),
            "InvalidGroup.Duplicate");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "default"}, {"Description", "d"}}),
            "InvalidGroup.Duplicate");
  EXPECT_EQ(code("CreateSecurityGroup",
                 {{"GroupName", "x"}, {"Description", "d"}, {"VpcId", "vpc-12345678"}}),
            "InvalidVpcID.NotFound");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "caf\xc3\xa9"}, {"Description", "d"}}),
            "InvalidParameterValue");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", ""}, {"Description", "d"}}),
            "InvalidParameterValue");
  EXPECT_EQ(
      code("CreateSecurityGroup", {{"GroupName", std::string(256, 'a')}, {"Description", "d"}}),
      "InvalidParameterValue");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "sg-web"}, {"Description", "d"}}),
            "InvalidParameterValue");
  EXPECT_EQ(code("CreateSecurityGroup",
                 {{"GroupName", "x"},
                  {"Description", "d"},
                  {"TagSpecifications", bj::array{bj::object{{"ResourceType", "subnet"}}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(code("CreateSecurityGroup",
                 {{"GroupName", "x"},
                  {"Description", "d"},
                  {"TagSpecifications",
                   bj::array{bj::object{
                       {"ResourceType", "security-group"},
                       {"Tags", bj::array{bj::object{{"Key", "aws:x"}, {"Value", "y"}}}}}}}}),
            "InvalidParameterValue");
}

TEST_F(Ec2ApiTest, AuthorizeAndRevokeIngress) {
  std::string web = create_group("web");
  std::string lb = create_group("lb");
  auto authorized =
      ok("AuthorizeSecurityGroupIngress",
         {{"GroupId", web},
          {"IpPermissions", bj::array{tcp_from_cidr(80, "0.0.0.0/0"), tcp_from_group(8080, lb)}}});
  EXPECT_EQ(authorized.at("Return"), true);
  const auto& rules = authorized.at("SecurityGroupRules").as_array();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_TRUE(is_ec2_id(rules[0].at("SecurityGroupRuleId").as_string(), "sgr"));
  EXPECT_EQ(rules[0].at("GroupId"), json_text(web));
  EXPECT_EQ(rules[0].at("IsEgress"), false);
  EXPECT_EQ(rules[0].at("CidrIpv4"), "0.0.0.0/0");
  EXPECT_EQ(rules[1].at("ReferencedGroupInfo").at("GroupId"), json_text(lb));
  EXPECT_EQ(changes(), std::vector<std::string>{"us-east-1"});

  // The legacy flat form, and a source group by name; protocol numbers become names.
  ok("AuthorizeSecurityGroupIngress", {{"GroupName", "web"},
                                       {"IpProtocol", "6"},
                                       {"FromPort", 443},
                                       {"ToPort", 443},
                                       {"CidrIp", "10.0.0.0/8"}});
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", web},
      {"IpPermissions",
       bj::array{bj::object{{"IpProtocol", "udp"},
                            {"FromPort", "53"},
                            {"ToPort", "53"},
                            {"UserIdGroupPairs", bj::array{bj::object{{"GroupName", "lb"}}}}}}}});

  bj::object described = group(web);
  const auto& ingress = described.at("IpPermissions").as_array();
  ASSERT_EQ(ingress.size(), 4u);
  EXPECT_EQ(ingress[0].at("IpProtocol"), "tcp");
  EXPECT_EQ(ingress[0].at("FromPort"), 80);
  EXPECT_EQ(ingress[0].at("ToPort"), 80);
  EXPECT_EQ(ingress[0].at("IpRanges").as_array()[0].at("CidrIp"), "0.0.0.0/0");
  EXPECT_EQ(ingress[1].at("UserIdGroupPairs").as_array()[0].at("GroupId"), json_text(lb));
  EXPECT_EQ(ingress[1].at("UserIdGroupPairs").as_array()[0].at("UserId"), json_text(kAccount));
  EXPECT_EQ(ingress[2].at("FromPort"), 443);
  EXPECT_EQ(ingress[3].at("IpProtocol"), "udp");
  EXPECT_EQ(ingress[3].at("UserIdGroupPairs").as_array()[0].at("GroupId"), json_text(lb));

  // Another CIDR on the same port joins the same permission.
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_cidr(80, "192.168.0.0/16")}}});
  EXPECT_EQ(group(web).at("IpPermissions").as_array()[0].at("IpRanges").as_array().size(), 2u);

  auto revoked =
      ok("RevokeSecurityGroupIngress",
         {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_cidr(80, "0.0.0.0/0")}}});
  EXPECT_EQ(revoked.at("Return"), true);
  EXPECT_EQ(revoked.at("RevokedSecurityGroupRules").as_array()[0].at("SecurityGroupRuleId"),
            rules[0].at("SecurityGroupRuleId"));
  // By rule id.
  ok("RevokeSecurityGroupIngress",
     {{"GroupId", web}, {"SecurityGroupRuleIds", bj::array{rules[1].at("SecurityGroupRuleId")}}});
  ok("RevokeSecurityGroupIngress", {{"GroupId", web},
                                    {"IpProtocol", "tcp"},
                                    {"FromPort", 443},
                                    {"ToPort", 443},
                                    {"CidrIp", "10.0.0.0/8"}});
  described = group(web);
  ASSERT_EQ(described.at("IpPermissions").as_array().size(), 2u);
  EXPECT_EQ(described.at("IpPermissions").as_array()[0].at("IpRanges").as_array()[0].at("CidrIp"),
            "192.168.0.0/16");
  EXPECT_EQ(changes().size(), 7u);
}

TEST_F(Ec2ApiTest, RuleErrors) {
  std::string web = create_group("web");
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_cidr(80, "0.0.0.0/0")}}});
  auto authorize = [&](bj::object permission) {
    return code("AuthorizeSecurityGroupIngress",
                {{"GroupId", web}, {"IpPermissions", bj::array{std::move(permission)}}});
  };
  EXPECT_EQ(authorize(tcp_from_cidr(80, "0.0.0.0/0")), "InvalidPermission.Duplicate");
  EXPECT_EQ(authorize(tcp_from_cidr(70000, "0.0.0.0/0")), "InvalidParameterValue");
  EXPECT_EQ(authorize(tcp_from_cidr(80, "0.0.0.0")), "InvalidParameterValue");
  EXPECT_EQ(authorize(tcp_from_cidr(80, "10.0.0.1/8")), "InvalidParameterValue");
  EXPECT_EQ(authorize({{"IpProtocol", "tcp"},
                       {"FromPort", 90},
                       {"ToPort", 80},
                       {"IpRanges", bj::array{bj::object{{"CidrIp", "0.0.0.0/0"}}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(authorize({{"IpProtocol", "gre"},
                       {"IpRanges", bj::array{bj::object{{"CidrIp", "0.0.0.0/0"}}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(authorize({{"IpProtocol", "tcp"}, {"FromPort", 1}, {"ToPort", 2}}), "MissingParameter");
  EXPECT_EQ(authorize(tcp_from_group(80, "sg-12345678")), "InvalidGroup.NotFound");
  EXPECT_EQ(authorize(tcp_from_group(80, "lb")), "InvalidGroupId.Malformed");
  EXPECT_EQ(authorize({{"IpProtocol", "tcp"},
                       {"FromPort", 1},
                       {"ToPort", 2},
                       {"UserIdGroupPairs", bj::array{bj::object{{"GroupName", "nope"}}}}}),
            "InvalidGroup.NotFound");
  EXPECT_EQ(authorize({{"IpProtocol", "tcp"},
                       {"FromPort", 1},
                       {"ToPort", 2},
                       {"Ipv6Ranges", bj::array{bj::object{{"CidrIpv6", "::/0"}}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(code("AuthorizeSecurityGroupIngress",
                 {{"GroupId", "sg-12345678"},
                  {"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
            "InvalidGroup.NotFound");
  EXPECT_EQ(
      code("AuthorizeSecurityGroupIngress",
           {{"GroupId", "web"}, {"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
      "InvalidGroupId.Malformed");
  EXPECT_EQ(
      code("AuthorizeSecurityGroupIngress",
           {{"GroupName", "nope"}, {"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
      "InvalidGroup.NotFound");
  EXPECT_EQ(code("AuthorizeSecurityGroupIngress",
                 {{"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
            "MissingParameter");
  EXPECT_EQ(code("AuthorizeSecurityGroupIngress",
                 {{"GroupId", web},
                  {"GroupName", "web"},
                  {"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
            "InvalidParameterCombination");
  EXPECT_EQ(code("AuthorizeSecurityGroupIngress",
                 {{"GroupId", web},
                  {"CidrIp", "10.0.0.0/8"},
                  {"IpPermissions", bj::array{tcp_from_cidr(22, "0.0.0.0/0")}}}),
            "InvalidParameterCombination");
  EXPECT_EQ(code("AuthorizeSecurityGroupIngress", {{"GroupId", web}}), "MissingParameter");
  EXPECT_EQ(code("RevokeSecurityGroupIngress",
                 {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_cidr(81, "0.0.0.0/0")}}}),
            "InvalidPermission.NotFound");
  EXPECT_EQ(code("RevokeSecurityGroupIngress",
                 {{"GroupId", web}, {"SecurityGroupRuleIds", bj::array{"sgr-12345678"}}}),
            "InvalidSecurityGroupRuleId.NotFound");
  // Failed calls change nothing and tell nobody.
  EXPECT_EQ(group(web).at("IpPermissions").as_array().size(), 1u);
  EXPECT_EQ(changes().size(), 1u);
}

TEST_F(Ec2ApiTest, EgressRules) {
  std::string web = create_group("web");
  ok("RevokeSecurityGroupEgress",
     {{"GroupId", web},
      {"IpPermissions",
       bj::array{bj::object{{"IpProtocol", "-1"},
                            {"IpRanges", bj::array{bj::object{{"CidrIp", "0.0.0.0/0"}}}}}}}});
  ok("AuthorizeSecurityGroupEgress",
     {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_cidr(5432, "10.0.0.0/8")}}});
  bj::object described = group(web);
  const auto& egress = described.at("IpPermissionsEgress").as_array();
  ASSERT_EQ(egress.size(), 1u);
  EXPECT_EQ(egress[0].at("FromPort"), 5432);
  EXPECT_TRUE(described.at("IpPermissions").as_array().empty());
  EXPECT_EQ(changes().size(), 2u);
}

TEST_F(Ec2ApiTest, DeleteSecurityGroup) {
  std::string web = create_group("web");
  std::string lb = create_group("lb");
  std::string db = create_group("db");
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupId", default_security_group_id(kRegion)}}),
            "CannotDelete");
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupName", "default"}}), "CannotDelete");
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupId", "sg-12345678"}}), "InvalidGroup.NotFound");
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupId", "lb"}}), "InvalidGroupId.Malformed");
  EXPECT_EQ(code("DeleteSecurityGroup", {}), "MissingParameter");

  // Referenced by another group's rule.
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_group(80, lb)}}});
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupId", lb}}), "DependencyViolation");
  // A reference to itself does not hold a group.
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", db}, {"IpPermissions", bj::array{tcp_from_group(5432, db)}}});

  // Used by a task until its ENI is detached.
  add_task_with_eni("t1", default_subnet_id(kRegion), {db}, "172.31.0.10");
  EXPECT_EQ(code("DeleteSecurityGroup", {{"GroupId", db}}), "DependencyViolation");
  set_eni_status("t1", "DETACHED");

  size_t before = changes().size();
  auto deleted = ok("DeleteSecurityGroup", {{"GroupId", db}});
  EXPECT_EQ(deleted.at("Return"), true);
  EXPECT_EQ(deleted.at("GroupId"), json_text(db));
  EXPECT_EQ(changes().size(), before + 1);
  EXPECT_EQ(code("DescribeSecurityGroups", {{"GroupIds", bj::array{bj::string(db)}}}),
            "InvalidGroup.NotFound");

  ok("RevokeSecurityGroupIngress",
     {{"GroupId", web}, {"IpPermissions", bj::array{tcp_from_group(80, lb)}}});
  ok("DeleteSecurityGroup", {{"GroupName", "lb"}});
  auto names = ids(ok("DescribeSecurityGroups", {}), "SecurityGroups", "GroupName");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"default", "web"}));
}

TEST_F(Ec2ApiTest, CreateDescribeAndDeleteSubnets) {
  std::string vpc_id = default_vpc_id(kRegion);
  auto created = ok("CreateSubnet",
                    {{"VpcId", vpc_id},
                     {"CidrBlock", "172.31.16.0/20"},
                     {"AvailabilityZone", "us-east-1b"},
                     {"TagSpecifications",
                      bj::array{bj::object{
                          {"ResourceType", "subnet"},
                          {"Tags", bj::array{bj::object{{"Key", "tier"}, {"Value", "app"}}}}}}}});
  const auto& subnet_wire = created.at("Subnet").as_object();
  std::string id = json::string_or(subnet_wire, "SubnetId", "");
  EXPECT_TRUE(is_ec2_id(id, "subnet"));
  EXPECT_EQ(subnet_wire.at("VpcId"), json_text(vpc_id));
  EXPECT_EQ(subnet_wire.at("CidrBlock"), "172.31.16.0/20");
  EXPECT_EQ(subnet_wire.at("AvailabilityZone"), "us-east-1b");
  EXPECT_EQ(subnet_wire.at("AvailableIpAddressCount"), 4096 - 5);
  EXPECT_EQ(subnet_wire.at("State"), "available");
  EXPECT_EQ(subnet_wire.at("DefaultForAz"), false);
  EXPECT_EQ(subnet_wire.at("MapPublicIpOnLaunch"), false);
  EXPECT_EQ(subnet_wire.at("SubnetArn"),
            json_text("arn:aws:ec2:us-east-1:123456789012:subnet/" + id));
  EXPECT_EQ(subnet_wire.at("Tags").as_array()[0].at("Value"), "app");

  auto small = ok("CreateSubnet", {{"VpcId", vpc_id}, {"CidrBlock", "172.31.32.0/28"}});
  std::string small_id = json::string_or(small.at("Subnet").as_object(), "SubnetId", "");
  EXPECT_EQ(small.at("Subnet").at("AvailabilityZone"), "us-east-1a");
  EXPECT_EQ(small.at("Subnet").at("AvailableIpAddressCount"), 11);

  auto filtered = [&](std::string name, std::string value) {
    return ids(ok("DescribeSubnets",
                  {{"Filters", bj::array{bj::object{{"Name", name},
                                                    {"Values", bj::array{bj::string(value)}}}}}}),
               "Subnets", "SubnetId");
  };
  EXPECT_EQ(filtered("vpc-id", vpc_id).size(), 3u);
  EXPECT_EQ(filtered("default-for-az", "true"), std::vector{default_subnet_id(kRegion)});
  EXPECT_EQ(filtered("availability-zone", "us-east-1b"), std::vector{id});
  EXPECT_EQ(filtered("cidr-block", "172.31.32.0/28"), std::vector{small_id});
  EXPECT_EQ(filtered("tag:tier", "app"), std::vector{id});
  EXPECT_EQ(filtered("subnet-id", small_id), std::vector{small_id});
  EXPECT_EQ(subnet(id).at("CidrBlock"), "172.31.16.0/20");

  // Addresses in use by tasks' ENIs count against the subnet; the subnet is then in use.
  add_task_with_eni("t1", small_id, {}, "172.31.32.4", "PRECREATED");
  add_task_with_eni("t2", small_id, {}, "172.31.32.5");
  EXPECT_EQ(subnet(small_id).at("AvailableIpAddressCount"), 9);
  EXPECT_EQ(code("DeleteSubnet", {{"SubnetId", small_id}}), "DependencyViolation");
  set_eni_status("t1", "DETACHED");
  set_eni_status("t2", "DETACHED");
  EXPECT_EQ(subnet(small_id).at("AvailableIpAddressCount"), 11);
  EXPECT_TRUE(ok("DeleteSubnet", {{"SubnetId", small_id}}).empty());
  EXPECT_EQ(code("DescribeSubnets", {{"SubnetIds", bj::array{bj::string(small_id)}}}),
            "InvalidSubnetID.NotFound");
  EXPECT_EQ(code("DeleteSubnet", {{"SubnetId", small_id}}), "InvalidSubnetID.NotFound");

  // The default subnet may be deleted, as in EC2.
  ok("DeleteSubnet", {{"SubnetId", default_subnet_id(kRegion)}});
  EXPECT_EQ(ids(ok("DescribeSubnets", {}), "Subnets", "SubnetId"), std::vector{id});
  EXPECT_TRUE(changes().empty());
}

TEST_F(Ec2ApiTest, SubnetErrors) {
  std::string vpc_id = default_vpc_id(kRegion);
  auto create = [&](std::string cidr, bj::object extra = {}) {
    extra["VpcId"] = vpc_id;
    extra["CidrBlock"] = cidr;
    return code("CreateSubnet", std::move(extra));
  };
  EXPECT_EQ(code("CreateSubnet", {{"CidrBlock", "172.31.16.0/20"}}), "MissingParameter");
  EXPECT_EQ(code("CreateSubnet", {{"VpcId", vpc_id}}), "MissingParameter");
  EXPECT_EQ(code("CreateSubnet", {{"VpcId", "vpc-12345678"}, {"CidrBlock", "172.31.16.0/20"}}),
            "InvalidVpcID.NotFound");
  EXPECT_EQ(create("172.31.16.0/29"), "InvalidSubnet.Range");
  EXPECT_EQ(create("172.0.0.0/15"), "InvalidSubnet.Range");
  EXPECT_EQ(create("10.0.0.0/24"), "InvalidSubnet.Range");
  EXPECT_EQ(create("172.31.8.0/24"), "InvalidSubnet.Conflict");
  EXPECT_EQ(create("172.31.0.0/16"), "InvalidSubnet.Conflict");
  EXPECT_EQ(create("172.31.16.0"), "InvalidParameterValue");
  EXPECT_EQ(create("172.31.16.1/24"), "InvalidParameterValue");
  EXPECT_EQ(create("172.31.16.0/24", {{"AvailabilityZone", "eu-west-1a"}}),
            "InvalidParameterValue");
  EXPECT_EQ(create("172.31.16.0/24", {{"Ipv6CidrBlock", "2600::/64"}}), "InvalidParameterValue");
  EXPECT_EQ(code("DescribeSubnets", {{"SubnetIds", bj::array{"subnet-12345678"}}}),
            "InvalidSubnetID.NotFound");
  EXPECT_EQ(code("DescribeSubnets", {{"SubnetIds", bj::array{"default"}}}),
            "InvalidSubnetID.Malformed");
  EXPECT_EQ(code("DeleteSubnet", {}), "MissingParameter");
  EXPECT_EQ(code("DeleteSubnet", {{"SubnetId", "subnet-12345678"}}), "InvalidSubnetID.NotFound");
  EXPECT_EQ(ids(ok("DescribeSubnets", {}), "Subnets", "SubnetId").size(), 1u);
}

TEST_F(Ec2ApiTest, Tags) {
  std::string web = create_group("web");
  std::string vpc_id = default_vpc_id(kRegion);
  std::string subnet_id = default_subnet_id(kRegion);
  EXPECT_TRUE(
      ok("CreateTags",
         {{"Resources", bj::array{bj::string(web), bj::string(vpc_id), bj::string(subnet_id)}},
          {"Tags", bj::array{bj::object{{"Key", "env"}, {"Value", "prod"}},
                             bj::object{{"Key", "team"}, {"Value", "edge"}}}}})
          .empty());
  EXPECT_EQ(group(web).at("Tags").as_array().size(), 2u);
  EXPECT_EQ(subnet(subnet_id).at("Tags").as_array().size(), 2u);
  auto vpcs =
      ok("DescribeVpcs",
         {{"Filters", bj::array{bj::object{{"Name", "tag:env"}, {"Values", bj::array{"prod"}}}}}});
  EXPECT_EQ(ids(vpcs, "Vpcs", "VpcId"), std::vector{vpc_id});

  // A Value deletes only on a match; a Key alone deletes any value; no Tags deletes all.
  ok("DeleteTags", {{"Resources", bj::array{bj::string(web)}},
                    {"Tags", bj::array{bj::object{{"Key", "env"}, {"Value", "dev"}},
                                       bj::object{{"Key", "team"}}}}});
  auto tags = group(web).at("Tags").as_array();
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0].at("Key"), "env");
  ok("DeleteTags", {{"Resources", bj::array{bj::string(web), bj::string(subnet_id)}}});
  EXPECT_TRUE(group(web).at("Tags").as_array().empty());
  EXPECT_TRUE(subnet(subnet_id).at("Tags").as_array().empty());

  bj::array one_tag{bj::object{{"Key", "k"}, {"Value", "v"}}};
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{"sg-12345678"}}, {"Tags", one_tag}}),
            "InvalidGroup.NotFound");
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{"subnet-12345678"}}, {"Tags", one_tag}}),
            "InvalidSubnetID.NotFound");
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{"vpc-12345678"}}, {"Tags", one_tag}}),
            "InvalidVpcID.NotFound");
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{"i-12345678"}}, {"Tags", one_tag}}),
            "InvalidID");
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{bj::string(web)}}}), "MissingParameter");
  EXPECT_EQ(code("CreateTags", {{"Tags", one_tag}}), "MissingParameter");
  EXPECT_EQ(code("CreateTags", {{"Resources", bj::array{bj::string(web)}},
                                {"Tags", bj::array{bj::object{{"Key", "aws:k"}, {"Value", "v"}}}}}),
            "InvalidParameterValue");
  // One unknown resource fails the call before any is tagged.
  EXPECT_EQ(code("CreateTags",
                 {{"Resources", bj::array{bj::string(web), "sg-12345678"}}, {"Tags", one_tag}}),
            "InvalidGroup.NotFound");
  EXPECT_TRUE(group(web).at("Tags").as_array().empty());
  bj::array fifty;
  for (int tag_idx = 0; tag_idx < 50; ++tag_idx) {
    fifty.push_back(bj::object{{"Key", "k" + std::to_string(tag_idx)}, {"Value", ""}});
  }
  ok("CreateTags", {{"Resources", bj::array{bj::string(web)}}, {"Tags", fifty}});
  EXPECT_EQ(
      code("CreateTags", {{"Resources", bj::array{bj::string(web)}},
                          {"Tags", bj::array{bj::object{{"Key", "one-more"}, {"Value", ""}}}}}),
      "TagLimitExceeded");
}

TEST_F(Ec2ApiTest, EverythingSurvivesAReload) {
  std::string default_group = default_security_group_id(kRegion);
  std::string web = create_group("web");
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", web},
      {"IpPermissions",
       bj::array{tcp_from_cidr(80, "0.0.0.0/0"), tcp_from_group(81, default_group)}}});
  ok("AuthorizeSecurityGroupIngress",
     {{"GroupId", default_group}, {"IpPermissions", bj::array{tcp_from_cidr(22, "10.0.0.0/8")}}});
  auto created = ok("CreateSubnet", {{"VpcId", default_vpc_id(kRegion)},
                                     {"CidrBlock", "172.31.64.0/24"},
                                     {"AvailabilityZone", "us-east-1c"}});
  std::string subnet_id = json::string_or(created.at("Subnet").as_object(), "SubnetId", "");
  ok("CreateTags", {{"Resources", bj::array{bj::string(default_vpc_id(kRegion))}},
                    {"Tags", bj::array{bj::object{{"Key", "Name"}, {"Value", "main"}}}}});
  ok("DeleteSubnet", {{"SubnetId", default_subnet_id(kRegion)}});
  bj::object web_before = group(web);
  bj::object default_before = group(default_group);

  reopen();

  EXPECT_EQ(group(web), web_before);
  EXPECT_EQ(group(default_group), default_before);
  EXPECT_EQ(ids(ok("DescribeSubnets", {}), "Subnets", "SubnetId"), std::vector{subnet_id});
  EXPECT_EQ(subnet(subnet_id).at("AvailabilityZone"), "us-east-1c");
  auto vpcs = ok("DescribeVpcs", {});
  ASSERT_EQ(vpcs.at("Vpcs").as_array().size(), 1u);
  EXPECT_EQ(vpcs.at("Vpcs").as_array()[0].at("Tags").as_array()[0].at("Value"), "main");
  EXPECT_EQ(code("CreateSecurityGroup", {{"GroupName", "web"}, {"Description", "again"}}),
            "InvalidGroup.Duplicate");
}

TEST_F(Ec2ApiTest, UntouchedDefaultsAreTheSameAfterAReload) {
  std::string subnet_before = ids(ok("DescribeSubnets", {}), "Subnets", "SubnetId").at(0);
  std::string group_before =
      ids(ok("DescribeSecurityGroups", {}), "SecurityGroups", "GroupId").at(0);
  reopen();
  EXPECT_EQ(ids(ok("DescribeSubnets", {}), "Subnets", "SubnetId"), std::vector{subnet_before});
  EXPECT_EQ(ids(ok("DescribeSecurityGroups", {}), "SecurityGroups", "GroupId"),
            std::vector{group_before});
}

}  // namespace
}  // namespace wharf::ecs
