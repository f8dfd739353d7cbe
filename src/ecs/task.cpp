// The Task codec: one wire shape (DescribeTasks) and the stored form, which is the wire shape
// plus what only the server needs.
#include "ecs/task.hpp"

#include <algorithm>
#include <array>

#include "common/json.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr std::array<std::string_view, 8> kTaskStatuses = {
    "PROVISIONING", "PENDING",  "ACTIVATING",     "RUNNING",
    "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"};
constexpr std::array<std::string_view, 3> kContainerStatuses = {"PENDING", "RUNNING", "STOPPED"};

template <size_t N>
int rank_in(const std::array<std::string_view, N>& order, std::string_view status) {
  auto found = std::find(order.begin(), order.end(), status);
  return found == order.end() ? -1 : static_cast<int>(found - order.begin());
}

void put_time(bj::object& out, std::string_view key, const std::optional<TimePoint>& time) {
  if (time) out[key] = epoch_seconds(*time);
}

std::optional<TimePoint> get_time(const bj::object& object, std::string_view key) {
  const auto* value = json::member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return from_epoch_seconds(value->to_number<double>());
}

void put_string(bj::object& out, std::string_view key, const std::string& value) {
  if (!value.empty()) out[key] = value;
}

bj::object container_to_wire(const Task& task, const TaskContainer& container) {
  bj::object out{{"containerArn", container.arn},
                 {"taskArn", task.arn},
                 {"name", container.name},
                 {"image", container.image},
                 {"lastStatus", container.last_status},
                 {"networkBindings", container.network_bindings},
                 {"networkInterfaces",
                  task.eni ? bj::array{bj::object{{"attachmentId", task.eni->id},
                                                  {"privateIpv4Address", task.eni->private_ipv4}}}
                           : bj::array{}},
                 {"healthStatus", container.health_status},
                 {"cpu", container.cpu}};
  put_string(out, "imageDigest", container.image_digest);
  put_string(out, "runtimeId", container.runtime_id);
  if (container.exit_code) out["exitCode"] = *container.exit_code;
  put_string(out, "reason", container.reason);
  put_string(out, "memory", container.memory);
  put_string(out, "memoryReservation", container.memory_reservation);
  return out;
}

TaskContainer container_from_store(const bj::object& stored) {
  TaskContainer container;
  container.arn = json::string_or(stored, "containerArn", "");
  container.name = json::string_or(stored, "name", "");
  container.image = json::string_or(stored, "image", "");
  container.image_digest = json::string_or(stored, "imageDigest", "");
  container.runtime_id = json::string_or(stored, "runtimeId", "");
  container.last_status = json::string_or(stored, "lastStatus", "PENDING");
  container.exit_code = json::get_int(stored, "exitCode");
  container.reason = json::string_or(stored, "reason", "");
  if (const auto* bindings = json::get_array(stored, "networkBindings")) {
    container.network_bindings = *bindings;
  }
  container.health_status = json::string_or(stored, "healthStatus", "UNKNOWN");
  container.cpu = json::string_or(stored, "cpu", "0");
  container.memory = json::string_or(stored, "memory", "");
  container.memory_reservation = json::string_or(stored, "memoryReservation", "");
  return container;
}

bj::array ports_to_json(const std::vector<uint16_t>& ports) {
  bj::array out;
  for (uint16_t port : ports) out.push_back(port);
  return out;
}

std::vector<uint16_t> ports_from_json(const bj::array* ports) {
  std::vector<uint16_t> out;
  if (ports == nullptr) return out;
  for (const auto& port : *ports) {
    if (port.is_int64() && port.as_int64() > 0 && port.as_int64() <= 65535) {
      out.push_back(static_cast<uint16_t>(port.as_int64()));
    }
  }
  return out;
}

bj::object reservation_to_store(const TaskReservation& reserved) {
  return bj::object{{"cpu", reserved.cpu},
                    {"memory", reserved.memory},
                    {"tcpPorts", ports_to_json(reserved.tcp_ports)},
                    {"udpPorts", ports_to_json(reserved.udp_ports)}};
}

