// The default network, security group rules, CIDR arithmetic and the EC2 networking codecs.
#include "ecs/vpc.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "ecs/state.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// PREFIX-<17 hex> from a hash of `seed`: the same on every start.
std::string derived_id(std::string_view prefix, const std::string& seed) {
  return std::string(prefix) + "-" + sha256_hex(seed).substr(0, 17);
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<int64_t> parse_integer(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// One single-source rule as AWS words it in errors.
std::string describe_rule(const IpPermission& rule) {
  std::string peer =
      rule.cidr_ipv4.empty() ? rule.source_group_ids.front() : rule.cidr_ipv4.front();
  std::string protocol = rule.ip_protocol == "-1" ? "ALL" : rule.ip_protocol;
  std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::string text = "peer: " + peer + ", " + protocol;
  if (rule.ip_protocol != "-1") {
    text += ", from port: " + std::to_string(rule.from_port) +
            ", to port: " + std::to_string(rule.to_port);
  }
  return text + ", ALLOW";
}

bool same_ports(const IpPermission& a, const IpPermission& b) {
  return a.ip_protocol == b.ip_protocol && a.from_port == b.from_port && a.to_port == b.to_port;
}

// The permission in `rules` with the rule's protocol and ports, or end.
std::vector<IpPermission>::iterator find_ports(std::vector<IpPermission>& rules,
                                               const IpPermission& rule) {
  return std::find_if(rules.begin(), rules.end(),
                      [&](const IpPermission& held) { return same_ports(held, rule); });
}

bool holds(const IpPermission& permission, const IpPermission& rule) {
  auto contains = [](const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  if (!rule.cidr_ipv4.empty()) return contains(permission.cidr_ipv4, rule.cidr_ipv4.front());
  return contains(permission.source_group_ids, rule.source_group_ids.front());
}

// Stored as ECS stores tags ({"key", "value"} objects).
Tags tags_from_store(const bj::object& object) {
  const auto* list = json::get_array(object, "tags");
  return list == nullptr ? Tags{} : tags_from_json(*list);
}

bj::array permissions_to_store(const std::vector<IpPermission>& permissions) {
  bj::array out;
  for (const auto& permission : permissions) {
    out.push_back(
        bj::object{{"ip_protocol", permission.ip_protocol},
                   {"from_port", permission.from_port},
                   {"to_port", permission.to_port},
                   {"cidr_ipv4", json::strings_array(permission.cidr_ipv4)},
                   {"source_group_ids", json::strings_array(permission.source_group_ids)}});
  }
  return out;
}

std::vector<IpPermission> permissions_from_store(const bj::object& object, std::string_view key) {
  std::vector<IpPermission> out;
  const auto* list = json::get_array(object, key);
  if (list == nullptr) return out;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    const auto& stored = item.as_object();
    IpPermission permission;
    permission.ip_protocol = json::string_or(stored, "ip_protocol", "-1");
    permission.from_port = json::get_int(stored, "from_port").value_or(-1);
    permission.to_port = json::get_int(stored, "to_port").value_or(-1);
    permission.cidr_ipv4 = json::get_strings(stored, "cidr_ipv4");
    permission.source_group_ids = json::get_strings(stored, "source_group_ids");
    out.push_back(std::move(permission));
  }
  return out;
}

Result<std::string> required_id(const bj::object& stored, std::string_view what) {
  auto id = json::get_string(stored, "id");
  if (!id || id->empty()) {
    return fail(ErrorCode::kInternal, "stored " + std::string(what) + " has no id");
  }
  return *id;
}

}  // namespace

std::unexpected<Error> bad_value(std::string message) {
  return fail_as(ErrorCode::kInvalidParameter, "InvalidParameterValue", std::move(message));
}

std::string default_vpc_id(std::string_view region_name) {
  return derived_id("vpc", "wharf/" + std::string(region_name) + "/default-vpc");
}

std::string default_subnet_id(std::string_view region_name) {
  return derived_id("subnet", "wharf/" + std::string(region_name) + "/default-subnet");
}

std::string default_security_group_id(std::string_view region_name) {
  return derived_id("sg", "wharf/" + std::string(region_name) + "/default-security-group");
}

const Vpc* default_vpc(const RegionState& region) {
  auto found = std::find_if(region.vpcs.begin(), region.vpcs.end(),
                            [](const auto& entry) { return entry.second.is_default; });
  return found == region.vpcs.end() ? nullptr : &found->second;
}

bool has_default_network(const RegionState& region) {
  return default_vpc(region) != nullptr;
}

void ensure_default_network(RegionState& region, const std::string& region_name) {
  if (has_default_network(region)) return;
  Vpc vpc{default_vpc_id(region_name), std::string(kDefaultVpcCidr), true, {}};
  Subnet subnet{default_subnet_id(region_name),
                vpc.id,
                std::string(kDefaultSubnetCidr),
                region_name + "a",
                true,
                {}};
  SecurityGroup group;
  group.id = default_security_group_id(region_name);
  group.name = std::string(kDefaultGroupName);
  group.description = "default VPC security group";
  group.vpc_id = vpc.id;
  group.ingress = {IpPermission{"-1", -1, -1, {}, {group.id}}};
  group.egress = {IpPermission{"-1", -1, -1, {"0.0.0.0/0"}, {}}};
  region.subnets.try_emplace(subnet.id, std::move(subnet));
  region.security_groups.try_emplace(group.id, std::move(group));
  region.vpcs.try_emplace(vpc.id, std::move(vpc));
}

std::string new_ec2_id(std::string_view prefix) {
  return std::string(prefix) + "-" + to_hex(random_bytes(9)).substr(0, 17);
}

bool is_ec2_id(std::string_view id, std::string_view prefix) {
  if (id.size() <= prefix.size() + 1 || !id.starts_with(prefix) || id[prefix.size()] != '-') {
    return false;
  }
  std::string_view hex = id.substr(prefix.size() + 1);
  return (hex.size() == 8 || hex.size() == 17) && is_lower_hex(hex);
}

uint32_t Ipv4Cidr::mask() const {
  return prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
}

bool Ipv4Cidr::contains(const Ipv4Cidr& inner) const {
  return inner.prefix_length >= prefix_length && contains_address(inner.network());
}

bool Ipv4Cidr::overlaps(const Ipv4Cidr& other) const {
  return contains(other) || other.contains(*this);
}

std::string Ipv4Cidr::str() const {
  return ipv4_to_string(network()) + "/" + std::to_string(prefix_length);
}

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t address = 0;
  for (int part_idx = 0; part_idx < 4; ++part_idx) {
    size_t dot = text.find('.');
    bool last = part_idx == 3;
    if (last != (dot == std::string_view::npos)) return std::nullopt;
    std::string_view part = text.substr(0, dot);
    if (part.size() > 3 || !all_digits(part)) return std::nullopt;
    auto value = parse_integer(part);
    if (!value || *value > 255) return std::nullopt;
    address = (address << 8) | static_cast<uint32_t>(*value);
    if (!last) text.remove_prefix(dot + 1);
  }
  return address;
}

