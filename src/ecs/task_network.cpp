// awsvpc tasks on the control plane: networkConfiguration checked against the region's subnets
// and security groups, an address and an ENI attachment per task, and the ingress rules each
// agent enforces (security groups flattened, source groups expanded to their members' addresses).
#include <algorithm>
#include <mutex>
#include <set>

#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/task_launch.hpp"
#include "ecs/vpc.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr std::size_t kMaxSubnets = 16;
constexpr std::size_t kMaxSecurityGroups = 5;

Result<std::vector<std::string>> string_list(const bj::object& object, std::string_view key) {
  std::vector<std::string> out;
  const auto* value = json::member(object, key);
  if (value == nullptr) return out;
  if (!value->is_array()) return invalid(std::string(key) + " must be a list of strings.");
  for (const auto& item : value->as_array()) {
    if (!item.is_string() || item.as_string().empty()) {
      return invalid(std::string(key) + " must be a list of non-empty strings.");
    }
    out.emplace_back(item.as_string());
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A subnet or group named twice counts once (its free addresses too).
std::vector<std::string> unique_in_order(std::vector<std::string> items) {
  std::vector<std::string> out;
  for (auto& item : items) {
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(std::move(item));
  }
  return out;
}

// The subnet's addresses AWS lets ENIs have: all but the first four and the last.
struct AddressRange {
  uint32_t first = 0;
  uint32_t last = 0;  // inclusive; last < first when there is none
};

AddressRange usable_addresses(const Ipv4Cidr& cidr) {
  uint32_t network = cidr.network();
  uint32_t broadcast = network + static_cast<uint32_t>(cidr.size() - 1);
  if (cidr.size() <= 5) return {1, 0};
  return {network + 4, broadcast - 1};
}

// 0e:xx:xx:xx:xx:xx, a locally administered unicast address.
std::string random_mac() {
  auto bytes = random_bytes(5);
  std::string hex = to_hex(bytes);
  std::string mac = "0e";
  for (std::size_t at = 0; at < hex.size(); at += 2) mac += ":" + hex.substr(at, 2);
  return mac;
}

std::string dns_name(std::string address, std::string_view region) {
  std::replace(address.begin(), address.end(), '.', '-');
  return "ip-" + address + "." + std::string(region) + ".compute.internal";
}

}  // namespace

Result<AwsvpcConfiguration> read_awsvpc_configuration(const bj::object& network) {
  const auto* awsvpc = json::get_object(network, "awsvpcConfiguration");
  if (awsvpc == nullptr) {
    return invalid(
        "networkConfiguration needs an awsvpcConfiguration with the subnets (and security "
        "groups) of the task's network interface.");
  }
  AwsvpcConfiguration out;
  auto subnets = string_list(*awsvpc, "subnets");
  if (!subnets) return std::unexpected(subnets.error());
  out.subnets = unique_in_order(std::move(*subnets));
  if (out.subnets.empty()) return invalid("subnets can not be empty.");
  if (out.subnets.size() > kMaxSubnets) {
    return invalid("subnets can have at most " + std::to_string(kMaxSubnets) + " items.");
  }
  auto groups = string_list(*awsvpc, "securityGroups");
  if (!groups) return std::unexpected(groups.error());
  out.security_groups = unique_in_order(std::move(*groups));
  if (out.security_groups.size() > kMaxSecurityGroups) {
    return invalid("securityGroups can have at most " + std::to_string(kMaxSecurityGroups) +
                   " items.");
  }
  std::string assign = json::string_or(*awsvpc, "assignPublicIp", "DISABLED");
  if (assign == "ENABLED") {
    return invalid(
        "Assign public IP is not supported for this launch type. Leave assignPublicIp "
        "DISABLED: awsvpc tasks on EC2 instances reach out through the host's NAT.");
  }
  if (assign != "DISABLED") return invalid("assignPublicIp must be ENABLED or DISABLED.");
  return out;
}

Status EcsApi::check_awsvpc(const Context& context, RegionState& region, TaskLaunch& launch,
                            int64_t count) const {
  if (!launch.awsvpc) return {};
  ensure_default_network(region, context.region);
  AwsvpcConfiguration& config = *launch.awsvpc;
  std::string vpc_id;
  int64_t free = 0;
  for (const auto& id : config.subnets) {
    auto subnet = region.subnets.find(id);
    if (subnet == region.subnets.end()) {
      return invalid("Error retrieving subnet information for [" + id + "]: The subnet ID '" + id +
                     "' does not exist (ErrorCode: InvalidSubnetID.NotFound). List them " +
                     "with `aws ec2 describe-subnets`.");
    }
    if (!vpc_id.empty() && subnet->second.vpc_id != vpc_id) {
      return invalid("The subnets [" + joined(config.subnets) +
                     "] are in different VPCs; an ENI's subnets must all be in one VPC.");
    }
    vpc_id = subnet->second.vpc_id;
    free += available_address_count(region, subnet->second);
  }
  if (config.security_groups.empty()) {
    if (const SecurityGroup* group = find_security_group(region, vpc_id, kDefaultGroupName)) {
      config.security_groups.push_back(group->id);
    }
  }
  for (const auto& id : config.security_groups) {
    auto group = region.security_groups.find(id);
    if (group == region.security_groups.end()) {
      return invalid("Error retrieving security group information for [" + id +
                     "]: The security group '" + id +
                     "' does not exist (ErrorCode: InvalidGroup.NotFound). List them with `aws "
                     "ec2 describe-security-groups`.");
    }
    if (group->second.vpc_id != vpc_id) {
      return invalid("Security group " + id + " is in VPC " + group->second.vpc_id +
                     ", not in the subnets' VPC " + vpc_id + ".");
    }
  }
  if (free < count) {
    return invalid("The subnets [" + joined(config.subnets) + "] have " + std::to_string(free) +
                   " free IPv4 address(es), fewer than the " + std::to_string(count) +
                   " task(s) asked for. Stop awsvpc tasks that use them, or add a subnet with " +
                   "`aws ec2 create-subnet` and name it in awsvpcConfiguration.");
  }
  return {};
}

Result<EniAttachment> EcsApi::new_eni(const Context& context, const RegionState& region,
                                      const TaskLaunch& launch) const {
  const AwsvpcConfiguration& config = *launch.awsvpc;
  // The lowest free address of the first subnet that has one, as EC2 hands them out.
  for (const auto& id : config.subnets) {
    auto subnet = region.subnets.find(id);
    if (subnet == region.subnets.end()) continue;
    auto cidr = parse_ipv4_cidr(subnet->second.cidr_block);
    if (!cidr) continue;
    AddressRange range = usable_addresses(*cidr);
    std::set<uint32_t> used = addresses_in_use(region, id);
    for (uint64_t address = range.first; address <= range.last; ++address) {
      if (used.contains(static_cast<uint32_t>(address))) continue;
      EniAttachment eni;
      eni.id = new_uuid();
      eni.network_interface_id = new_ec2_id("eni");
      eni.subnet_id = id;
      eni.private_ipv4 = ipv4_to_string(static_cast<uint32_t>(address));
      eni.mac = random_mac();
      eni.private_dns_name = dns_name(eni.private_ipv4, context.region);
      eni.security_group_ids = config.security_groups;
      return eni;
    }
  }
  return invalid("The subnets [" + joined(config.subnets) +
                 "] have no free IPv4 address left. Stop awsvpc tasks that use them, or add a " +
                 "subnet with `aws ec2 create-subnet`.");
}

bj::object EcsApi::eni_assignment(const RegionState& region, const Task& task,
                                  std::set<std::string>& source_groups) const {
  const EniAttachment& eni = *task.eni;
  // Rules name source groups; the agent keeps each group's members in a set of its own, so a
  // task joining a group changes that set, not the rules of every task that admits the group.
  bj::array ingress;
  for (const auto& group_id : eni.security_group_ids) {
    auto group = region.security_groups.find(group_id);
    if (group == region.security_groups.end()) continue;
    for (const auto& permission : group->second.ingress) {
      bj::array sources;
      for (const auto& cidr : permission.cidr_ipv4) sources.emplace_back(cidr);
      bj::array groups;
      for (const auto& source : permission.source_group_ids) {
        if (!region.security_groups.contains(source)) continue;
        groups.emplace_back(source);
        source_groups.insert(source);
      }
      if (sources.empty() && groups.empty()) continue;
      bj::object rule{{"protocol", permission.ip_protocol == "-1" ? "all" : permission.ip_protocol},
                      {"sources", std::move(sources)},
                      {"sourceGroups", std::move(groups)}};
      if (permission.ip_protocol == "tcp" || permission.ip_protocol == "udp") {
        rule["fromPort"] = permission.from_port;
        rule["toPort"] = permission.to_port;
      } else if (permission.ip_protocol == "icmp") {
        // EC2 keeps an ICMP rule's type in FromPort and its code in ToPort (-1: any).
        if (permission.from_port >= 0) rule["icmpType"] = permission.from_port;
        if (permission.from_port >= 0 && permission.to_port >= 0) {
          rule["icmpCode"] = permission.to_port;
        }
      }
      ingress.push_back(std::move(rule));
    }
  }
  std::string cidr_block;
  std::string gateway;
  if (auto subnet = region.subnets.find(eni.subnet_id); subnet != region.subnets.end()) {
    cidr_block = subnet->second.cidr_block;
    if (auto cidr = parse_ipv4_cidr(cidr_block)) gateway = ipv4_to_string(cidr->network() + 1);
  }
  // arn:aws:ecs:REGION:ACCOUNT:task/… → arn:aws:ecs:REGION:ACCOUNT:attachment/ID
  std::string prefix = task.arn.substr(0, task.arn.find(":task/"));
  return bj::object{{"attachmentArn", prefix + ":attachment/" + eni.id},
                    {"privateIpv4Address", eni.private_ipv4},
                    {"macAddress", eni.mac},
                    {"subnetCidrBlock", cidr_block},
                    {"subnetGatewayIpv4Address", gateway},
                    {"privateDnsName", eni.private_dns_name},
                    {"ingress", std::move(ingress)}};
}

void EcsApi::detach_eni(Task& task, TaskChanges& changes) const {
  if (!task.eni || task.eni->status == "DETACHED") return;
  task.eni->status = "DETACHED";
  note_membership_change(changes);  // its address left its groups
}

void EcsApi::add_awsvpc_instances(RegionState& region,
                                  std::set<ContainerInstance*>& instances) const {
  for_each_eni_in_use(region, [&](const Task& task) {
    if (is_stopped(task)) return;
    ContainerInstance* instance = instance_of(region, task);
    if (instance != nullptr && instance->status != "INACTIVE") instances.insert(instance);
  });
}

void EcsApi::security_groups_changed(const std::string& region_name) {
  std::vector<Publication> publications;
  {
    std::unique_lock lock(state_.mutex());
    RegionState& region = state_.region(region_name);
    std::set<ContainerInstance*> instances;
    add_awsvpc_instances(region, instances);
    publications = stage_assignments(region, instances);
  }
  if (publications.empty()) return;
  // An empty commit is durable after every commit queued before it: agents never see a change
  // staged by another request before the store has it.
  state_.persist({}, [this, publications = std::move(publications)](Status) mutable {
    publish_assignments(std::move(publications));
  });
}

}  // namespace wharf::ecs