TaskReservation reservation_from_store(const bj::object* stored) {
  TaskReservation reserved;
  if (stored == nullptr) return reserved;
  reserved.cpu = json::get_int(*stored, "cpu").value_or(0);
  reserved.memory = json::get_int(*stored, "memory").value_or(0);
  reserved.tcp_ports = ports_from_json(json::get_array(*stored, "tcpPorts"));
  reserved.udp_ports = ports_from_json(json::get_array(*stored, "udpPorts"));
  return reserved;
}

Resource& resource_named(std::vector<Resource>& resources, std::string_view name,
                         std::string_view type) {
  for (auto& resource : resources) {
    if (resource.name == name) return resource;
  }
  Resource added;
  added.name = name;
  added.type = type;
  resources.push_back(std::move(added));
  return resources.back();
}

void adjust_ports(std::vector<Resource>& resources, std::string_view name,
                  const std::vector<uint16_t>& ports, bool take) {
  if (ports.empty()) return;
  auto& set = resource_named(resources, name, "STRINGSET").string_set_value;
  for (uint16_t port : ports) {
    std::string text = std::to_string(port);
    auto found = std::find(set.begin(), set.end(), text);
    if (take && found == set.end()) set.push_back(std::move(text));
    if (!take && found != set.end()) set.erase(found);
  }
}

void adjust(ContainerInstance& instance, const TaskReservation& reserved, bool take) {
  int64_t sign = take ? -1 : 1;
  resource_named(instance.remaining_resources, "CPU", "INTEGER").integer_value +=
      sign * reserved.cpu;
  resource_named(instance.remaining_resources, "MEMORY", "INTEGER").integer_value +=
      sign * reserved.memory;
  adjust_ports(instance.remaining_resources, "PORTS", reserved.tcp_ports, take);
  adjust_ports(instance.remaining_resources, "PORTS_UDP", reserved.udp_ports, take);
}

}  // namespace

namespace {

// The host ports of a NetworkBinding: hostPort, or hostPortRange ("49153-49155"); {0, -1} when
// it names none.
std::pair<int64_t, int64_t> host_ports_of(const bj::object& binding) {
  if (auto port = json::get_int(binding, "hostPort")) return {*port, *port};
  std::string range = json::string_or(binding, "hostPortRange", "");
  auto dash = range.find('-');
  if (dash == std::string::npos) return {0, -1};
  return {std::strtoll(range.substr(0, dash).c_str(), nullptr, 10),
          std::strtoll(range.substr(dash + 1).c_str(), nullptr, 10)};
}

}  // namespace

TaskReservation unreserved_bindings(const Task& task) {
  TaskReservation extra;
  for (const auto& container : task.containers) {
    for (const auto& binding : container.network_bindings) {
      if (!binding.is_object()) continue;
      bool udp = json::string_or(binding.as_object(), "protocol", "tcp") == "udp";
      const auto& held = udp ? task.reserved.udp_ports : task.reserved.tcp_ports;
      auto& added = udp ? extra.udp_ports : extra.tcp_ports;
      auto [low, high] = host_ports_of(binding.as_object());
      for (int64_t port = low; port >= 1 && port <= high && port <= 65535; ++port) {
        auto value = static_cast<uint16_t>(port);
        if (std::ranges::find(held, value) == held.end() &&
            std::ranges::find(added, value) == added.end()) {
          added.push_back(value);
        }
      }
    }
  }
  return extra;
}

void reserve_on(ContainerInstance& instance, const TaskReservation& reserved) {
  adjust(instance, reserved, true);
}

void release_from(ContainerInstance& instance, const TaskReservation& reserved) {
  adjust(instance, reserved, false);
}

int task_status_rank(std::string_view status) {
  return rank_in(kTaskStatuses, status);
}

int container_status_rank(std::string_view status) {
  return rank_in(kContainerStatuses, status);
}

bool is_stopped(const Task& task) {
  return task.last_status == "STOPPED";
}

bool is_pending(const Task& task) {
  return task.desired_status == "RUNNING" &&
         task_status_rank(task.last_status) < task_status_rank("RUNNING");
}