std::string ipv4_to_string(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto address = parse_ipv4(text.substr(0, slash));
  std::string_view length = text.substr(slash + 1);
  if (!address || length.size() > 2 || !all_digits(length)) return std::nullopt;
  auto prefix = parse_integer(length);
  if (!prefix || *prefix > 32) return std::nullopt;
  return Ipv4Cidr{*address, static_cast<int>(*prefix)};
}

Result<std::string> normalize_protocol(std::string_view protocol) {
  std::string name = lower(protocol);
  if (name == "tcp" || name == "6") return std::string("tcp");
  if (name == "udp" || name == "17") return std::string("udp");
  if (name == "icmp" || name == "1") return std::string("icmp");
  if (name == "-1" || name == "all") return std::string("-1");
  return bad_value("The IP protocol '" + std::string(protocol) +
                   "' is not supported: use tcp (6), udp (17), icmp (1) or -1 for all protocols.");
}

Result<IpPermission> normalize_permission(IpPermission permission) {
  if (permission.ip_protocol.empty()) {
    return fail_as(ErrorCode::kMissingParameter, "MissingParameter",
                   "Each permission needs an IpProtocol: tcp, udp, icmp or -1 for all protocols.");
  }
  auto protocol = normalize_protocol(permission.ip_protocol);
  if (!protocol) return std::unexpected(protocol.error());
  permission.ip_protocol = *protocol;
  int64_t& from = permission.from_port;
  int64_t& to = permission.to_port;
  if (permission.ip_protocol == "-1") {
    from = to = -1;
  } else if (permission.ip_protocol == "icmp") {
    if (from < -1 || from > 255 || to < -1 || to > 255) {
      return bad_value(
          "For ICMP, FromPort is the ICMP type and ToPort the ICMP code, each -1 (all) "
          "or 0 to 255; got " +
          std::to_string(from) + " and " + std::to_string(to) + ".");
    }
    if (from == -1 && to != -1) {
      return bad_value("An ICMP code (ToPort " + std::to_string(to) +
                       ") needs an ICMP type (FromPort); use -1 for both to allow all of ICMP.");
    }
  } else {
    if (from == -1 && to == -1) {
      from = 0;
      to = 65535;
    } else if (from == -1 || to == -1) {
      return bad_value("For " + permission.ip_protocol +
                       ", give both FromPort and ToPort (or neither, for all ports).");
    }
    if (from < 0 || from > 65535 || to < 0 || to > 65535) {
      return bad_value("Ports must be between 0 and 65535; got FromPort " + std::to_string(from) +
                       " and ToPort " + std::to_string(to) + ".");
    }
    if (from > to) {
      return bad_value("FromPort (" + std::to_string(from) + ") must not be greater than ToPort (" +
                       std::to_string(to) + ").");
    }
  }
  for (const auto& text : permission.cidr_ipv4) {
    auto cidr = parse_ipv4_cidr(text);
    if (!cidr) {
      return bad_value("CIDR block '" + text +
                       "' is malformed: write an IPv4 network as A.B.C.D/N, e.g. 203.0.113.0/24.");
    }
    if (!cidr->is_network()) {
      return bad_value("CIDR block '" + text + "' has host bits set: use " + cidr->str() + ".");
    }
  }
  if (permission.cidr_ipv4.empty() && permission.source_group_ids.empty()) {
    return fail_as(ErrorCode::kMissingParameter, "MissingParameter",
                   "A permission must name at least one source: IpRanges[].CidrIp or "
                   "UserIdGroupPairs[].GroupId.");
  }
  return permission;
}

