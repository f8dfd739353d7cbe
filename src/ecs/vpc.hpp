// The EC2 networking resources awsvpc tasks draw from: the default VPC, subnets and security
// groups; their rules, CIDR arithmetic, wire and storage codecs (pure, but for the RegionState
// queries at the end).
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "ecs/model.hpp"
#include "ecs/task.hpp"

namespace wharf::ecs {

struct RegionState;

struct Vpc {
  std::string id;
  std::string cidr_block;
  bool is_default = false;
  Tags tags;
};

struct Subnet {
  std::string id;
  std::string vpc_id;
  std::string cidr_block;
  std::string availability_zone;
  bool default_for_az = false;
  Tags tags;
};

struct IpPermission {
  // "tcp", "udp", "icmp" or "-1" (all); normalize_permission turns names and numbers into these.
  std::string ip_protocol;
  // tcp/udp: the port range; icmp: the ICMP type and code (-1 for all); -1 for protocol "-1".
  int64_t from_port = -1;
  int64_t to_port = -1;
  std::vector<std::string> cidr_ipv4;         // IpRanges[].CidrIp
  std::vector<std::string> source_group_ids;  // UserIdGroupPairs[].GroupId

  bool operator==(const IpPermission&) const = default;
};

struct SecurityGroup {
  std::string id;
  std::string name;
  std::string description;
  std::string vpc_id;
  std::vector<IpPermission> ingress;
  std::vector<IpPermission> egress;
  Tags tags;
};

inline constexpr std::string_view kDefaultVpcCidr = "172.31.0.0/16";
inline constexpr std::string_view kDefaultSubnetCidr = "172.31.0.0/20";
inline constexpr std::string_view kDefaultGroupName = "default";

// Creates the region's default VPC, its default subnet (in the region's zone "a") and the VPC's
// "default" security group in memory when the default VPC is absent; their ids derive from the
// region name, so they are the same after every restart even when never persisted. Once the
// default VPC exists nothing is recreated (a deleted default subnet stays deleted, provided the
// VPC was persisted with the deletion). Call with the state's mutex held exclusively.
void ensure_default_network(RegionState& region, const std::string& region_name);
// Whether ensure_default_network has nothing to do; fine under a shared lock.
bool has_default_network(const RegionState& region);
// The region's default VPC, or nullptr before ensure_default_network.
const Vpc* default_vpc(const RegionState& region);
// The region's VPC, subnet and group that ensure_default_network creates, by their fixed ids.
std::string default_vpc_id(std::string_view region_name);
std::string default_subnet_id(std::string_view region_name);
std::string default_security_group_id(std::string_view region_name);

// EC2's InvalidParameterValue error.
std::unexpected<Error> bad_value(std::string message);

// A new random id: PREFIX + "-" + 17 lowercase hex digits ("sg", "subnet", "sgr").
std::string new_ec2_id(std::string_view prefix);
// Whether `id` is PREFIX-<8 or 17 lowercase hex digits>, the shapes EC2 ids take.
bool is_ec2_id(std::string_view id, std::string_view prefix);

// An IPv4 CIDR block.
struct Ipv4Cidr {
  uint32_t address = 0;  // as written (host bits may be set)
  int prefix_length = 0;

  uint32_t mask() const;
  uint32_t network() const { return address & mask(); }
  uint64_t size() const { return uint64_t{1} << (32 - prefix_length); }
  bool is_network() const { return address == network(); }
  bool contains(const Ipv4Cidr& inner) const;
  bool contains_address(uint32_t ip) const { return (ip & mask()) == network(); }
  bool overlaps(const Ipv4Cidr& other) const;
  std::string str() const;  // the network address and prefix, "10.0.0.0/16"
};

// Dotted-quad "A.B.C.D" with each part 0..255; nullopt otherwise.
std::optional<uint32_t> parse_ipv4(std::string_view text);
std::string ipv4_to_string(uint32_t address);
// "A.B.C.D/N" with N 0..32; nullopt otherwise.
std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text);

