// plan_task: overrides checked and applied, resources reserved.
#include "ecs/task_plan.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "common/json.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// A container's effective sizes: its definition's, with the override's on top.
struct ContainerSizes {
  int64_t cpu = 0;
  std::optional<int64_t> memory;
  std::optional<int64_t> memory_reservation;
};

std::optional<int64_t> whole_number(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

Result<std::optional<int64_t>> read_size(const bj::object& object, std::string_view key,
                                         std::string_view where) {
  auto value = json::get_int(object, key);
  if (value && *value < 0) {
    return invalid(std::string(where) + "." + std::string(key) + " cannot be negative.");
  }
  return value;
}

// Task-level cpu or memory: the override (a whole number as a string), else the definition's.
Result<std::string> task_size(const bj::object& definition, const bj::object& overrides,
                              std::string_view key) {
  if (auto text = json::get_string(overrides, key)) {
    if (!whole_number(*text)) {
      return invalid("overrides." + std::string(key) + " must be a whole number of " +
                     (key == "cpu" ? "CPU units" : "MiB") + ", not '" + *text + "'.");
    }
    return *text;
  }
  return json::string_or(definition, key, "");
}

// The containerOverrides by container name, after checking each names a container.
Result<std::vector<const bj::object*>> match_container_overrides(const bj::array& containers,
                                                                 const bj::object& overrides) {
  std::vector<const bj::object*> matched(containers.size(), nullptr);
  const auto* list = json::get_array(overrides, "containerOverrides");
  if (list == nullptr) return matched;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    std::string name = json::string_or(item.as_object(), "name", "");
    auto container = std::find_if(containers.begin(), containers.end(), [&](const auto& entry) {
      return entry.is_object() && json::string_or(entry.as_object(), "name", "") == name;
    });
    if (container == containers.end()) {
      return invalid("Override for container named " + name +
                     " is not a container in the TaskDefinition.");
    }
    matched[container - containers.begin()] = &item.as_object();
  }
  return matched;
}

Result<ContainerSizes> container_sizes(const bj::object& container, const bj::object* overrides) {
  ContainerSizes sizes;
  sizes.cpu = json::get_int(container, "cpu").value_or(0);
  sizes.memory = json::get_int(container, "memory");
  sizes.memory_reservation = json::get_int(container, "memoryReservation");
  if (overrides == nullptr) return sizes;
  std::string where = "containerOverrides[" + json::string_or(*overrides, "name", "") + "]";
  auto cpu = read_size(*overrides, "cpu", where);
  if (!cpu) return std::unexpected(cpu.error());
  auto memory = read_size(*overrides, "memory", where);
  if (!memory) return std::unexpected(memory.error());
  auto reservation = read_size(*overrides, "memoryReservation", where);
  if (!reservation) return std::unexpected(reservation.error());
  if (*cpu) sizes.cpu = **cpu;
  if (*memory) sizes.memory = *memory;
  if (*reservation) sizes.memory_reservation = *reservation;
  if (sizes.memory && sizes.memory_reservation && *sizes.memory < *sizes.memory_reservation) {
    return invalid(where + ": memory (" + std::to_string(*sizes.memory) +
                   " MiB) must not be less than memoryReservation (" +
                   std::to_string(*sizes.memory_reservation) + " MiB).");
  }
  return sizes;
}

// The host ports a container's mappings take on its instance.
void add_host_ports(const bj::object& container, std::string_view network_mode,
                    TaskReservation& reserved) {
  if (network_mode != "host" && network_mode != "bridge" && !network_mode.empty()) return;
  const auto* mappings = json::get_array(container, "portMappings");
  if (mappings == nullptr) return;
  for (const auto& item : *mappings) {
    if (!item.is_object()) continue;
    const auto& mapping = item.as_object();
    int64_t port = network_mode == "host" ? json::get_int(mapping, "containerPort").value_or(0)
                                          : json::get_int(mapping, "hostPort").value_or(0);
    if (port <= 0 || port > 65535) continue;
    auto& ports = json::string_or(mapping, "protocol", "tcp") == "udp" ? reserved.udp_ports
                                                                       : reserved.tcp_ports;
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
      ports.push_back(static_cast<uint16_t>(port));
    }
  }
}

std::string optional_text(const std::optional<int64_t>& value) {
  return value ? std::to_string(*value) : std::string();
}

bj::object normalised_overrides(const bj::object& given, const bj::array& containers,
                                const std::vector<const bj::object*>& matched) {
  bj::object out = given;
  bj::array container_overrides;
  for (size_t container_idx = 0; container_idx < containers.size(); ++container_idx) {
    if (matched[container_idx] != nullptr) {
      container_overrides.push_back(*matched[container_idx]);
      continue;
    }
    container_overrides.push_back(
        bj::object{{"name", json::string_or(containers[container_idx].as_object(), "name", "")}});
  }
  out["containerOverrides"] = std::move(container_overrides);
  if (!json::get_array(out, "inferenceAcceleratorOverrides")) {
    out["inferenceAcceleratorOverrides"] = bj::array{};
  }
  return out;
}

std::vector<scheduler::Attribute> required_attributes(const bj::object& definition) {
  std::vector<scheduler::Attribute> out;
  const auto* list = json::get_array(definition, "requiresAttributes");
  if (list == nullptr) return out;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    out.push_back({json::string_or(item.as_object(), "name", ""),
                   json::get_string(item.as_object(), "value")});
  }
  return out;
}

}  // namespace

Result<TaskPlan> plan_task(const TaskDefinition& definition, const bj::object& overrides) {
  static const bj::array kNoContainers;
  const bj::object& body = definition.body;
  const auto* containers = json::get_array(body, "containerDefinitions");
  if (containers == nullptr) containers = &kNoContainers;
  auto matched = match_container_overrides(*containers, overrides);
  if (!matched) return std::unexpected(matched.error());

  TaskPlan plan;
  auto cpu = task_size(body, overrides, "cpu");
  if (!cpu) return std::unexpected(cpu.error());
  auto memory = task_size(body, overrides, "memory");
  if (!memory) return std::unexpected(memory.error());
  plan.cpu = *cpu;
  plan.memory = *memory;

  std::string network_mode = json::string_or(body, "networkMode", "");
  int64_t containers_cpu = 0;
  int64_t containers_memory = 0;
  for (size_t container_idx = 0; container_idx < containers->size(); ++container_idx) {
    const auto& container = (*containers)[container_idx].as_object();
    auto sizes = container_sizes(container, (*matched)[container_idx]);
    if (!sizes) return std::unexpected(sizes.error());
    containers_cpu += sizes->cpu;
    containers_memory += sizes->memory_reservation.value_or(sizes->memory.value_or(0));
    add_host_ports(container, network_mode, plan.reserved);
    TaskContainer planned;
    planned.name = json::string_or(container, "name", "");
    planned.image = json::string_or(container, "image", "");
    planned.cpu = std::to_string(sizes->cpu);
    planned.memory = optional_text(sizes->memory);
    planned.memory_reservation = optional_text(sizes->memory_reservation);
    plan.containers.push_back(std::move(planned));
  }
  plan.reserved.cpu = plan.cpu.empty() ? containers_cpu : whole_number(plan.cpu).value_or(0);
  plan.reserved.memory =
      plan.memory.empty() ? containers_memory : whole_number(plan.memory).value_or(0);
  plan.overrides = normalised_overrides(overrides, *containers, *matched);
  plan.required_attributes = required_attributes(body);
  return plan;
}

}  // namespace wharf::ecs