std::vector<IpPermission> split_rules(const std::vector<IpPermission>& permissions) {
  std::vector<IpPermission> rules;
  for (const auto& permission : permissions) {
    IpPermission base{permission.ip_protocol, permission.from_port, permission.to_port, {}, {}};
    for (const auto& cidr : permission.cidr_ipv4) {
      rules.push_back(base);
      rules.back().cidr_ipv4 = {cidr};
    }
    for (const auto& group : permission.source_group_ids) {
      rules.push_back(base);
      rules.back().source_group_ids = {group};
    }
  }
  return rules;
}

std::string rule_id(std::string_view group_id, bool egress, const IpPermission& rule) {
  std::string source = rule.cidr_ipv4.empty() ? "group:" + rule.source_group_ids.front()
                                              : "cidr:" + rule.cidr_ipv4.front();
  return derived_id("sgr", std::string(group_id) + (egress ? "/egress/" : "/ingress/") +
                               rule.ip_protocol + "/" + std::to_string(rule.from_port) + "/" +
                               std::to_string(rule.to_port) + "/" + source);
}

Status add_rules(std::vector<IpPermission>& rules, const std::vector<IpPermission>& added,
                 std::string_view group_id) {
  std::vector<IpPermission> updated = rules;
  for (const auto& rule : split_rules(added)) {
    auto permission = find_ports(updated, rule);
    if (permission == updated.end()) {
      updated.push_back(rule);
      continue;
    }
    if (holds(*permission, rule)) {
      return fail_as(ErrorCode::kInvalidParameter, "InvalidPermission.Duplicate",
                     "The specified rule \"" + describe_rule(rule) +
                         "\" already exists in security group " + std::string(group_id) +
                         "; leave it out of the request.");
    }
    auto& sources = rule.cidr_ipv4.empty() ? permission->source_group_ids : permission->cidr_ipv4;
    sources.push_back(rule.cidr_ipv4.empty() ? rule.source_group_ids.front()
                                             : rule.cidr_ipv4.front());
  }
  rules = std::move(updated);
  return {};
}