// The protocol as stored ("tcp", "udp", "icmp", "-1") from a name (any case), a number (6, 17, 1,
// -1) or "all"; InvalidParameterValue for anything else.
Result<std::string> normalize_protocol(std::string_view protocol);
// Normalises the protocol, checks the ports (tcp/udp 0..65535 with from <= to; missing or -1 means
// all ports 0-65535; icmp type and code -1..255; none for "-1"), the CIDRs (well-formed network
// addresses) and that the permission names at least one source. Source groups' existence is the
// caller's to check. Errors carry EC2 codes.
Result<IpPermission> normalize_permission(IpPermission permission);
// One rule per source: the permission split into permissions of exactly one CIDR or group.
std::vector<IpPermission> split_rules(const std::vector<IpPermission>& permissions);
// A rule's id (sgr- + 17 hex), derived from the group, direction and the single-source rule, so
// it is stable without being stored.
std::string rule_id(std::string_view group_id, bool egress, const IpPermission& rule);
// Adds every rule of `added` to `rules` (merged into the permission with the same protocol and
// ports); InvalidPermission.Duplicate, leaving `rules` unchanged, when one is already there.
Status add_rules(std::vector<IpPermission>& rules, const std::vector<IpPermission>& added,
                 std::string_view group_id);
// Removes every rule of `removed`; InvalidPermission.NotFound, leaving `rules` unchanged, when
// one is absent.
Status remove_rules(std::vector<IpPermission>& rules, const std::vector<IpPermission>& removed,
                    std::string_view group_id);
// Whether any of `group`'s rules names `source_group_id` as a source.
bool references_group(const SecurityGroup& group, std::string_view source_group_id);

// EC2 tag rules: keys 1..127 characters not starting with "aws:", values up to 255, at most 50.
Status validate_ec2_tags(const Tags& tags);

// The EC2 wire shapes (member names of the botocore ec2 model).
boost::json::array ec2_tags_to_wire(const Tags& tags);
boost::json::object vpc_to_wire(const Vpc& vpc, std::string_view region, std::string_view account);
boost::json::object subnet_to_wire(const Subnet& subnet, std::string_view region,
                                   std::string_view account, int64_t available_addresses);
boost::json::array permissions_to_wire(const std::vector<IpPermission>& permissions,
                                       std::string_view account);
boost::json::object security_group_to_wire(const SecurityGroup& group, std::string_view region,
                                           std::string_view account);
// A SecurityGroupRule (AuthorizeSecurityGroupIngress's output) for one single-source rule.
boost::json::object security_group_rule_to_wire(std::string_view group_id, bool egress,
                                                const IpPermission& rule, std::string_view account);
// A RevokedSecurityGroupRule (Revoke*'s output) for one single-source rule.
boost::json::object revoked_security_group_rule_to_wire(std::string_view group_id, bool egress,
                                                        const IpPermission& rule);

// Storage codecs.
boost::json::object vpc_to_store(const Vpc& vpc);
Result<Vpc> vpc_from_store(boost::json::object stored);
boost::json::object subnet_to_store(const Subnet& subnet);
Result<Subnet> subnet_from_store(boost::json::object stored);
boost::json::object security_group_to_store(const SecurityGroup& group);
Result<SecurityGroup> security_group_from_store(boost::json::object stored);

// The VPC's security group of that name (names are unique within a VPC), or nullptr.
const SecurityGroup* find_security_group(const RegionState& region, std::string_view vpc_id,
                                         std::string_view name);
SecurityGroup* find_security_group(RegionState& region, std::string_view vpc_id,
                                   std::string_view name);

// An ENI holds its address and its group memberships until it is DETACHED.
bool eni_in_use(const EniAttachment& eni);
// Calls `visit` with every task of the region (in any cluster) whose ENI is in use.
void for_each_eni_in_use(const RegionState& region, const std::function<void(const Task&)>& visit);
// The private IPv4 addresses the ENIs in use hold in the subnet.
std::set<uint32_t> addresses_in_use(const RegionState& region, std::string_view subnet_id);

// Each security group's members: the addresses of the ENIs in use that name it, in address order.
using GroupMembers = std::map<std::string, std::vector<uint32_t>, std::less<>>;
GroupMembers group_members(const RegionState& region);

// A subnet or group is in use while some task's ENI (in any cluster) names it and is not
// DETACHED.
bool subnet_in_use(const RegionState& region, std::string_view subnet_id);
bool security_group_in_use(const RegionState& region, std::string_view group_id);
// The subnet's usable addresses (its size less the five AWS reserves: the first four and the
// last) less the private IPv4 addresses of the ENIs in use there.
int64_t available_address_count(const RegionState& region, const Subnet& subnet);

}  // namespace wharf::ecs
