// EC2 networking operations: security groups and their rules, subnets, the default VPC, tags.
#include "ecs/ec2_api.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <string>
#include <utility>

#include "aws/service_model.hpp"
#include "common/json.hpp"
#include "ecs/vpc.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

std::unexpected<Error> missing(std::string_view member, std::string_view hint = {}) {
  std::string message = "The request must contain the parameter " + std::string(member) + ".";
  if (!hint.empty()) message += " " + std::string(hint);
  return fail_as(ErrorCode::kMissingParameter, "MissingParameter", std::move(message));
}

std::unexpected<Error> combination(std::string message) {
  return fail_as(ErrorCode::kInvalidParameter, "InvalidParameterCombination", std::move(message));
}

std::unexpected<Error> dependency(std::string message) {
  return fail_as(ErrorCode::kResourceInUse, "DependencyViolation", std::move(message));
}

std::unexpected<Error> group_not_found(std::string_view id) {
  return fail_as(ErrorCode::kNotFound, "InvalidGroup.NotFound",
                 "The security group '" + std::string(id) +
                     "' does not exist; describe-security-groups lists the region's groups.");
}

std::unexpected<Error> subnet_not_found(std::string_view id) {
  return fail_as(ErrorCode::kNotFound, "InvalidSubnetID.NotFound",
                 "The subnet ID '" + std::string(id) +
                     "' does not exist; describe-subnets lists the region's subnets.");
}

std::unexpected<Error> vpc_not_found(std::string_view id) {
  return fail_as(ErrorCode::kNotFound, "InvalidVpcID.NotFound",
                 "The vpc ID '" + std::string(id) +
                     "' does not exist; Wharf has only each region's default VPC (describe-vpcs).");
}

// InvalidGroupId.Malformed and its kin for an id that cannot be one of `prefix`.
Status check_id(std::string_view id, std::string_view prefix, std::string_view malformed_code) {
  if (is_ec2_id(id, prefix)) return {};
  return fail_as(ErrorCode::kInvalidParameter, std::string(malformed_code),
                 "Invalid id: \"" + std::string(id) + "\" (expecting \"" + std::string(prefix) +
                     "-\" followed by 8 or 17 lowercase hex digits).");
}

// A port or ICMP type/code: -1 when absent.
Result<int64_t> read_port(const bj::object& object, std::string_view key) {
  const auto* value = json::member(object, key);
  if (value == nullptr) return -1;
  if (auto number = json::get_int(object, key)) return *number;
  if (value->is_string()) {
    std::string_view text = value->as_string();
    try {
      size_t used = 0;
      int64_t number = std::stoll(std::string(text), &used);
      if (used == text.size()) return number;
    } catch (const std::exception&) {
    }
  }
  return bad_value("Value (" + bj::serialize(*value) + ") for parameter " + std::string(key) +
                   " is invalid: give an integer.");
}

// A string member that the model types as a string but a client may send as a number.
std::string read_text(const bj::object& object, std::string_view key) {
  const auto* value = json::member(object, key);
  if (value == nullptr) return "";
  if (value->is_string()) return std::string(value->as_string());
  if (value->is_int64()) return std::to_string(value->as_int64());
  return bj::serialize(*value);
}

bool present(const bj::object& object, std::string_view key) {
  return json::member(object, key) != nullptr;
}

Tags read_tag_list(const bj::array& list) {
  Tags tags;
  for (const auto& item : list) {
    if (!item.is_object()) continue;
    tags.emplace_back(json::string_or(item.as_object(), "Key", ""),
                      json::string_or(item.as_object(), "Value", ""));
  }
  return tags;
}

// The tags of TagSpecifications for a resource of `resource_type`.
Result<Tags> read_tag_specifications(const bj::object& input, std::string_view resource_type) {
  Tags tags;
  const auto* specifications = json::get_array(input, "TagSpecifications");
  if (specifications == nullptr) return tags;
  for (const auto& item : *specifications) {
    if (!item.is_object()) continue;
    const auto& specification = item.as_object();
    std::string type = json::string_or(specification, "ResourceType", "");
    if (type != resource_type) {
      return bad_value("TagSpecifications ResourceType '" + type +
                       "' does not fit this operation; use '" + std::string(resource_type) + "'.");
    }
    if (const auto* list = json::get_array(specification, "Tags")) {
      Tags given = read_tag_list(*list);
      tags.insert(tags.end(), given.begin(), given.end());
    }
  }
  if (auto status = validate_ec2_tags(tags); !status) return std::unexpected(status.error());
  return tags;
}

// Security group names and descriptions: 1 to 255 characters of the set EC2 allows in a VPC.
Status check_group_text(const std::string& text, std::string_view member) {
  static constexpr std::string_view kPunctuation = " ._-:/()#,@[]+=&;{}!$*";
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kPunctuation.find(c) != std::string_view::npos;
  };
  if (text.empty() || text.size() > 255) {
    return bad_value(std::string(member) + " must be 1 to 255 characters long.");
  }
  if (!std::all_of(text.begin(), text.end(), allowed)) {
    return bad_value("Value (" + text + ") for parameter " + std::string(member) +
                     " is invalid: use letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* only.");
  }
  return {};
}