Status remove_rules(std::vector<IpPermission>& rules, const std::vector<IpPermission>& removed,
                    std::string_view group_id) {
  std::vector<IpPermission> updated = rules;
  for (const auto& rule : split_rules(removed)) {
    auto permission = find_ports(updated, rule);
    if (permission == updated.end() || !holds(*permission, rule)) {
      return fail_as(ErrorCode::kNotFound, "InvalidPermission.NotFound",
                     "The specified rule \"" + describe_rule(rule) +
                         "\" does not exist in security group " + std::string(group_id) +
                         "; describe the group to see its rules.");
    }
    if (!rule.cidr_ipv4.empty()) std::erase(permission->cidr_ipv4, rule.cidr_ipv4.front());
    if (!rule.source_group_ids.empty()) {
      std::erase(permission->source_group_ids, rule.source_group_ids.front());
    }
    if (permission->cidr_ipv4.empty() && permission->source_group_ids.empty()) {
      updated.erase(permission);
    }
  }
  rules = std::move(updated);
  return {};
}

bool references_group(const SecurityGroup& group, std::string_view source_group_id) {
  auto names = [&](const IpPermission& permission) {
    return std::find(permission.source_group_ids.begin(), permission.source_group_ids.end(),
                     source_group_id) != permission.source_group_ids.end();
  };
  return std::any_of(group.ingress.begin(), group.ingress.end(), names) ||
         std::any_of(group.egress.begin(), group.egress.end(), names);
}

Status validate_ec2_tags(const Tags& tags) {
  std::set<std::string_view> keys;
  for (const auto& [key, value] : tags) {
    if (key.empty() || key.size() > 127) {
      return bad_value("Tag keys must be 1 to 127 characters long; '" + key + "' is not.");
    }
    if (lower(key).starts_with("aws:")) {
      return bad_value("Tag keys starting with 'aws:' are reserved for AWS use; rename the tag '" +
                       key + "'.");
    }
    if (value.size() > 255) {
      return bad_value("The value of tag '" + key + "' is longer than 255 characters.");
    }
    if (!keys.insert(key).second) {
      return bad_value("The tag key '" + key + "' is given more than once; give each key once.");
    }
  }
  if (tags.size() > 50) {
    return fail_as(
        ErrorCode::kLimitExceeded, "TagLimitExceeded",
        "A resource may have at most 50 tags; " + std::to_string(tags.size()) + " were given.");
  }
  return {};
}

bj::array ec2_tags_to_wire(const Tags& tags) {
  bj::array out;
  for (const auto& [key, value] : tags) out.push_back(bj::object{{"Key", key}, {"Value", value}});
  return out;
}

bj::object vpc_to_wire(const Vpc& vpc, std::string_view /*region*/, std::string_view account) {
  bj::object association{
      {"AssociationId", derived_id("vpc-cidr-assoc", vpc.id + "/" + vpc.cidr_block)},
      {"CidrBlock", vpc.cidr_block},
      {"CidrBlockState", bj::object{{"State", "associated"}}}};
  return {{"VpcId", vpc.id},
          {"CidrBlock", vpc.cidr_block},
          {"State", "available"},
          {"IsDefault", vpc.is_default},
          {"OwnerId", account},
          {"InstanceTenancy", "default"},
          {"CidrBlockAssociationSet", bj::array{std::move(association)}},
          {"Ipv6CidrBlockAssociationSet", bj::array{}},
          {"Tags", ec2_tags_to_wire(vpc.tags)}};
}

bj::object subnet_to_wire(const Subnet& subnet, std::string_view region, std::string_view account,
                          int64_t available_addresses) {
  return {{"SubnetId", subnet.id},
          {"SubnetArn", "arn:aws:ec2:" + std::string(region) + ":" + std::string(account) +
                            ":subnet/" + subnet.id},
          {"VpcId", subnet.vpc_id},
          {"CidrBlock", subnet.cidr_block},
          {"AvailabilityZone", subnet.availability_zone},
          {"AvailableIpAddressCount", available_addresses},
          {"DefaultForAz", subnet.default_for_az},
          {"MapPublicIpOnLaunch", false},
          {"MapCustomerOwnedIpOnLaunch", false},
          {"AssignIpv6AddressOnCreation", false},
          {"Ipv6CidrBlockAssociationSet", bj::array{}},
          {"Ipv6Native", false},
          {"EnableDns64", false},
          {"State", "available"},
          {"OwnerId", account},
          {"PrivateDnsNameOptionsOnLaunch", bj::object{{"HostnameType", "ip-name"},
                                                       {"EnableResourceNameDnsARecord", false},
                                                       {"EnableResourceNameDnsAAAARecord", false}}},
          {"Tags", ec2_tags_to_wire(subnet.tags)}};
}