bool is_running(const Task& task) {
  return task.last_status == "RUNNING";
}

namespace {

bj::object eni_attachment_to_wire(const EniAttachment& eni) {
  bj::array details;
  for (auto [name, value] :
       {std::pair{"subnetId", &eni.subnet_id},
        std::pair{"networkInterfaceId", &eni.network_interface_id},
        std::pair{"macAddress", &eni.mac}, std::pair{"privateDnsName", &eni.private_dns_name},
        std::pair{"privateIPv4Address", &eni.private_ipv4}}) {
    details.push_back(bj::object{{"name", name}, {"value", *value}});
  }
  return bj::object{{"id", eni.id},
                    {"type", "ElasticNetworkInterface"},
                    {"status", eni.status},
                    {"details", std::move(details)}};
}

std::optional<EniAttachment> eni_from_store(const bj::object* stored) {
  if (stored == nullptr) return std::nullopt;
  EniAttachment eni;
  eni.id = json::string_or(*stored, "id", "");
  eni.status = json::string_or(*stored, "status", "PRECREATED");
  eni.network_interface_id = json::string_or(*stored, "networkInterfaceId", "");
  eni.subnet_id = json::string_or(*stored, "subnetId", "");
  eni.private_ipv4 = json::string_or(*stored, "privateIPv4Address", "");
  eni.mac = json::string_or(*stored, "macAddress", "");
  eni.private_dns_name = json::string_or(*stored, "privateDnsName", "");
  eni.security_group_ids = json::get_strings(*stored, "securityGroups");
  return eni;
}

bj::object eni_to_store(const EniAttachment& eni) {
  return bj::object{{"id", eni.id},
                    {"status", eni.status},
                    {"networkInterfaceId", eni.network_interface_id},
                    {"subnetId", eni.subnet_id},
                    {"privateIPv4Address", eni.private_ipv4},
                    {"macAddress", eni.mac},
                    {"privateDnsName", eni.private_dns_name},
                    {"securityGroups", json::strings_array(eni.security_group_ids)}};
}

}  // namespace

bj::object task_to_wire(const Task& task, bool include_tags) {
  bj::array containers;
  for (const auto& container : task.containers) {
    containers.push_back(container_to_wire(task, container));
  }
  bj::array attributes;
  for (const auto& attribute : task.attributes) {
    attributes.push_back(attribute_to_json(attribute));
  }
  bj::array attachments;
  if (task.eni) attachments.push_back(eni_attachment_to_wire(*task.eni));
  bj::object out{{"attachments", std::move(attachments)},
                 {"attributes", std::move(attributes)},
                 {"clusterArn", task.cluster_arn},
                 {"connectivity", task.connectivity},
                 {"containerInstanceArn", task.container_instance_arn},
                 {"containers", std::move(containers)},
                 {"createdAt", epoch_seconds(task.created_at)},
                 {"desiredStatus", task.desired_status},
                 {"enableExecuteCommand", task.enable_execute_command},
                 {"group", task.group},
                 {"healthStatus", task.health_status},
                 {"lastStatus", task.last_status},
                 {"launchType", "EC2"},
                 {"overrides", task.overrides},
                 {"taskArn", task.arn},
                 {"taskDefinitionArn", task.task_definition_arn},
                 {"version", task.version}};
  put_string(out, "availabilityZone", task.availability_zone);
  put_time(out, "connectivityAt", task.connectivity_at);
  put_string(out, "cpu", task.cpu);
  put_string(out, "memory", task.memory);
  put_time(out, "pullStartedAt", task.pull_started_at);
  put_time(out, "pullStoppedAt", task.pull_stopped_at);
  put_time(out, "startedAt", task.started_at);
  put_string(out, "startedBy", task.started_by);
  put_string(out, "stopCode", task.stop_code);
  put_time(out, "stoppingAt", task.stopping_at);
  put_time(out, "executionStoppedAt", task.execution_stopped_at);
  put_time(out, "stoppedAt", task.stopped_at);
  put_string(out, "stoppedReason", task.stopped_reason);
  if (include_tags) out["tags"] = tags_to_json(task.tags);
  return out;
}