struct Filter {
  std::string name;
  std::vector<std::string> values;
};

Result<std::vector<Filter>> read_filters(const bj::object& input,
                                         std::initializer_list<std::string_view> known) {
  std::vector<Filter> filters;
  const auto* list = json::get_array(input, "Filters");
  if (list == nullptr) return filters;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    Filter filter{json::string_or(item.as_object(), "Name", ""),
                  json::get_strings(item.as_object(), "Values")};
    if (filter.name.empty()) return missing("Filter.N.Name", "Each filter needs a Name.");
    bool is_known = filter.name.starts_with("tag:") || filter.name == "tag-key" ||
                    std::find(known.begin(), known.end(), filter.name) != known.end();
    if (!is_known) {
      std::string names;
      for (auto name : known) names += std::string(name) + ", ";
      return bad_value("The filter '" + filter.name + "' is invalid; filter on " + names +
                       "tag:KEY or tag-key.");
    }
    filters.push_back(std::move(filter));
  }
  return filters;
}

// EC2 filter values: '*' matches any run of characters, '?' any one, '\' escapes either.
bool glob_match(std::string_view pattern, std::string_view text) {
  size_t pattern_idx = 0;
  size_t text_idx = 0;
  size_t star_idx = std::string_view::npos;
  size_t star_text_idx = 0;
  while (text_idx < text.size()) {
    if (pattern_idx < pattern.size()) {
      char wanted = pattern[pattern_idx];
      if (wanted == '\\' && pattern_idx + 1 < pattern.size() &&
          pattern[pattern_idx + 1] == text[text_idx]) {
        pattern_idx += 2;
        ++text_idx;
        continue;
      }
      if (wanted == '*') {
        star_idx = pattern_idx++;
        star_text_idx = text_idx;
        continue;
      }
      if (wanted == '?' || (wanted != '\\' && wanted == text[text_idx])) {
        ++pattern_idx;
        ++text_idx;
        continue;
      }
    }
    if (star_idx == std::string_view::npos) return false;
    pattern_idx = star_idx + 1;
    text_idx = ++star_text_idx;
  }
  while (pattern_idx < pattern.size() && pattern[pattern_idx] == '*') ++pattern_idx;
  return pattern_idx == pattern.size();
}

// Whether a resource with `tags` passes every filter; `fields(name)` gives the values it shows
// under a filter name that is not about tags.
template <typename Fields>
bool passes(const std::vector<Filter>& filters, const Tags& tags, Fields fields) {
  for (const auto& filter : filters) {
    std::vector<std::string> values;
    if (filter.name.starts_with("tag:")) {
      std::string_view key = std::string_view(filter.name).substr(4);
      for (const auto& [tag_key, tag_value] : tags) {
        if (tag_key == key) values.push_back(tag_value);
      }
    } else if (filter.name == "tag-key") {
      for (const auto& [tag_key, tag_value] : tags) values.push_back(tag_key);
    } else {
      values = fields(filter.name);
    }
    bool matched = std::any_of(values.begin(), values.end(), [&](const std::string& value) {
      return std::any_of(filter.values.begin(), filter.values.end(),
                         [&](const std::string& pattern) { return glob_match(pattern, value); });
    });
    if (!matched) return false;
  }
  return true;
}

// What a Describe call answers: the resources `ids` names (every one when empty; an unknown id
// fails with `not_found`) that pass the filters, each as `to_wire` gives it. `fields(resource,
// name)` gives the values a resource shows under a filter name that is not about tags.
template <typename Resources, typename NotFound, typename Fields, typename ToWire>
Result<bj::array> select(const Resources& resources, const std::vector<std::string>& ids,
                         const std::vector<Filter>& filters, NotFound not_found, Fields fields,
                         ToWire to_wire) {
  for (const auto& id : ids) {
    if (!resources.contains(id)) return not_found(id);
  }
  bj::array out;
  for (const auto& [id, resource] : resources) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    auto values = [&](const std::string& name) { return fields(resource, name); };
    if (passes(filters, resource.tags, values)) out.push_back(to_wire(resource));
  }
  return out;
}

std::string bool_text(bool value) {
  return value ? "true" : "false";
}

std::unexpected<Error> name_not_found(std::string_view name, std::string_view vpc_id) {
  return fail_as(ErrorCode::kNotFound, "InvalidGroup.NotFound",
                 "The security group '" + std::string(name) + "' does not exist in VPC '" +
                     std::string(vpc_id) + "'; give its GroupId, or create it first.");
}

Result<SecurityGroup*> group_by_id(RegionState& region, std::string_view id) {
  if (auto status = check_id(id, "sg", "InvalidGroupId.Malformed"); !status) {
    return std::unexpected(status.error());
  }
  auto found = region.security_groups.find(id);
  if (found == region.security_groups.end()) return group_not_found(id);
  return &found->second;
}

Result<SecurityGroup*> group_by_name(RegionState& region, std::string_view vpc_id,
                                     std::string_view name) {
  if (SecurityGroup* group = find_security_group(region, vpc_id, name)) return group;
  return name_not_found(name, vpc_id);
}