bj::array permissions_to_wire(const std::vector<IpPermission>& permissions,
                              std::string_view account) {
  bj::array out;
  for (const auto& permission : permissions) {
    bj::array ranges;
    for (const auto& cidr : permission.cidr_ipv4) ranges.push_back(bj::object{{"CidrIp", cidr}});
    bj::array pairs;
    for (const auto& group : permission.source_group_ids) {
      pairs.push_back(bj::object{{"GroupId", group}, {"UserId", account}});
    }
    bj::object wire{{"IpProtocol", permission.ip_protocol},
                    {"IpRanges", std::move(ranges)},
                    {"Ipv6Ranges", bj::array{}},
                    {"PrefixListIds", bj::array{}},
                    {"UserIdGroupPairs", std::move(pairs)}};
    if (permission.ip_protocol != "-1") {
      wire["FromPort"] = permission.from_port;
      wire["ToPort"] = permission.to_port;
    }
    out.push_back(std::move(wire));
  }
  return out;
}

bj::object security_group_to_wire(const SecurityGroup& group, std::string_view region,
                                  std::string_view account) {
  return {{"GroupId", group.id},
          {"GroupName", group.name},
          {"Description", group.description},
          {"VpcId", group.vpc_id},
          {"OwnerId", account},
          {"SecurityGroupArn", "arn:aws:ec2:" + std::string(region) + ":" + std::string(account) +
                                   ":security-group/" + group.id},
          {"IpPermissions", permissions_to_wire(group.ingress, account)},
          {"IpPermissionsEgress", permissions_to_wire(group.egress, account)},
          {"Tags", ec2_tags_to_wire(group.tags)}};
}

bj::object security_group_rule_to_wire(std::string_view group_id, bool egress,
                                       const IpPermission& rule, std::string_view account) {
  bj::object out{{"SecurityGroupRuleId", rule_id(group_id, egress, rule)},
                 {"GroupId", group_id},
                 {"GroupOwnerId", account},
                 {"IsEgress", egress},
                 {"IpProtocol", rule.ip_protocol},
                 {"FromPort", rule.from_port},
                 {"ToPort", rule.to_port},
                 {"Tags", bj::array{}}};
  if (!rule.cidr_ipv4.empty()) {
    out["CidrIpv4"] = rule.cidr_ipv4.front();
  } else {
    out["ReferencedGroupInfo"] =
        bj::object{{"GroupId", rule.source_group_ids.front()}, {"UserId", account}};
  }
  return out;
}

bj::object revoked_security_group_rule_to_wire(std::string_view group_id, bool egress,
                                               const IpPermission& rule) {
  bj::object out{{"SecurityGroupRuleId", rule_id(group_id, egress, rule)},
                 {"GroupId", group_id},
                 {"IsEgress", egress},
                 {"IpProtocol", rule.ip_protocol},
                 {"FromPort", rule.from_port},
                 {"ToPort", rule.to_port}};
  if (!rule.cidr_ipv4.empty()) {
    out["CidrIpv4"] = rule.cidr_ipv4.front();
  } else {
    out["ReferencedGroupId"] = rule.source_group_ids.front();
  }
  return out;
}

bj::object vpc_to_store(const Vpc& vpc) {
  return {{"id", vpc.id},
          {"cidr_block", vpc.cidr_block},
          {"is_default", vpc.is_default},
          {"tags", tags_to_json(vpc.tags)}};
}

Result<Vpc> vpc_from_store(bj::object stored) {
  auto id = required_id(stored, "VPC");
  if (!id) return std::unexpected(id.error());
  return Vpc{*id, json::string_or(stored, "cidr_block", ""),
             json::get_bool(stored, "is_default").value_or(false), tags_from_store(stored)};
}