bj::object task_to_store(const Task& task) {
  bj::object out = task_to_wire(task, true);
  out["id"] = task.id;
  out["cluster"] = task.cluster;
  out["family"] = task.family;
  out["revision"] = task.revision;
  out["containerInstanceId"] = task.container_instance_id;
  out["reserved"] = reservation_to_store(task.reserved);
  put_string(out, "referenceId", task.reference_id);
  put_string(out, "clientToken", task.client_token);
  put_string(out, "clientPrincipal", task.client_principal);
  if (task.eni) out["eni"] = eni_to_store(*task.eni);
  return out;
}

Result<Task> task_from_store(bj::object stored) {
  auto id = json::get_string(stored, "id");
  auto arn = json::get_string(stored, "taskArn");
  auto cluster = json::get_string(stored, "cluster");
  auto created_at = get_time(stored, "createdAt");
  if (!id || !arn || !cluster || !created_at) {
    return fail(ErrorCode::kInternal, "stored task is malformed");
  }
  Task task;
  task.id = *id;
  task.arn = *arn;
  task.cluster = *cluster;
  task.cluster_arn = json::string_or(stored, "clusterArn", "");
  task.task_definition_arn = json::string_or(stored, "taskDefinitionArn", "");
  task.family = json::string_or(stored, "family", "");
  task.revision = json::get_int(stored, "revision").value_or(0);
  task.container_instance_id = json::string_or(stored, "containerInstanceId", "");
  task.container_instance_arn = json::string_or(stored, "containerInstanceArn", "");
  if (const auto* overrides = json::get_object(stored, "overrides")) task.overrides = *overrides;
  task.last_status = json::string_or(stored, "lastStatus", "PROVISIONING");
  task.desired_status = json::string_or(stored, "desiredStatus", "RUNNING");
  task.cpu = json::string_or(stored, "cpu", "");
  task.memory = json::string_or(stored, "memory", "");
  task.reserved = reservation_from_store(json::get_object(stored, "reserved"));
  if (const auto* containers = json::get_array(stored, "containers")) {
    for (const auto& container : *containers) {
      if (container.is_object())
        task.containers.push_back(container_from_store(container.as_object()));
    }
  }
  task.started_by = json::string_or(stored, "startedBy", "");
  task.group = json::string_or(stored, "group", "");
  task.version = json::get_int(stored, "version").value_or(1);
  task.stopped_reason = json::string_or(stored, "stoppedReason", "");
  task.stop_code = json::string_or(stored, "stopCode", "");
  task.created_at = *created_at;
  task.pull_started_at = get_time(stored, "pullStartedAt");
  task.pull_stopped_at = get_time(stored, "pullStoppedAt");
  task.started_at = get_time(stored, "startedAt");
  task.stopping_at = get_time(stored, "stoppingAt");
  task.execution_stopped_at = get_time(stored, "executionStoppedAt");
  task.stopped_at = get_time(stored, "stoppedAt");
  task.connectivity_at = get_time(stored, "connectivityAt");
  task.connectivity = json::string_or(stored, "connectivity", "CONNECTED");
  task.availability_zone = json::string_or(stored, "availabilityZone", "");
  if (const auto* attributes = json::get_array(stored, "attributes")) {
    for (const auto& item : *attributes) {
      if (!item.is_object()) continue;
      put_attribute(task.attributes, Attribute{json::string_or(item.as_object(), "name", ""),
                                               json::get_string(item.as_object(), "value")});
    }
  }
  if (const auto* tags = json::get_array(stored, "tags")) task.tags = tags_from_json(*tags);
  task.health_status = json::string_or(stored, "healthStatus", "UNKNOWN");
  task.enable_execute_command = json::get_bool(stored, "enableExecuteCommand").value_or(false);
  task.reference_id = json::string_or(stored, "referenceId", "");
  task.client_token = json::string_or(stored, "clientToken", "");
  task.client_principal = json::string_or(stored, "clientPrincipal", "");
  task.eni = eni_from_store(json::get_object(stored, "eni"));
  return task;
}

}  // namespace wharf::ecs