// The group a request names by GroupId, or by GroupName in the default VPC.
Result<SecurityGroup*> target_group(RegionState& region, const bj::object& input) {
  auto id = json::get_string(input, "GroupId");
  auto name = json::get_string(input, "GroupName");
  if (id && name) return combination("Give GroupId or GroupName, not both.");
  if (id) return group_by_id(region, *id);
  if (name) return group_by_name(region, default_vpc(region)->id, *name);
  return missing("GroupId",
                 "Name the security group by GroupId (or, in the default VPC, by "
                 "GroupName).");
}

// A source group of a rule of `target`: by GroupId, or by GroupName in the target's VPC.
Result<std::string> read_source_group(RegionState& region, const SecurityGroup& target,
                                      const bj::object& pair, std::string_view account) {
  if (auto user = json::get_string(pair, "UserId"); user && *user != account) {
    return bad_value("UserIdGroupPairs names account " + *user + ", but Wharf's groups belong to " +
                     std::string(account) + "; leave UserId out.");
  }
  if (auto id = json::get_string(pair, "GroupId")) {
    auto group = group_by_id(region, *id);
    if (!group) return std::unexpected(group.error());
    return *id;
  }
  if (auto name = json::get_string(pair, "GroupName")) {
    auto group = group_by_name(region, target.vpc_id, *name);
    if (!group) return std::unexpected(group.error());
    return (*group)->id;
  }
  return missing("UserIdGroupPairs.N.GroupId",
                 "Each UserIdGroupPairs entry needs a GroupId (or the GroupName of a group in the "
                 "same VPC).");
}

constexpr std::array<std::string_view, 6> kFlatMembers = {"IpProtocol",
                                                          "FromPort",
                                                          "ToPort",
                                                          "CidrIp",
                                                          "SourceSecurityGroupName",
                                                          "SourceSecurityGroupOwnerId"};

bool has_flat_rule(const bj::object& input) {
  return std::any_of(kFlatMembers.begin(), kFlatMembers.end(),
                     [&](std::string_view member) { return present(input, member); });
}

// IpProtocol, FromPort and ToPort of a permission (or of the legacy single-rule form).
Result<IpPermission> read_protocol_and_ports(const bj::object& object) {
  IpPermission permission;
  permission.ip_protocol = read_text(object, "IpProtocol");
  auto from = read_port(object, "FromPort");
  if (!from) return std::unexpected(from.error());
  auto to = read_port(object, "ToPort");
  if (!to) return std::unexpected(to.error());
  permission.from_port = *from;
  permission.to_port = *to;
  return permission;
}

// The legacy single-rule form: IpProtocol, FromPort, ToPort and CidrIp or SourceSecurityGroupName.
Result<IpPermission> read_flat_permission(RegionState& region, const SecurityGroup& target,
                                          const bj::object& input) {
  auto permission = read_protocol_and_ports(input);
  if (!permission) return std::unexpected(permission.error());
  auto cidr = json::get_string(input, "CidrIp");
  auto source = json::get_string(input, "SourceSecurityGroupName");
  if (cidr && source) {
    return combination(
        "CidrIp and SourceSecurityGroupName name two sources; give one, or use IpPermissions.");
  }
  if (cidr) permission->cidr_ipv4.push_back(*cidr);
  if (source) {
    auto group = group_by_name(region, target.vpc_id, *source);
    if (!group) return std::unexpected(group.error());
    permission->source_group_ids.push_back((*group)->id);
    if (permission->ip_protocol.empty()) permission->ip_protocol = "-1";
  }
  return normalize_permission(std::move(*permission));
}

Result<IpPermission> read_permission(RegionState& region, const SecurityGroup& target,
                                     const bj::object& item, std::string_view account) {
  auto permission = read_protocol_and_ports(item);
  if (!permission) return std::unexpected(permission.error());
  if (const auto* list = json::get_array(item, "Ipv6Ranges"); list && !list->empty()) {
    return bad_value("Wharf has no IPv6 rules (Ipv6Ranges); use IpRanges with IPv4 CIDRs.");
  }
  if (const auto* list = json::get_array(item, "PrefixListIds"); list && !list->empty()) {
    return bad_value(
        "Wharf has no managed prefix lists (PrefixListIds); use IpRanges or "
        "UserIdGroupPairs.");
  }
  if (const auto* ranges = json::get_array(item, "IpRanges")) {
    for (const auto& range : *ranges) {
      auto cidr = range.is_object() ? json::get_string(range.as_object(), "CidrIp") : std::nullopt;
      if (!cidr) return missing("IpRanges.N.CidrIp", "Each IpRanges entry needs a CidrIp.");
      permission->cidr_ipv4.push_back(*cidr);
    }
  }
  if (const auto* pairs = json::get_array(item, "UserIdGroupPairs")) {
    for (const auto& pair : *pairs) {
      if (!pair.is_object()) continue;
      auto source = read_source_group(region, target, pair.as_object(), account);
      if (!source) return std::unexpected(source.error());
      permission->source_group_ids.push_back(std::move(*source));
    }
  }
  return normalize_permission(std::move(*permission));
}

