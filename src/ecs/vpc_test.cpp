// Unit tests for the EC2 networking model: rule normalisation and validation, rule sets, CIDR
// arithmetic, the default network, ids, tags, the in-use queries and the storage codecs.
#include "ecs/vpc.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ecs/state.hpp"

namespace wharf::ecs {
namespace {

IpPermission permission(std::string protocol, int64_t from, int64_t to,
                        std::vector<std::string> cidrs, std::vector<std::string> groups = {}) {
  return IpPermission{std::move(protocol), from, to, std::move(cidrs), std::move(groups)};
}

struct ProtocolCase {
  std::string given;
  std::string normalised;  // empty: rejected
};

TEST(VpcTest, ProtocolNamesAndNumbersAreNormalised) {
  const std::vector<ProtocolCase> cases = {
      {"tcp", "tcp"},   {"TCP", "tcp"}, {"6", "tcp"}, {"udp", "udp"}, {"17", "udp"},
      {"icmp", "icmp"}, {"1", "icmp"},  {"-1", "-1"}, {"all", "-1"},  {"ALL", "-1"},
      {"gre", ""},      {"47", ""},     {"", ""},     {"tcp ", ""},   {"58", ""},
  };
  for (const auto& [given, normalised] : cases) {
    auto result = normalize_protocol(given);
    if (normalised.empty()) {
      ASSERT_FALSE(result) << given;
      EXPECT_EQ(result.error().wire_type, "InvalidParameterValue") << given;
    } else {
      ASSERT_TRUE(result) << given;
      EXPECT_EQ(*result, normalised) << given;
    }
  }
}

struct PermissionCase {
  std::string name;
  IpPermission given;
  std::string error;  // wire code, empty when valid
  IpPermission expected = {};
};

TEST(VpcTest, PermissionsAreValidatedAndNormalised) {
  const std::vector<PermissionCase> cases = {
      {"one tcp port", permission("6", 80, 80, {"0.0.0.0/0"}), "",
       permission("tcp", 80, 80, {"0.0.0.0/0"})},
      {"tcp range", permission("tcp", 1000, 2000, {"10.0.0.0/8"}), "",
       permission("tcp", 1000, 2000, {"10.0.0.0/8"})},
      {"tcp without ports means all", permission("tcp", -1, -1, {"10.0.0.0/8"}), "",
       permission("tcp", 0, 65535, {"10.0.0.0/8"})},
      {"udp edges", permission("17", 0, 65535, {"10.1.2.3/32"}), "",
       permission("udp", 0, 65535, {"10.1.2.3/32"})},
      {"all drops ports", permission("all", 5, 7, {}, {"sg-1234abcd"}), "",
       permission("-1", -1, -1, {}, {"sg-1234abcd"})},
      {"icmp all", permission("icmp", -1, -1, {"0.0.0.0/0"}), "",
       permission("icmp", -1, -1, {"0.0.0.0/0"})},
      {"icmp echo", permission("1", 8, 0, {"0.0.0.0/0"}), "",
       permission("icmp", 8, 0, {"0.0.0.0/0"})},
      {"icmp type with any code", permission("icmp", 3, -1, {"0.0.0.0/0"}), "",
       permission("icmp", 3, -1, {"0.0.0.0/0"})},
      {"icmp code without type", permission("icmp", -1, 4, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"icmp type too big", permission("icmp", 256, 0, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"missing protocol", permission("", 80, 80, {"0.0.0.0/0"}), "MissingParameter"},
      {"unknown protocol", permission("sctp", 80, 80, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"port too big", permission("tcp", 80, 65536, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"negative port", permission("tcp", -2, 80, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"from above to", permission("tcp", 90, 80, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"only one port", permission("tcp", 80, -1, {"0.0.0.0/0"}), "InvalidParameterValue"},
      {"malformed cidr", permission("tcp", 80, 80, {"10.0.0.0"}), "InvalidParameterValue"},
      {"cidr octet too big", permission("tcp", 80, 80, {"10.0.0.256/32"}), "InvalidParameterValue"},
      {"cidr prefix too long", permission("tcp", 80, 80, {"10.0.0.0/33"}), "InvalidParameterValue"},
      {"cidr host bits", permission("tcp", 80, 80, {"10.0.0.1/8"}), "InvalidParameterValue"},
      {"no source", permission("tcp", 80, 80, {}), "MissingParameter"},
  };
  for (const auto& test : cases) {
    auto result = normalize_permission(test.given);
    if (!test.error.empty()) {
      ASSERT_FALSE(result) << test.name;
      EXPECT_EQ(result.error().wire_type, test.error) << test.name;
      EXPECT_FALSE(result.error().message.empty()) << test.name;
      continue;
    }
    ASSERT_TRUE(result) << test.name << ": " << result.error().message;
    EXPECT_EQ(*result, test.expected) << test.name;
  }
}

TEST(VpcTest, HostBitsErrorSuggestsTheNetwork) {
  auto result = normalize_permission(permission("tcp", 22, 22, {"192.168.1.7/24"}));
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("192.168.1.0/24"), std::string::npos);
}

TEST(VpcTest, CidrParsingContainmentAndOverlap) {
  auto vpc = parse_ipv4_cidr("172.31.0.0/16");
  ASSERT_TRUE(vpc);
  EXPECT_EQ(vpc->size(), 65536u);
  EXPECT_TRUE(vpc->is_network());
  EXPECT_EQ(vpc->str(), "172.31.0.0/16");

  auto inside = parse_ipv4_cidr("172.31.16.0/20");
  auto edge = parse_ipv4_cidr("172.31.255.240/28");
  auto outside = parse_ipv4_cidr("172.32.0.0/20");
  auto wider = parse_ipv4_cidr("172.0.0.0/8");
  ASSERT_TRUE(inside && edge && outside && wider);
  EXPECT_TRUE(vpc->contains(*inside));
  EXPECT_TRUE(vpc->contains(*edge));
  EXPECT_TRUE(vpc->contains(*vpc));
  EXPECT_FALSE(vpc->contains(*outside));
  EXPECT_FALSE(vpc->contains(*wider));
  EXPECT_TRUE(wider->contains(*vpc));

  auto first = parse_ipv4_cidr("172.31.0.0/20");
  auto next = parse_ipv4_cidr("172.31.16.0/24");
  auto within_first = parse_ipv4_cidr("172.31.15.0/24");
  ASSERT_TRUE(first && next && within_first);
  EXPECT_FALSE(first->overlaps(*next));
  EXPECT_FALSE(next->overlaps(*first));
  EXPECT_TRUE(first->overlaps(*within_first));
  EXPECT_TRUE(within_first->overlaps(*first));
  EXPECT_TRUE(vpc->overlaps(*next));

  auto everything = parse_ipv4_cidr("0.0.0.0/0");
  ASSERT_TRUE(everything);
  EXPECT_EQ(everything->size(), uint64_t{1} << 32);
  EXPECT_TRUE(everything->contains(*vpc));

  auto host = parse_ipv4_cidr("10.1.2.3/24");
  ASSERT_TRUE(host);
  EXPECT_FALSE(host->is_network());
  EXPECT_EQ(host->str(), "10.1.2.0/24");

  for (const char* bad :
       {"", "10.0.0.0", "10.0.0/8", "10.0.0.0.0/8", "10.0.0.0/", "10.0.0.0/x", "1000.0.0.0/8",
        "10.0.0.0/33", "a.b.c.d/8", "10..0.0/8", "10.0.0.0/-1", " 10.0.0.0/8"}) {
    EXPECT_FALSE(parse_ipv4_cidr(bad)) << bad;
  }
  EXPECT_EQ(parse_ipv4("10.0.0.1"), 0x0a000001u);
  EXPECT_EQ(ipv4_to_string(0xac1f0010u), "172.31.0.16");
}

TEST(VpcTest, DefaultNetworkIsDeterministicAndCreatedOnce) {
  RegionState first;
  RegionState second;
  ensure_default_network(first, "us-east-1");
  ensure_default_network(second, "us-east-1");
  ASSERT_EQ(first.vpcs.size(), 1u);
  ASSERT_EQ(first.subnets.size(), 1u);
  ASSERT_EQ(first.security_groups.size(), 1u);
  EXPECT_EQ(first.vpcs.begin()->first, second.vpcs.begin()->first);
  EXPECT_EQ(first.subnets.begin()->first, second.subnets.begin()->first);
  EXPECT_EQ(first.security_groups.begin()->first, second.security_groups.begin()->first);

  const Vpc& vpc = first.vpcs.begin()->second;
  EXPECT_EQ(vpc.id, default_vpc_id("us-east-1"));
  EXPECT_TRUE(is_ec2_id(vpc.id, "vpc"));
  EXPECT_EQ(vpc.id.size(), 4u + 17u);
  EXPECT_EQ(vpc.cidr_block, "172.31.0.0/16");
  EXPECT_TRUE(vpc.is_default);
  EXPECT_EQ(default_vpc(first), &vpc);

  const Subnet& subnet = first.subnets.begin()->second;
  EXPECT_EQ(subnet.id, default_subnet_id("us-east-1"));
  EXPECT_TRUE(is_ec2_id(subnet.id, "subnet"));
  EXPECT_EQ(subnet.vpc_id, vpc.id);
  EXPECT_EQ(subnet.cidr_block, "172.31.0.0/20");
  EXPECT_EQ(subnet.availability_zone, "us-east-1a");
  EXPECT_TRUE(subnet.default_for_az);

  const SecurityGroup& group = first.security_groups.begin()->second;
  EXPECT_EQ(group.id, default_security_group_id("us-east-1"));
  EXPECT_TRUE(is_ec2_id(group.id, "sg"));
  EXPECT_EQ(group.name, "default");
  EXPECT_EQ(group.vpc_id, vpc.id);
  EXPECT_EQ(group.ingress, (std::vector{permission("-1", -1, -1, {}, {group.id})}));
  EXPECT_EQ(group.egress, (std::vector{permission("-1", -1, -1, {"0.0.0.0/0"})}));

  // Other regions get other ids.
  EXPECT_NE(default_vpc_id("eu-west-1"), vpc.id);
  EXPECT_NE(default_subnet_id("eu-west-1"), subnet.id);
  EXPECT_NE(default_security_group_id("eu-west-1"), group.id);

  // Once the VPC exists, nothing is recreated: a deleted default subnet stays deleted.
  first.subnets.clear();
  EXPECT_TRUE(has_default_network(first));
  ensure_default_network(first, "us-east-1");
  EXPECT_TRUE(first.subnets.empty());

  RegionState empty;
  EXPECT_FALSE(has_default_network(empty));
  EXPECT_EQ(default_vpc(empty), nullptr);
}

TEST(VpcTest, IdsHaveTheirShape) {
  std::string id = new_ec2_id("sg");
  EXPECT_EQ(id.size(), 3u + 17u);
  EXPECT_TRUE(is_ec2_id(id, "sg"));
  EXPECT_NE(new_ec2_id("sg"), id);
  EXPECT_TRUE(is_ec2_id("sg-1234abcd", "sg"));
  EXPECT_TRUE(is_ec2_id("subnet-0123456789abcdef0", "subnet"));
  for (const char* bad : {"sg-", "sg-123", "sg-1234ABCD", "sg-1234abcg", "subnet-1234abcd",
                          "sg1234abcd", "sg-0123456789abcdef01", "web"}) {
    EXPECT_FALSE(is_ec2_id(bad, "sg")) << bad;
  }
}

TEST(VpcTest, RulesMergeByPortsAndRejectDuplicates) {
  std::vector<IpPermission> rules;
  ASSERT_TRUE(add_rules(rules, {permission("tcp", 80, 80, {"0.0.0.0/0"})}, "sg-1"));
  ASSERT_TRUE(add_rules(rules, {permission("tcp", 80, 80, {"10.0.0.0/8"}, {"sg-2"})}, "sg-1"));
  ASSERT_TRUE(add_rules(rules, {permission("tcp", 443, 443, {"0.0.0.0/0"})}, "sg-1"));
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0], permission("tcp", 80, 80, {"0.0.0.0/0", "10.0.0.0/8"}, {"sg-2"}));
  EXPECT_EQ(rules[1], permission("tcp", 443, 443, {"0.0.0.0/0"}));

  // One duplicate source fails the whole request and changes nothing.
  auto before = rules;
  auto duplicate = add_rules(
      rules,
      {permission("tcp", 8080, 8080, {"0.0.0.0/0"}), permission("tcp", 80, 80, {}, {"sg-2"})},
      "sg-1");
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().wire_type, "InvalidPermission.Duplicate");
  EXPECT_NE(duplicate.error().message.find("sg-2"), std::string::npos);
  EXPECT_EQ(rules, before);
  // The same source twice in one request is a duplicate too.
  EXPECT_FALSE(add_rules(rules, {permission("udp", 53, 53, {"1.1.1.1/32", "1.1.1.1/32"})}, "sg-1"));
  EXPECT_EQ(rules, before);

  // Revoking removes single sources; an emptied permission disappears.
  ASSERT_TRUE(remove_rules(rules, {permission("tcp", 80, 80, {"0.0.0.0/0"}, {"sg-2"})}, "sg-1"));
  EXPECT_EQ(rules[0], permission("tcp", 80, 80, {"10.0.0.0/8"}));
  auto absent = remove_rules(rules, {permission("tcp", 81, 81, {"10.0.0.0/8"})}, "sg-1");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().wire_type, "InvalidPermission.NotFound");
  // An absent rule among present ones changes nothing.
  before = rules;
  EXPECT_FALSE(remove_rules(
      rules,
      {permission("tcp", 443, 443, {"0.0.0.0/0"}), permission("tcp", 443, 443, {"1.0.0.0/8"})},
      "sg-1"));
  EXPECT_EQ(rules, before);
  ASSERT_TRUE(remove_rules(rules, {permission("tcp", 80, 80, {"10.0.0.0/8"})}, "sg-1"));
  EXPECT_EQ(rules, (std::vector{permission("tcp", 443, 443, {"0.0.0.0/0"})}));
}

TEST(VpcTest, RuleIdsAreStablePerRule) {
  auto rule = permission("tcp", 80, 80, {"0.0.0.0/0"});
  std::string id = rule_id("sg-1", false, rule);
  EXPECT_TRUE(is_ec2_id(id, "sgr"));
  EXPECT_EQ(rule_id("sg-1", false, rule), id);
  EXPECT_NE(rule_id("sg-1", true, rule), id);
  EXPECT_NE(rule_id("sg-2", false, rule), id);
  EXPECT_NE(rule_id("sg-1", false, permission("tcp", 81, 81, {"0.0.0.0/0"})), id);

  auto split = split_rules({permission("tcp", 80, 80, {"0.0.0.0/0", "10.0.0.0/8"}, {"sg-9"})});
  ASSERT_EQ(split.size(), 3u);
  EXPECT_EQ(split[0], permission("tcp", 80, 80, {"0.0.0.0/0"}));
  EXPECT_EQ(split[2], permission("tcp", 80, 80, {}, {"sg-9"}));
}

TEST(VpcTest, ReferencesAreFoundInEitherDirection) {
  SecurityGroup group;
  group.id = "sg-1";
  EXPECT_FALSE(references_group(group, "sg-2"));
  group.egress = {permission("tcp", 5432, 5432, {}, {"sg-2"})};
  EXPECT_TRUE(references_group(group, "sg-2"));
  group.egress.clear();
  group.ingress = {permission("-1", -1, -1, {"0.0.0.0/0"}, {"sg-3", "sg-2"})};
  EXPECT_TRUE(references_group(group, "sg-2"));
  EXPECT_FALSE(references_group(group, "sg-4"));
}

TEST(VpcTest, TagRules) {
  EXPECT_TRUE(validate_ec2_tags({{"team", "edge"}, {"empty", ""}}));
  EXPECT_EQ(validate_ec2_tags({{"", "x"}}).error().wire_type, "InvalidParameterValue");
  EXPECT_EQ(validate_ec2_tags({{std::string(128, 'k'), "x"}}).error().wire_type,
            "InvalidParameterValue");
  EXPECT_EQ(validate_ec2_tags({{"aws:owner", "x"}}).error().wire_type, "InvalidParameterValue");
  EXPECT_EQ(validate_ec2_tags({{"k", std::string(256, 'v')}}).error().wire_type,
            "InvalidParameterValue");
  EXPECT_EQ(validate_ec2_tags({{"k", "1"}, {"k", "2"}}).error().wire_type, "InvalidParameterValue");
  Tags many;
  for (int tag_idx = 0; tag_idx < 51; ++tag_idx)
    many.emplace_back("k" + std::to_string(tag_idx), "");
  EXPECT_EQ(validate_ec2_tags(many).error().wire_type, "TagLimitExceeded");
}

Task task_with_eni(std::string id, std::string status, std::string subnet, std::string ip,
                   std::vector<std::string> groups) {
  Task task;
  task.id = std::move(id);
  task.cluster = "prod";
  task.container_instance_id = "instance";
  EniAttachment eni;
  eni.status = std::move(status);
  eni.subnet_id = std::move(subnet);
  eni.private_ipv4 = std::move(ip);
  eni.security_group_ids = std::move(groups);
  task.eni = eni;
  return task;
}

TEST(VpcTest, EnisNotDetachedHoldSubnetsGroupsAndAddresses) {
  RegionState region;
  ensure_default_network(region, "us-east-1");
  const Subnet& subnet = region.subnets.begin()->second;
  EXPECT_EQ(available_address_count(region, subnet), 4096 - 5);
  EXPECT_FALSE(subnet_in_use(region, subnet.id));

  region.add_task(task_with_eni("t1", "PRECREATED", subnet.id, "172.31.0.4", {"sg-aaaa1111"}));
  region.add_task(task_with_eni("t2", "ATTACHED", subnet.id, "172.31.0.5", {"sg-bbbb2222"}));
  region.add_task(task_with_eni("t3", "DETACHED", subnet.id, "172.31.0.6", {"sg-cccc3333"}));
  Task plain;
  plain.id = "t4";
  plain.cluster = "other";
  region.add_task(plain);

  EXPECT_TRUE(subnet_in_use(region, subnet.id));
  EXPECT_FALSE(subnet_in_use(region, "subnet-12345678"));
  EXPECT_TRUE(security_group_in_use(region, "sg-aaaa1111"));
  EXPECT_TRUE(security_group_in_use(region, "sg-bbbb2222"));
  EXPECT_FALSE(security_group_in_use(region, "sg-cccc3333"));
  EXPECT_EQ(available_address_count(region, subnet), 4096 - 5 - 2);

  Subnet small{"subnet-0000aaaa", subnet.vpc_id, "172.31.16.0/28", "us-east-1a", false, {}};
  EXPECT_EQ(available_address_count(region, small), 11);
}

TEST(VpcTest, StorageRoundTrips) {
  RegionState region;
  ensure_default_network(region, "eu-west-1");
  Vpc vpc = region.vpcs.begin()->second;
  vpc.tags = {{"Name", "main"}};
  auto vpc_back = vpc_from_store(vpc_to_store(vpc));
  ASSERT_TRUE(vpc_back);
  EXPECT_EQ(vpc_back->id, vpc.id);
  EXPECT_EQ(vpc_back->cidr_block, vpc.cidr_block);
  EXPECT_TRUE(vpc_back->is_default);
  EXPECT_EQ(vpc_back->tags, vpc.tags);

  Subnet subnet = region.subnets.begin()->second;
  auto subnet_back = subnet_from_store(subnet_to_store(subnet));
  ASSERT_TRUE(subnet_back);
  EXPECT_EQ(subnet_back->id, subnet.id);
  EXPECT_EQ(subnet_back->vpc_id, subnet.vpc_id);
  EXPECT_EQ(subnet_back->availability_zone, "eu-west-1a");
  EXPECT_TRUE(subnet_back->default_for_az);

  SecurityGroup group = region.security_groups.begin()->second;
  group.ingress.push_back(permission("tcp", 80, 81, {"10.0.0.0/8"}, {"sg-12345678"}));
  group.tags = {{"a", "b"}};
  auto group_back = security_group_from_store(security_group_to_store(group));
  ASSERT_TRUE(group_back);
  EXPECT_EQ(group_back->name, "default");
  EXPECT_EQ(group_back->ingress, group.ingress);
  EXPECT_EQ(group_back->egress, group.egress);
  EXPECT_EQ(group_back->tags, group.tags);

  EXPECT_FALSE(security_group_from_store(boost::json::object{{"name", "x"}}));
}

TEST(VpcTest, PermissionsWireShape) {
  auto wire = permissions_to_wire(
      {permission("tcp", 80, 80, {"0.0.0.0/0"}, {"sg-1"}), permission("-1", -1, -1, {"1.0.0.0/8"})},
      "123456789012");
  ASSERT_EQ(wire.size(), 2u);
  const auto& tcp = wire[0].as_object();
  EXPECT_EQ(tcp.at("IpProtocol"), "tcp");
  EXPECT_EQ(tcp.at("FromPort"), 80);
  EXPECT_EQ(tcp.at("IpRanges").as_array()[0].at("CidrIp"), "0.0.0.0/0");
  const auto& pair = tcp.at("UserIdGroupPairs").as_array()[0].as_object();
  EXPECT_EQ(pair.at("GroupId"), "sg-1");
  EXPECT_EQ(pair.at("UserId"), "123456789012");
  const auto& all = wire[1].as_object();
  EXPECT_EQ(all.at("IpProtocol"), "-1");
  EXPECT_FALSE(all.contains("FromPort"));
  EXPECT_FALSE(all.contains("ToPort"));
}

}  // namespace
}  // namespace wharf::ecs