bj::object subnet_to_store(const Subnet& subnet) {
  return {{"id", subnet.id},
          {"vpc_id", subnet.vpc_id},
          {"cidr_block", subnet.cidr_block},
          {"availability_zone", subnet.availability_zone},
          {"default_for_az", subnet.default_for_az},
          {"tags", tags_to_json(subnet.tags)}};
}

Result<Subnet> subnet_from_store(bj::object stored) {
  auto id = required_id(stored, "subnet");
  if (!id) return std::unexpected(id.error());
  return Subnet{*id,
                json::string_or(stored, "vpc_id", ""),
                json::string_or(stored, "cidr_block", ""),
                json::string_or(stored, "availability_zone", ""),
                json::get_bool(stored, "default_for_az").value_or(false),
                tags_from_store(stored)};
}

bj::object security_group_to_store(const SecurityGroup& group) {
  return {{"id", group.id},
          {"name", group.name},
          {"description", group.description},
          {"vpc_id", group.vpc_id},
          {"ingress", permissions_to_store(group.ingress)},
          {"egress", permissions_to_store(group.egress)},
          {"tags", tags_to_json(group.tags)}};
}

Result<SecurityGroup> security_group_from_store(bj::object stored) {
  auto id = required_id(stored, "security group");
  if (!id) return std::unexpected(id.error());
  SecurityGroup group;
  group.id = *id;
  group.name = json::string_or(stored, "name", "");
  group.description = json::string_or(stored, "description", "");
  group.vpc_id = json::string_or(stored, "vpc_id", "");
  group.ingress = permissions_from_store(stored, "ingress");
  group.egress = permissions_from_store(stored, "egress");
  group.tags = tags_from_store(stored);
  return group;
}

const SecurityGroup* find_security_group(const RegionState& region, std::string_view vpc_id,
                                         std::string_view name) {
  for (const auto& [id, group] : region.security_groups) {
    if (group.vpc_id == vpc_id && group.name == name) return &group;
  }
  return nullptr;
}

SecurityGroup* find_security_group(RegionState& region, std::string_view vpc_id,
                                   std::string_view name) {
  return const_cast<SecurityGroup*>(find_security_group(std::as_const(region), vpc_id, name));
}

bool eni_in_use(const EniAttachment& eni) {
  return eni.status != "DETACHED";
}

void for_each_eni_in_use(const RegionState& region, const std::function<void(const Task&)>& visit) {
  for (const auto& [cluster, tasks] : region.tasks) {
    for (const auto& [id, task] : tasks) {
      if (task.eni && eni_in_use(*task.eni)) visit(task);
    }
  }
}

std::set<uint32_t> addresses_in_use(const RegionState& region, std::string_view subnet_id) {
  std::set<uint32_t> out;
  for_each_eni_in_use(region, [&](const Task& task) {
    if (task.eni->subnet_id != subnet_id) return;
    if (auto address = parse_ipv4(task.eni->private_ipv4)) out.insert(*address);
  });
  return out;
}

GroupMembers group_members(const RegionState& region) {
  GroupMembers members;
  for_each_eni_in_use(region, [&](const Task& task) {
    auto address = parse_ipv4(task.eni->private_ipv4);
    if (!address) return;
    for (const auto& group : task.eni->security_group_ids) members[group].push_back(*address);
  });
  // The same membership reads the same.
  for (auto& [group, addresses] : members) std::sort(addresses.begin(), addresses.end());
  return members;
}

bool subnet_in_use(const RegionState& region, std::string_view subnet_id) {
  bool used = false;
  for_each_eni_in_use(region, [&](const Task& task) { used |= task.eni->subnet_id == subnet_id; });
  return used;
}

bool security_group_in_use(const RegionState& region, std::string_view group_id) {
  bool used = false;
  for_each_eni_in_use(region, [&](const Task& task) {
    const auto& groups = task.eni->security_group_ids;
    used |= std::find(groups.begin(), groups.end(), group_id) != groups.end();
  });
  return used;
}

int64_t available_address_count(const RegionState& region, const Subnet& subnet) {
  auto cidr = parse_ipv4_cidr(subnet.cidr_block);
  if (!cidr) return 0;
  int64_t usable = static_cast<int64_t>(cidr->size()) - 5;
  int64_t used = static_cast<int64_t>(addresses_in_use(region, subnet.id).size());
  return std::max<int64_t>(0, usable - used);
}

}  // namespace wharf::ecs