// The permissions a request gives: IpPermissions, or the legacy single-rule members.
Result<std::vector<IpPermission>> read_permissions(RegionState& region, const SecurityGroup& target,
                                                   const bj::object& input,
                                                   std::string_view account) {
  const auto* list = json::get_array(input, "IpPermissions");
  bool listed = list != nullptr && !list->empty();
  if (listed && has_flat_rule(input)) {
    return combination(
        "Give IpPermissions or the single-rule members (IpProtocol, FromPort, ToPort, CidrIp, "
        "SourceSecurityGroupName), not both.");
  }
  std::vector<IpPermission> permissions;
  if (!listed) {
    if (!has_flat_rule(input)) {
      return missing("IpPermissions",
                     "Give the rules as IpPermissions (or one rule as "
                     "IpProtocol, FromPort, ToPort and CidrIp).");
    }
    auto permission = read_flat_permission(region, target, input);
    if (!permission) return std::unexpected(permission.error());
    permissions.push_back(std::move(*permission));
    return permissions;
  }
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    auto permission = read_permission(region, target, item.as_object(), account);
    if (!permission) return std::unexpected(permission.error());
    permissions.push_back(std::move(*permission));
  }
  return permissions;
}

// The single-source rules that SecurityGroupRuleIds name, among `rules`.
Result<std::vector<IpPermission>> rules_by_id(const SecurityGroup& group,
                                              const std::vector<IpPermission>& rules, bool egress,
                                              const std::vector<std::string>& ids) {
  std::vector<IpPermission> held = split_rules(rules);
  std::vector<IpPermission> named;
  for (const auto& id : ids) {
    auto found = std::find_if(held.begin(), held.end(), [&](const IpPermission& rule) {
      return rule_id(group.id, egress, rule) == id;
    });
    if (found == held.end()) {
      return fail_as(ErrorCode::kNotFound, "InvalidSecurityGroupRuleId.NotFound",
                     "The security group rule ID '" + id + "' does not exist in " +
                         std::string(egress ? "the egress" : "the ingress") + " rules of " +
                         group.id + "; describe the group to see its rules.");
    }
    named.push_back(*found);
  }
  return named;
}

// A resource CreateTags and DeleteTags may tag.
struct Tagged {
  std::string id;
  Tags* tags;
};

Result<Tagged> find_tagged(RegionState& region, const std::string& id) {
  auto lookup = [&](auto& resources, std::string_view prefix, std::string_view malformed,
                    auto not_found) -> Result<Tagged> {
    if (auto status = check_id(id, prefix, malformed); !status) {
      return std::unexpected(status.error());
    }
    auto found = resources.find(id);
    if (found == resources.end()) return not_found(id);
    return Tagged{id, &found->second.tags};
  };
  if (id.starts_with("sg-")) {
    return lookup(region.security_groups, "sg", "InvalidGroupId.Malformed", group_not_found);
  }
  if (id.starts_with("subnet-")) {
    return lookup(region.subnets, "subnet", "InvalidSubnetID.Malformed", subnet_not_found);
  }
  if (id.starts_with("vpc-")) {
    return lookup(region.vpcs, "vpc", "InvalidVpcID.Malformed", vpc_not_found);
  }
  return fail_as(ErrorCode::kInvalidParameter, "InvalidID",
                 "The ID '" + id +
                     "' is not valid: Wharf tags security groups (sg-), subnets (subnet-) and "
                     "VPCs (vpc-).");
}

store::Mutation put_tagged(const std::string& region_name, const RegionState& region,
                           const std::string& id) {
  if (auto group = region.security_groups.find(id); group != region.security_groups.end()) {
    return EcsState::put(region_name, group->second);
  }
  if (auto subnet = region.subnets.find(id); subnet != region.subnets.end()) {
    return EcsState::put(region_name, subnet->second);
  }
  return EcsState::put(region_name, region.vpcs.find(id)->second);
}

// The ids a Describe call names; each checked for shape.
Result<std::vector<std::string>> read_ids(const bj::object& input, std::string_view member,
                                          std::string_view prefix,
                                          std::string_view malformed_code) {
  std::vector<std::string> ids = json::get_strings(input, member);
  for (const auto& id : ids) {
    if (auto status = check_id(id, prefix, malformed_code); !status) {
      return std::unexpected(status.error());
    }
  }
  return ids;
}

}  // namespace

Ec2Api::Ec2Api(EcsState& state, const Clock& clock) : state_(state), clock_(clock) {}

void Ec2Api::register_operations(aws::QueryService& service) {
  using Method = void (Ec2Api::*)(const Context&, const Input&, Reply);
  auto bind = [&](const char* name, Method method) {
    service.add(name, [this, method](const Context& context, const Input& input, Reply reply) {
      (this->*method)(context, input, std::move(reply));
    });
  };
  bind("CreateSecurityGroup", &Ec2Api::create_security_group);
  bind("AuthorizeSecurityGroupIngress", &Ec2Api::authorize_security_group_ingress);
  bind("RevokeSecurityGroupIngress", &Ec2Api::revoke_security_group_ingress);
  // Wharf's EC2 model may leave the egress operations out (tools/strip_model.py --operations).
  if (service.model().has_operation("AuthorizeSecurityGroupEgress")) {
    bind("AuthorizeSecurityGroupEgress", &Ec2Api::authorize_security_group_egress);
    bind("RevokeSecurityGroupEgress", &Ec2Api::revoke_security_group_egress);
  }
  bind("DescribeSecurityGroups", &Ec2Api::describe_security_groups);
  bind("DeleteSecurityGroup", &Ec2Api::delete_security_group);
  bind("CreateSubnet", &Ec2Api::create_subnet);
  bind("DescribeSubnets", &Ec2Api::describe_subnets);
  bind("DeleteSubnet", &Ec2Api::delete_subnet);
  bind("DescribeVpcs", &Ec2Api::describe_vpcs);
  bind("CreateTags", &Ec2Api::create_tags);
  bind("DeleteTags", &Ec2Api::delete_tags);
}

void Ec2Api::on_security_groups_changed(std::function<void(const std::string& region)> callback) {
  security_groups_changed_ = std::move(callback);
}

std::shared_lock<std::shared_mutex> Ec2Api::read_lock(const std::string& region) {
  {
    std::shared_lock lock(state_.mutex());
    const RegionState* state = state_.find_region(region);
    if (state != nullptr && has_default_network(*state)) return lock;
  }
  {
    std::unique_lock lock(state_.mutex());
    ensure_default_network(state_.region(region), region);
  }
  // The default VPC, once made, is never removed, so it is still there.
  return std::shared_lock(state_.mutex());
}

RegionState& Ec2Api::write_region(const std::string& region) {
  RegionState& state = state_.region(region);
  ensure_default_network(state, region);
  return state;
}

void Ec2Api::commit_then_reply(const std::string& region_name, const RegionState& region,
                               std::vector<store::Mutation> mutations, bj::object output,
                               bool rules_changed, Reply reply) {
  std::vector<store::Mutation> all;
  if (const Vpc* vpc = default_vpc(region)) all.push_back(EcsState::put(region_name, *vpc));
  if (auto subnet = region.subnets.find(default_subnet_id(region_name));
      subnet != region.subnets.end()) {
    all.push_back(EcsState::put(region_name, subnet->second));
  }
  if (auto group = region.security_groups.find(default_security_group_id(region_name));
      group != region.security_groups.end()) {
    all.push_back(EcsState::put(region_name, group->second));
  }
  // After the defaults, so a change to one of them is what the store keeps.
  std::move(mutations.begin(), mutations.end(), std::back_inserter(all));
  state_.persist(std::move(all), [this, region_name, rules_changed, output = std::move(output),
                                  reply = std::move(reply)](Status status) mutable {
    if (!status) return reply(std::unexpected(status.error()));
    if (rules_changed && security_groups_changed_) security_groups_changed_(region_name);
    reply(std::move(output));
  });
}

void Ec2Api::create_security_group(const Context& context, const Input& input, Reply reply) {
  auto name = json::get_string(input, "GroupName");
  if (!name) return reply(missing("GroupName"));
  auto description = json::get_string(input, "Description");
  if (!description) return reply(missing("GroupDescription"));
  if (auto status = check_group_text(*name, "GroupName"); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (auto status = check_group_text(*description, "GroupDescription"); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (name->starts_with("sg-")) {
    return reply(
        bad_value("Group names may not start with 'sg-', the prefix of group ids; "
                  "choose another name."));
  }
  auto tags = read_tag_specifications(input, "security-group");
  if (!tags) return reply(std::unexpected(tags.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  std::string vpc_id = default_vpc(region)->id;
  if (auto given = json::get_string(input, "VpcId")) {
    if (!region.vpcs.contains(*given)) return reply(vpc_not_found(*given));
    vpc_id = *given;
  }
  if (const SecurityGroup* existing = find_security_group(region, vpc_id, *name)) {
    return reply(fail_as(ErrorCode::kInvalidParameter, "InvalidGroup.Duplicate",
                         "The security group '" + *name + "' already exists for VPC '" + vpc_id +
                             "' (" + existing->id +
                             "); choose another name or use the existing group."));
  }
  SecurityGroup group;
  group.id = new_ec2_id("sg");
  group.name = *name;
  group.description = *description;
  group.vpc_id = vpc_id;
  group.egress = {IpPermission{"-1", -1, -1, {"0.0.0.0/0"}, {}}};  // as EC2 gives a new group
  group.tags = std::move(*tags);
  bj::object wire = security_group_to_wire(group, context.region, context.account_id);
  bj::object output{{"GroupId", group.id},
                    {"SecurityGroupArn", wire["SecurityGroupArn"]},
                    {"Tags", wire["Tags"]}};
  auto mutation = EcsState::put(context.region, group);
  region.security_groups[group.id] = std::move(group);
  commit_then_reply(context.region, region, {std::move(mutation)}, std::move(output), false,
                    std::move(reply));
}

void Ec2Api::authorize_security_group_ingress(const Context& context, const Input& input,
                                              Reply reply) {
  change_rules(context, input, false, true, std::move(reply));
}

void Ec2Api::revoke_security_group_ingress(const Context& context, const Input& input,
                                           Reply reply) {
  change_rules(context, input, false, false, std::move(reply));
}

void Ec2Api::authorize_security_group_egress(const Context& context, const Input& input,
                                             Reply reply) {
  change_rules(context, input, true, true, std::move(reply));
}

void Ec2Api::revoke_security_group_egress(const Context& context, const Input& input, Reply reply) {
  change_rules(context, input, true, false, std::move(reply));
}

void Ec2Api::change_rules(const Context& context, const Input& input, bool egress, bool authorize,
                          Reply reply) {
  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  auto target = target_group(region, input);
  if (!target) return reply(std::unexpected(target.error()));
  SecurityGroup& group = **target;
  std::vector<IpPermission>& rules = egress ? group.egress : group.ingress;

  std::vector<std::string> rule_ids = json::get_strings(input, "SecurityGroupRuleIds");
  Result<std::vector<IpPermission>> permissions;
  if (!authorize && !rule_ids.empty()) {
    if (present(input, "IpPermissions") || has_flat_rule(input)) {
      return reply(combination("Give SecurityGroupRuleIds or the rules themselves, not both."));
    }
    permissions = rules_by_id(group, rules, egress, rule_ids);
  } else {
    permissions = read_permissions(region, group, input, context.account_id);
  }
  if (!permissions) return reply(std::unexpected(permissions.error()));

  Status changed = authorize ? add_rules(rules, *permissions, group.id)
                             : remove_rules(rules, *permissions, group.id);
  if (!changed) return reply(std::unexpected(changed.error()));
  bj::array changed_rules;
  for (const auto& rule : split_rules(*permissions)) {
    changed_rules.push_back(
        authorize ? security_group_rule_to_wire(group.id, egress, rule, context.account_id)
                  : revoked_security_group_rule_to_wire(group.id, egress, rule));
  }
  bj::object output{{"Return", true}};
  output[authorize ? "SecurityGroupRules" : "RevokedSecurityGroupRules"] = std::move(changed_rules);
  commit_then_reply(context.region, region, {EcsState::put(context.region, group)},
                    std::move(output), true, std::move(reply));
}

void Ec2Api::describe_security_groups(const Context& context, const Input& input, Reply reply) {
  auto ids = read_ids(input, "GroupIds", "sg", "InvalidGroupId.Malformed");
  if (!ids) return reply(std::unexpected(ids.error()));
  std::vector<std::string> names = json::get_strings(input, "GroupNames");
  auto filters =
      read_filters(input, {"group-id", "group-name", "vpc-id", "description", "owner-id"});
  if (!filters) return reply(std::unexpected(filters.error()));

  auto lock = read_lock(context.region);
  const RegionState& region = *state_.find_region(context.region);
  // GroupNames name groups of the default VPC; they join the ids.
  for (const auto& name : names) {
    const SecurityGroup* group = find_security_group(region, default_vpc(region)->id, name);
    if (group == nullptr) return reply(name_not_found(name, default_vpc(region)->id));
    ids->push_back(group->id);
  }
  auto groups = select(
      region.security_groups, *ids, *filters, group_not_found,
      [&](const SecurityGroup& group, const std::string& name) -> std::vector<std::string> {
        if (name == "group-id") return {group.id};
        if (name == "group-name") return {group.name};
        if (name == "vpc-id") return {group.vpc_id};
        if (name == "description") return {group.description};
        return {context.account_id};  // owner-id
      },
      [&](const SecurityGroup& group) {
        return security_group_to_wire(group, context.region, context.account_id);
      });
  if (!groups) return reply(std::unexpected(groups.error()));
  reply(bj::object{{"SecurityGroups", std::move(*groups)}});
}

void Ec2Api::delete_security_group(const Context& context, const Input& input, Reply reply) {
  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  auto target = target_group(region, input);
  if (!target) return reply(std::unexpected(target.error()));
  const SecurityGroup& group = **target;
  if (group.name == kDefaultGroupName) {
    return reply(fail_as(ErrorCode::kInvalidParameter, "CannotDelete",
                         "The default security group " + group.id + " of VPC '" + group.vpc_id +
                             "' cannot be deleted; revoke its rules instead if it should allow "
                             "nothing."));
  }
  for (const auto& [id, other] : region.security_groups) {
    if (id == group.id || !references_group(other, group.id)) continue;
    return reply(dependency("resource " + group.id + " has a dependent object: security group " +
                            id + " (" + other.name +
                            ") refers to it in a rule; revoke that rule first."));
  }
  if (security_group_in_use(region, group.id)) {
    return reply(dependency("resource " + group.id +
                            " has a dependent object: a task's network interface uses it; stop "
                            "the task (and let it stop) first."));
  }
  bj::object output{{"Return", true}, {"GroupId", group.id}};
  auto mutation = EcsState::remove(context.region, group);
  region.security_groups.erase(group.id);
  commit_then_reply(context.region, region, {std::move(mutation)}, std::move(output), true,
                    std::move(reply));
}

void Ec2Api::create_subnet(const Context& context, const Input& input, Reply reply) {
  auto vpc_id = json::get_string(input, "VpcId");
  if (!vpc_id) return reply(missing("VpcId"));
  auto cidr_text = json::get_string(input, "CidrBlock");
  if (!cidr_text) {
    return reply(missing("CidrBlock", "Give the subnet's IPv4 block, e.g. 172.31.16.0/20."));
  }
  for (std::string_view unsupported : {"Ipv6CidrBlock", "Ipv4IpamPoolId", "Ipv6IpamPoolId",
                                       "Ipv4NetmaskLength", "Ipv6NetmaskLength", "OutpostArn"}) {
    if (present(input, unsupported)) {
      return reply(bad_value("Wharf subnets take an explicit IPv4 CidrBlock only; leave out " +
                             std::string(unsupported) + "."));
    }
  }
  if (json::get_bool(input, "Ipv6Native").value_or(false)) {
    return reply(bad_value("Wharf has no IPv6-only subnets; leave out Ipv6Native."));
  }
  auto cidr = parse_ipv4_cidr(*cidr_text);
  if (!cidr) {
    return reply(bad_value("Value (" + *cidr_text +
                           ") for parameter cidrBlock is invalid: write an IPv4 network as "
                           "A.B.C.D/N, e.g. 172.31.16.0/20."));
  }
  if (!cidr->is_network()) {
    return reply(bad_value("Value (" + *cidr_text +
                           ") for parameter cidrBlock has host bits set: use " + cidr->str() +
                           "."));
  }
  if (cidr->prefix_length < 16 || cidr->prefix_length > 28) {
    return reply(fail_as(
        ErrorCode::kInvalidParameter, "InvalidSubnet.Range",
        "The CIDR '" + *cidr_text + "' is invalid: a subnet's block must be between /16 and /28."));
  }
  auto tags = read_tag_specifications(input, "subnet");
  if (!tags) return reply(std::unexpected(tags.error()));
  std::string zone = json::string_or(input, "AvailabilityZone", context.region + "a");
  bool zone_ok = zone.size() == context.region.size() + 1 && zone.starts_with(context.region) &&
                 zone.back() >= 'a' && zone.back() <= 'z';
  if (!zone_ok) {
    return reply(bad_value(
        "Value (" + zone + ") for parameter availabilityZone is invalid: zones of region " +
        context.region + " are its name and a letter, e.g. " + context.region + "a."));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  auto vpc = region.vpcs.find(*vpc_id);
  if (vpc == region.vpcs.end()) return reply(vpc_not_found(*vpc_id));
  auto vpc_cidr = parse_ipv4_cidr(vpc->second.cidr_block);
  if (!vpc_cidr || !vpc_cidr->contains(*cidr)) {
    return reply(fail_as(ErrorCode::kInvalidParameter, "InvalidSubnet.Range",
                         "The CIDR '" + *cidr_text + "' is not within the block of VPC '" +
                             *vpc_id + "' (" + vpc->second.cidr_block +
                             "); choose a block inside it."));
  }
  for (const auto& [id, other] : region.subnets) {
    auto other_cidr = parse_ipv4_cidr(other.cidr_block);
    if (other.vpc_id != *vpc_id || !other_cidr || !other_cidr->overlaps(*cidr)) continue;
    return reply(fail_as(ErrorCode::kInvalidParameter, "InvalidSubnet.Conflict",
                         "The CIDR '" + *cidr_text + "' conflicts with subnet " + id + " (" +
                             other.cidr_block +
                             "); choose a block that overlaps no other subnet of the VPC."));
  }
  Subnet subnet{new_ec2_id("subnet"), *vpc_id, cidr->str(), zone, false, std::move(*tags)};
  bj::object output{{"Subnet", subnet_to_wire(subnet, context.region, context.account_id,
                                              available_address_count(region, subnet))}};
  auto mutation = EcsState::put(context.region, subnet);
  region.subnets[subnet.id] = std::move(subnet);
  commit_then_reply(context.region, region, {std::move(mutation)}, std::move(output), false,
                    std::move(reply));
}

void Ec2Api::describe_subnets(const Context& context, const Input& input, Reply reply) {
  auto ids = read_ids(input, "SubnetIds", "subnet", "InvalidSubnetID.Malformed");
  if (!ids) return reply(std::unexpected(ids.error()));
  auto filters = read_filters(input, {"subnet-id", "vpc-id", "cidr-block", "cidr", "cidrBlock",
                                      "availability-zone", "availabilityZone", "default-for-az",
                                      "defaultForAz", "state", "owner-id", "subnet-arn"});
  if (!filters) return reply(std::unexpected(filters.error()));

  auto lock = read_lock(context.region);
  const RegionState& region = *state_.find_region(context.region);
  auto to_wire = [&](const Subnet& subnet) {
    return subnet_to_wire(subnet, context.region, context.account_id,
                          available_address_count(region, subnet));
  };
  auto subnets = select(
      region.subnets, *ids, *filters, subnet_not_found,
      [&](const Subnet& subnet, const std::string& name) -> std::vector<std::string> {
        if (name == "subnet-id") return {subnet.id};
        if (name == "vpc-id") return {subnet.vpc_id};
        if (name == "cidr-block" || name == "cidr" || name == "cidrBlock") {
          return {subnet.cidr_block};
        }
        if (name == "availability-zone" || name == "availabilityZone") {
          return {subnet.availability_zone};
        }
        if (name == "default-for-az" || name == "defaultForAz") {
          return {bool_text(subnet.default_for_az)};
        }
        if (name == "state") return {"available"};
        if (name == "subnet-arn") return {std::string(to_wire(subnet)["SubnetArn"].as_string())};
        return {context.account_id};  // owner-id
      },
      to_wire);
  if (!subnets) return reply(std::unexpected(subnets.error()));
  reply(bj::object{{"Subnets", std::move(*subnets)}});
}

void Ec2Api::delete_subnet(const Context& context, const Input& input, Reply reply) {
  auto id = json::get_string(input, "SubnetId");
  if (!id) return reply(missing("SubnetId"));
  if (auto status = check_id(*id, "subnet", "InvalidSubnetID.Malformed"); !status) {
    return reply(std::unexpected(status.error()));
  }
  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  auto subnet = region.subnets.find(*id);
  if (subnet == region.subnets.end()) return reply(subnet_not_found(*id));
  if (subnet_in_use(region, *id)) {
    return reply(dependency("The subnet '" + *id +
                            "' has dependencies and cannot be deleted: a task's network interface "
                            "is in it; stop the task (and let it stop) first."));
  }
  auto mutation = EcsState::remove(context.region, subnet->second);
  region.subnets.erase(subnet);
  commit_then_reply(context.region, region, {std::move(mutation)}, bj::object{}, false,
                    std::move(reply));
}

void Ec2Api::describe_vpcs(const Context& context, const Input& input, Reply reply) {
  auto ids = read_ids(input, "VpcIds", "vpc", "InvalidVpcID.Malformed");
  if (!ids) return reply(std::unexpected(ids.error()));
  auto filters = read_filters(input, {"vpc-id", "is-default", "isDefault", "cidr", "cidr-block",
                                      "cidr-block-association.cidr-block", "state", "owner-id"});
  if (!filters) return reply(std::unexpected(filters.error()));

  auto lock = read_lock(context.region);
  const RegionState& region = *state_.find_region(context.region);
  auto vpcs = select(
      region.vpcs, *ids, *filters, vpc_not_found,
      [&](const Vpc& vpc, const std::string& name) -> std::vector<std::string> {
        if (name == "vpc-id") return {vpc.id};
        if (name == "is-default" || name == "isDefault") return {bool_text(vpc.is_default)};
        if (name == "state") return {"available"};
        if (name == "owner-id") return {context.account_id};
        return {vpc.cidr_block};  // the cidr filters
      },
      [&](const Vpc& vpc) { return vpc_to_wire(vpc, context.region, context.account_id); });
  if (!vpcs) return reply(std::unexpected(vpcs.error()));
  reply(bj::object{{"Vpcs", std::move(*vpcs)}});
}

void Ec2Api::create_tags(const Context& context, const Input& input, Reply reply) {
  std::vector<std::string> ids = json::get_strings(input, "Resources");
  if (ids.empty()) return reply(missing("ResourceId", "Name the resources to tag."));
  const auto* list = json::get_array(input, "Tags");
  Tags tags = list != nullptr ? read_tag_list(*list) : Tags{};
  if (tags.empty()) return reply(missing("Tag", "Give the tags to add as Key and Value."));
  if (auto status = validate_ec2_tags(tags); !status) {
    return reply(std::unexpected(status.error()));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  std::vector<Tagged> resources;
  for (const auto& id : ids) {
    auto resource = find_tagged(region, id);
    if (!resource) return reply(std::unexpected(resource.error()));
    Tags merged = *resource->tags;
    merge_tags(merged, tags);
    if (auto status = validate_ec2_tags(merged); !status) {
      return reply(std::unexpected(status.error().context(id)));
    }
    resources.push_back(*resource);
  }
  std::vector<store::Mutation> mutations;
  for (const auto& resource : resources) {
    merge_tags(*resource.tags, tags);
    mutations.push_back(put_tagged(context.region, region, resource.id));
  }
  commit_then_reply(context.region, region, std::move(mutations), bj::object{}, false,
                    std::move(reply));
}

void Ec2Api::delete_tags(const Context& context, const Input& input, Reply reply) {
  std::vector<std::string> ids = json::get_strings(input, "Resources");
  if (ids.empty()) return reply(missing("ResourceId", "Name the resources to untag."));
  // Key → the value to delete it at, or nullopt for any value; no Tags at all deletes every tag.
  std::vector<std::pair<std::string, std::optional<std::string>>> removals;
  const auto* list = json::get_array(input, "Tags");
  if (list != nullptr) {
    for (const auto& item : *list) {
      if (!item.is_object()) continue;
      removals.emplace_back(json::string_or(item.as_object(), "Key", ""),
                            json::get_string(item.as_object(), "Value"));
    }
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = write_region(context.region);
  std::vector<Tagged> resources;
  for (const auto& id : ids) {
    auto resource = find_tagged(region, id);
    if (!resource) return reply(std::unexpected(resource.error()));
    resources.push_back(*resource);
  }
  std::vector<store::Mutation> mutations;
  for (const auto& resource : resources) {
    if (list == nullptr) resource.tags->clear();
    for (const auto& [key, value] : removals) {
      std::erase_if(*resource.tags, [&](const auto& tag) {
        return tag.first == key && (!value || tag.second == *value);
      });
    }
    mutations.push_back(put_tagged(context.region, region, resource.id));
  }
  commit_then_reply(context.region, region, std::move(mutations), bj::object{}, false,
                    std::move(reply));
}

}  // namespace wharf::ecs
