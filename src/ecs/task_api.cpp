// Task operations: RunTask, StartTask, StopTask, DescribeTasks and ListTasks, and the helpers
// every change of a task goes through (persist, free resources, tell the instance's agent).
#include <algorithm>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <tuple>

#include "common/arn.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/task_launch.hpp"
#include "ecs/task_plan.hpp"
#include "ecs/validation.hpp"
#include "scheduler/placement.hpp"
#include "scheduler/placement_policy.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr std::size_t kMaxDescribedTasks = 100;
constexpr int64_t kMaxRunCount = 10;
constexpr std::size_t kMaxStartInstances = 10;
constexpr std::size_t kMaxStopReason = 255;
constexpr std::size_t kMaxClientToken = 64;
constexpr std::size_t kMaxStartedBy = 128;
constexpr std::size_t kMaxGroup = 255;
constexpr std::size_t kMaxReferenceId = 64;
// How long a RunTask clientToken returns the tasks it started rather than starting more.
constexpr auto kClientTokenLifetime = std::chrono::hours(12);
constexpr std::string_view kUserStopReason = "Task stopped by user";

std::string cluster_input(const bj::object& input) {
  return json::string_or(input, "cluster", "default");
}

bj::object failure(std::string arn, std::string_view reason, std::string detail = {}) {
  bj::object out{{"arn", std::move(arn)}, {"reason", reason}};
  if (!detail.empty()) out["detail"] = std::move(detail);
  return out;
}

Status check_length(const std::string& value, std::size_t limit, std::string_view name) {
  if (value.size() <= limit) return {};
  return invalid(std::string(name) + " can be at most " + std::to_string(limit) +
                 " characters long.");
}

std::vector<scheduler::PlacementConstraint> read_constraints(const bj::array* list) {
  std::vector<scheduler::PlacementConstraint> out;
  if (list == nullptr) return out;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    out.push_back({json::string_or(item.as_object(), "type", ""),
                   json::string_or(item.as_object(), "expression", "")});
  }
  return out;
}

std::vector<scheduler::PlacementStrategy> read_strategies(const bj::array* list) {
  std::vector<scheduler::PlacementStrategy> out;
  if (list == nullptr) return out;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    out.push_back({json::string_or(item.as_object(), "type", ""),
                   json::string_or(item.as_object(), "field", "")});
  }
  return out;
}

std::optional<std::string> attribute_value(const ContainerInstance& instance,
                                           std::string_view name) {
  for (const auto& attribute : instance.attributes) {
    if (attribute.name == name) return attribute.value;
  }
  return std::nullopt;
}

}  // namespace

Result<TaskLaunch> EcsApi::read_launch(const Context& /*context*/, const Input& input) const {
  TaskLaunch launch;
  launch.cluster_identifier = cluster_input(input);
  launch.task_definition = json::string_or(input, "taskDefinition", "");
  if (const auto* overrides = json::get_object(input, "overrides")) launch.overrides = *overrides;
  launch.group = json::string_or(input, "group", "");
  launch.started_by = json::string_or(input, "startedBy", "");
  launch.reference_id = json::string_or(input, "referenceId", "");
  launch.client_token = json::string_or(input, "clientToken", "");
  for (auto [value, limit, name] :
       {std::tuple{&launch.group, kMaxGroup, "group"},
        std::tuple{&launch.started_by, kMaxStartedBy, "startedBy"},
        std::tuple{&launch.reference_id, kMaxReferenceId, "referenceId"},
        std::tuple{&launch.client_token, kMaxClientToken, "clientToken"}}) {
    if (auto status = check_length(*value, limit, name); !status) {
      return std::unexpected(status.error());
    }
  }
  if (const auto* tags = json::get_array(input, "tags")) launch.tags = tags_from_json(*tags);
  if (auto status = validate_tags(launch.tags); !status) return std::unexpected(status.error());
  std::string propagate = json::string_or(input, "propagateTags", "NONE");
  if (propagate == "SERVICE") {
    return invalid(
        "propagateTags SERVICE applies to tasks a service starts; use TASK_DEFINITION "
        "or NONE.");
  }
  launch.propagate_definition_tags = propagate == "TASK_DEFINITION";
  if (json::get_bool(input, "enableExecuteCommand").value_or(false)) {
    return invalid("enableExecuteCommand is not supported by Wharf yet; leave it false.");
  }
  if (const auto* network = json::get_object(input, "networkConfiguration")) {
    auto awsvpc = read_awsvpc_configuration(*network);
    if (!awsvpc) return std::unexpected(awsvpc.error());
    launch.awsvpc = std::move(*awsvpc);
  }
  launch.constraints = read_constraints(json::get_array(input, "placementConstraints"));
  launch.strategies = read_strategies(json::get_array(input, "placementStrategy"));
  return launch;
}

namespace {

// Only ACTIVE revisions start tasks; ECS words the refusal so.
Result<const TaskDefinition*> runnable(Result<TaskDefinition*> definition) {
  if (!definition) return std::unexpected(definition.error());
  if ((*definition)->status != "ACTIVE") return client_error("TaskDefinition is inactive");
  return *definition;
}

// Plans the task of `definition` with the launch's overrides, and checks what depends on the
// definition.
Status prepare_launch(const TaskDefinition& definition, TaskLaunch& launch) {
  launch.definition = &definition;
  auto plan = plan_task(definition, launch.overrides);
  if (!plan) return std::unexpected(plan.error());
  launch.plan = std::move(*plan);
  bool awsvpc = json::string_or(definition.body, "networkMode", "") == "awsvpc";
  if (awsvpc && !launch.awsvpc) {
    return invalid(
        "Network Configuration must be provided when networkMode 'awsvpc' is "
        "specified.");
  }
  if (!awsvpc && launch.awsvpc) {
    return invalid(
        "Network Configuration is not valid for the given networkMode of this task "
        "definition.");
  }
  if (launch.propagate_definition_tags) {
    if (auto status = validate_tags(launch.tags, definition.tags); !status) return status;
  }
  return {};
}

}  // namespace

Result<Task*> EcsApi::launch_task(const Context& context, RegionState& region,
                                  const TaskLaunch& launch, ContainerInstance& instance,
                                  TaskChanges& changes) {
  const TaskDefinition& definition = *launch.definition;
  TimePoint now = clock_.now();
  Task task;
  task.id = new_hex_id();
  task.cluster = instance.cluster;
  task.cluster_arn = arn(context, "cluster/" + instance.cluster);
  task.arn = arn(context, "task/" + instance.cluster + "/" + task.id);
  task.task_definition_arn = definition.arn;
  task.family = definition.family;
  task.revision = definition.revision;
  task.container_instance_id = instance.id;
  task.container_instance_arn = instance.arn;
  task.overrides = launch.plan.overrides;
  task.cpu = launch.plan.cpu;
  task.memory = launch.plan.memory;
  task.reserved = launch.plan.reserved;
  task.containers = launch.plan.containers;
  for (auto& container : task.containers) {
    container.arn =
        arn(context, "container/" + instance.cluster + "/" + task.id + "/" + new_uuid());
  }
  task.started_by = launch.started_by;
  task.group = launch.group.empty() ? "family:" + definition.family : launch.group;
  task.version = 0;  // note_task_change makes it 1
  task.created_at = now;
  task.connectivity_at = now;
  task.availability_zone = attribute_value(instance, "ecs.availability-zone").value_or("");
  if (auto architecture = attribute_value(instance, "ecs.cpu-architecture")) {
    task.attributes.push_back({"ecs.cpu-architecture", architecture});
  }
  if (launch.propagate_definition_tags) task.tags = definition.tags;
  merge_tags(task.tags, launch.tags);
  task.reference_id = launch.reference_id;
  task.client_token = launch.client_token;
  task.client_principal = context.principal_arn;
  if (launch.awsvpc) {
    auto eni = new_eni(context, region, launch);
    if (!eni) return std::unexpected(eni.error());
    task.eni = std::move(*eni);
  }
  bool has_eni = task.eni.has_value();

  reserve_on(instance, task.reserved);
  changes.resized.insert(&instance);
  Task& added = region.add_task(std::move(task));
  note_task_change(region, added, changes);
  if (has_eni) note_membership_change(changes);
  return &added;
}

void EcsApi::note_task_change(RegionState& region, Task& task, TaskChanges& changes,
                              bool assignment_changed) const {
  // One version per request, however many fields it changed.
  if (changes.tasks.insert(&task).second) ++task.version;
  if (!assignment_changed) return;  // the agent's own report: it knows, no need to tell it
  ContainerInstance* instance = instance_of(region, task);
  if (instance != nullptr && instance->status != "INACTIVE") changes.reassigned.insert(instance);
}

ContainerInstance* EcsApi::instance_of(RegionState& region, const Task& task) const {
  auto instances = region.container_instances.find(task.cluster);
  if (instances == region.container_instances.end()) return nullptr;
  auto found = instances->second.find(task.container_instance_id);
  return found == instances->second.end() ? nullptr : &found->second;
}

void EcsApi::release_task(RegionState& region, const Task& task, TaskChanges& changes) const {
  ContainerInstance* instance = instance_of(region, task);
  if (instance == nullptr) return;
  release_from(*instance, task.reserved);
  changes.resized.insert(instance);
}

void EcsApi::hold_bound_ports(RegionState& region, Task& task, TaskChanges& changes) const {
  TaskReservation extra = unreserved_bindings(task);
  if (extra.tcp_ports.empty() && extra.udp_ports.empty()) return;
  ContainerInstance* instance = instance_of(region, task);
  if (instance == nullptr) return;
  reserve_on(*instance, extra);
  task.reserved.tcp_ports.insert(task.reserved.tcp_ports.end(), extra.tcp_ports.begin(),
                                 extra.tcp_ports.end());
  task.reserved.udp_ports.insert(task.reserved.udp_ports.end(), extra.udp_ports.begin(),
                                 extra.udp_ports.end());
  changes.resized.insert(instance);
}

void EcsApi::stop_without_agent(RegionState& region, Task& task, TaskChanges& changes) const {
  TimePoint now = clock_.now();
  task.desired_status = "STOPPED";
  if (!task.stopping_at) task.stopping_at = now;
  task.last_status = "STOPPED";
  for (auto& container : task.containers) container.last_status = "STOPPED";
  if (!task.execution_stopped_at) task.execution_stopped_at = now;
  task.stopped_at = now;
  // An ENI never attached, or one on an instance that is gone, holds nothing any more. One a
  // disconnected agent attached stays held: the agent removes the namespace when it returns,
  // and the address comes free when the task is forgotten.
  ContainerInstance* instance = instance_of(region, task);
  bool instance_gone = instance == nullptr || instance->status == "INACTIVE";
  if (task.eni && (task.eni->status == "PRECREATED" || instance_gone)) detach_eni(task, changes);
  release_task(region, task, changes);
  note_task_change(region, task, changes);
}

Assignment EcsApi::assigned_tasks(RegionState& region, const ContainerInstance& instance) const {
  Assignment out;
  std::set<std::string> source_groups;
  for (const Task* task : region.tasks_on(instance)) {
    if (is_stopped(*task)) continue;
    bj::array containers;
    for (const auto& container : task->containers) {
      containers.push_back(bj::object{{"name", container.name}, {"containerArn", container.arn}});
    }
    bj::object entry{{"taskArn", task->arn},
                     {"desiredStatus", task->desired_status},
                     {"lastStatus", task->last_status},
                     {"version", task->version},
                     {"overrides", task->overrides},
                     {"containers", std::move(containers)}};
    if (auto family = region.task_definitions.find(task->family);
        family != region.task_definitions.end()) {
      auto revision = family->second.find(task->revision);
      if (revision != family->second.end()) {
        entry["taskDefinition"] = task_definition_to_wire(revision->second);
      }
    }
    if (!task->cpu.empty()) entry["cpu"] = task->cpu;
    if (!task->memory.empty()) entry["memory"] = task->memory;
    if (!task->stop_code.empty()) entry["stopCode"] = task->stop_code;
    if (!task->stopped_reason.empty()) entry["stoppedReason"] = task->stopped_reason;
    if (task->eni) entry["eni"] = eni_assignment(region, *task, source_groups);
    out.tasks.push_back(std::move(entry));
  }
  // Who belongs to those groups: the addresses of the ENIs in use that name them.
  if (!source_groups.empty()) {
    GroupMembers members = group_members(region);
    for (const auto& group : source_groups) {
      bj::array list;
      if (auto found = members.find(group); found != members.end()) {
        for (uint32_t address : found->second) list.emplace_back(ipv4_to_string(address));
      }
      out.group_members[group] = std::move(list);
    }
  }
  return out;
}

void EcsApi::commit_task_changes(const Context& context, RegionState& region, TaskChanges changes,
                                 bj::object output, Reply reply) {
  std::vector<store::Mutation> mutations = std::move(changes.mutations);
  for (const Task* task : changes.tasks) mutations.push_back(EcsState::put(context.region, *task));
  for (ContainerInstance* instance : changes.resized) {
    ++instance->version;
    mutations.push_back(EcsState::put(context.region, *instance));
  }
  if (changes.memberships_changed) add_awsvpc_instances(region, changes.reassigned);
  std::vector<Publication> publications = stage_assignments(region, changes.reassigned);
  state_.persist(std::move(mutations),
                 [this, publications = std::move(publications), output = std::move(output),
                  reply = std::move(reply)](Status status) mutable {
                   // Memory holds the change even when the store failed, and memory is what every
                   // later reader sees; agents follow it too.
                   publish_assignments(std::move(publications));
                   if (!status) return reply(std::unexpected(status.error()));
                   reply(std::move(output));
                 });
}

std::vector<EcsApi::Publication> EcsApi::stage_assignments(
    RegionState& region, const std::set<ContainerInstance*>& instances) {
  std::vector<Publication> publications;
  for (ContainerInstance* instance : instances) {
    int64_t version = assignments_.stage(instance->arn);
    publications.push_back({instance->arn, version, assigned_tasks(region, *instance)});
  }
  return publications;
}

void EcsApi::publish_assignments(std::vector<Publication> publications) {
  for (auto& publication : publications) {
    assignments_.publish(publication.instance_arn, publication.version,
                         std::move(publication.assignment));
  }
}

Task* EcsApi::find_task(const Context& context, RegionState& region, const std::string& cluster,
                        std::string_view identifier) const {
  if (!looks_like_arn(identifier)) return region.find_task(cluster, identifier);
  auto parsed = parse_arn(identifier);
  if (!parsed || parsed->service != "ecs" || parsed->resource_type() != "task" ||
      parsed->region != context.region || parsed->account != context.account_id) {
    return nullptr;
  }
  // task/CLUSTER/ID, or the old task/ID.
  std::string_view rest = parsed->resource_id();
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return region.find_task(cluster, rest);
  if (rest.substr(0, slash) != cluster) return nullptr;
  return region.find_task(cluster, rest.substr(slash + 1));
}

namespace {

// The tasks an earlier RunTask with the same token (from the same caller, not long ago) started.
std::optional<bj::array> earlier_run(RegionState& region, const std::string& cluster,
                                     const aws::CallContext& context, const std::string& token,
                                     TimePoint now) {
  if (token.empty()) return std::nullopt;
  auto found = region.task_ids_by_client_token.find(client_token_key(context.principal_arn, token));
  if (found == region.task_ids_by_client_token.end()) return std::nullopt;
  bj::array tasks;
  for (const auto& id : found->second) {
    const Task* task = region.find_task(cluster, id);
    if (task == nullptr || now - task->created_at > kClientTokenLifetime) continue;
    tasks.push_back(task_to_wire(*task, true));
  }
  if (tasks.empty()) return std::nullopt;
  return tasks;
}

scheduler::TaskRequest task_request(const TaskLaunch& launch, int count) {
  scheduler::TaskRequest request;
  request.resources.cpu = launch.plan.reserved.cpu;
  request.resources.memory = launch.plan.reserved.memory;
  request.tcp_host_ports = launch.plan.reserved.tcp_ports;
  request.udp_host_ports = launch.plan.reserved.udp_ports;
  request.required_attributes = launch.plan.required_attributes;
  request.group = launch.group.empty() ? "family:" + launch.definition->family : launch.group;
  request.count = count;
  return request;
}

// The definition's placement constraints, then the request's: ECS counts them together.
std::vector<scheduler::PlacementConstraint> merged_constraints(const TaskLaunch& launch) {
  auto merged = read_constraints(json::get_array(launch.definition->body, "placementConstraints"));
  merged.insert(merged.end(), launch.constraints.begin(), launch.constraints.end());
  return merged;
}

bj::array failures_to_json(const std::vector<scheduler::PlacementFailure>& failures) {
  bj::array out;
  for (const auto& entry : failures) out.push_back(failure(entry.arn, entry.reason));
  return out;
}

}  // namespace

void EcsApi::run_task(const Context& context, const Input& input, Reply reply) {
  auto launch = read_launch(context, input);
  if (!launch) return reply(std::unexpected(launch.error()));
  if (auto type = json::get_string(input, "launchType"); type && *type != "EC2") {
    return reply(invalid("Only the EC2 launch type is supported for now, not " + *type + "."));
  }
  if (const auto* strategy = json::get_array(input, "capacityProviderStrategy");
      strategy && !strategy->empty()) {
    return reply(
        invalid("Capacity provider strategies are not supported for now; use "
                "launchType EC2."));
  }
  int64_t count = json::get_int(input, "count").value_or(1);
  if (count < 1 || count > kMaxRunCount) {
    return reply(invalid("count must be between 1 and 10."));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto resolved = launch_target(context, region, *launch);
  if (!resolved) return reply(std::unexpected(resolved.error()));
  const std::string cluster_name = resolved->cluster;
  if (auto earlier =
          earlier_run(region, cluster_name, context, launch->client_token, clock_.now())) {
    return reply(bj::object{{"tasks", std::move(*earlier)}, {"failures", bj::array{}}});
  }
  if (auto status = prepare_launch(*resolved->definition, *launch); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (auto status = check_awsvpc(context, region, *launch, count); !status) {
    return reply(std::unexpected(status.error()));
  }
  auto constraints = merged_constraints(*launch);
  auto policy = scheduler::PlacementPolicy::compile(constraints, launch->strategies);
  if (!policy) return reply(std::unexpected(policy.error()));

  std::vector<ContainerInstance*> members;
  scheduler::ClusterSnapshot snapshot;
  if (auto instances = region.container_instances.find(cluster_name);
      instances != region.container_instances.end()) {
    for (auto& [id, instance] : instances->second) {
      members.push_back(&instance);
      snapshot.instances.push_back(region.placement_view(instance));
    }
  }
  scheduler::PlacementEngine engine(std::move(snapshot));
  auto placed = engine.place(task_request(*launch, static_cast<int>(count)), *policy, rng_);
  if (!placed) return reply(std::unexpected(placed.error()));

  TaskChanges changes;
  bj::array tasks;
  for (uint32_t instance_idx : placed->instances) {
    auto task = launch_task(context, region, *launch, *members[instance_idx], changes);
    if (!task) return reply(std::unexpected(task.error()));
    tasks.push_back(task_to_wire(**task, true));
  }
  bj::object output{{"tasks", std::move(tasks)}, {"failures", failures_to_json(placed->failures)}};
  if (changes.empty()) return reply(std::move(output));
  commit_task_changes(context, region, std::move(changes), std::move(output), std::move(reply));
}

Result<EcsApi::LaunchTarget> EcsApi::launch_target(const Context& context, RegionState& region,
                                                   const TaskLaunch& launch) const {
  auto cluster = active_cluster(context, region, launch.cluster_identifier);
  if (!cluster) return std::unexpected(cluster.error());
  auto definition = runnable(find_task_definition(context, region, launch.task_definition, true));
  if (!definition) return std::unexpected(definition.error());
  return LaunchTarget{(*cluster)->name, *definition};
}

void EcsApi::start_task(const Context& context, const Input& input, Reply reply) {
  auto launch = read_launch(context, input);
  if (!launch) return reply(std::unexpected(launch.error()));
  auto identifiers = json::get_strings(input, "containerInstances");
  if (identifiers.empty() || identifiers.size() > kMaxStartInstances) {
    return reply(invalid("containerInstances must name from 1 to 10 container instances."));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto resolved = launch_target(context, region, *launch);
  if (!resolved) return reply(std::unexpected(resolved.error()));
  const std::string cluster_name = resolved->cluster;
  if (auto status = prepare_launch(*resolved->definition, *launch); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (auto status =
          check_awsvpc(context, region, *launch, static_cast<int64_t>(identifiers.size()));
      !status) {
    return reply(std::unexpected(status.error()));
  }
  // StartTask names its instances: no strategies, and only the instance's own fit is checked.
  auto policy = scheduler::PlacementPolicy::compile({}, {});
  if (!policy) return reply(std::unexpected(policy.error()));

  TaskChanges changes;
  bj::array tasks;
  bj::array failures;
  for (const auto& identifier : identifiers) {
    auto instance = find_container_instance(context, region, cluster_name, identifier);
    if (!instance) {
      failures.push_back(failure(identifier_arn(context, cluster_name, identifier), "MISSING"));
      continue;
    }
    ContainerInstance& target = **instance;
    if (target.status != "ACTIVE") {
      failures.push_back(
          failure(target.arn, target.status, "The container instance is " + target.status + "."));
      continue;
    }
    scheduler::PlacementEngine engine(scheduler::ClusterSnapshot{{region.placement_view(target)}});
    auto placed = engine.place(task_request(*launch, 1), *policy, rng_);
    if (!placed) return reply(std::unexpected(placed.error()));
    if (placed->instances.empty()) {
      auto refused = failures_to_json(placed->failures);
      for (auto& entry : refused) failures.push_back(std::move(entry));
      continue;
    }
    auto task = launch_task(context, region, *launch, target, changes);
    if (!task) return reply(std::unexpected(task.error()));
    tasks.push_back(task_to_wire(**task, true));
  }
  bj::object output{{"tasks", std::move(tasks)}, {"failures", std::move(failures)}};
  if (changes.empty()) return reply(std::move(output));
  commit_task_changes(context, region, std::move(changes), std::move(output), std::move(reply));
}

void EcsApi::stop_task(const Context& context, const Input& input, Reply reply) {
  std::string identifier = json::string_or(input, "task", "");
  std::string reason = json::string_or(input, "reason", "");
  if (auto status = check_length(reason, kMaxStopReason, "reason"); !status) {
    return reply(std::unexpected(status.error()));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  Task* task = find_task(context, region, (*cluster)->name, identifier);
  if (task == nullptr) return reply(invalid("The referenced task was not found."));
  if (task->desired_status == "STOPPED" || is_stopped(*task)) {
    return reply(bj::object{{"task", task_to_wire(*task, false)}});
  }
  TaskChanges changes;
  task->desired_status = "STOPPED";
  if (task->stop_code.empty()) task->stop_code = "UserInitiated";
  if (task->stopped_reason.empty()) {
    task->stopped_reason = reason.empty() ? std::string(kUserStopReason) : reason;
  }
  task->stopping_at = clock_.now();
  // Nobody will report a task whose instance is gone, or one a disconnected agent never saw.
  ContainerInstance* instance = instance_of(region, *task);
  bool unreported = instance == nullptr || instance->status == "INACTIVE" ||
                    (!instance->agent_connected && task->last_status == "PROVISIONING");
  if (unreported) {
    stop_without_agent(region, *task, changes);
  } else {
    note_task_change(region, *task, changes);
  }
  bj::object output{{"task", task_to_wire(*task, false)}};
  commit_task_changes(context, region, std::move(changes), std::move(output), std::move(reply));
}

void EcsApi::describe_tasks(const Context& context, const Input& input, Reply reply) {
  auto identifiers = json::get_strings(input, "tasks");
  if (identifiers.empty()) return reply(invalid("tasks must name at least one task."));
  if (identifiers.size() > kMaxDescribedTasks) {
    return reply(invalid("DescribeTasks accepts at most 100 tasks."));
  }
  auto include = json::get_strings(input, "include");
  bool include_tags = std::find(include.begin(), include.end(), "TAGS") != include.end();

  std::shared_lock lock(state_.mutex());
  // Lookups do not change the region; the cast lets the shared helpers take it.
  auto* region = const_cast<RegionState*>(state_.find_region(context.region));
  if (region == nullptr) return reply(fail(ErrorCode::kClusterNotFound, "Cluster not found."));
  auto cluster = active_cluster(context, *region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const std::string& cluster_name = (*cluster)->name;
  bj::array tasks;
  bj::array failures;
  for (const auto& identifier : identifiers) {
    const Task* task = find_task(context, *region, cluster_name, identifier);
    if (task == nullptr) {
      std::string missing = looks_like_arn(identifier)
                                ? identifier
                                : arn(context, "task/" + cluster_name + "/" + identifier);
      failures.push_back(failure(std::move(missing), "MISSING"));
      continue;
    }
    tasks.push_back(task_to_wire(*task, include_tags));
  }
  reply(bj::object{{"tasks", std::move(tasks)}, {"failures", std::move(failures)}});
}

void EcsApi::list_tasks(const Context& context, const Input& input, Reply reply) {
  std::string cluster_identifier = cluster_input(input);
  auto instance_identifier = json::get_string(input, "containerInstance");
  auto family = json::get_string(input, "family");
  auto started_by = json::get_string(input, "startedBy");
  auto service_name = json::get_string(input, "serviceName");
  std::string desired = json::string_or(input, "desiredStatus", "RUNNING");
  auto launch_type = json::get_string(input, "launchType");
  std::string scope = "ListTasks\n" + cluster_identifier + "\n" + instance_identifier.value_or("") +
                      "\n" + family.value_or("") + "\n" + started_by.value_or("") + "\n" +
                      service_name.value_or("") + "\n" + desired + "\n" + launch_type.value_or("");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::shared_lock lock(state_.mutex());
  auto* region = const_cast<RegionState*>(state_.find_region(context.region));
  if (region == nullptr) return reply(fail(ErrorCode::kClusterNotFound, "Cluster not found."));
  auto cluster = active_cluster(context, *region, cluster_identifier);
  if (!cluster) return reply(std::unexpected(cluster.error()));
  std::optional<std::string> instance_id;
  if (instance_identifier) {
    auto instance =
        find_container_instance(context, *region, (*cluster)->name, *instance_identifier);
    if (!instance) return reply(invalid(instance.error().message));
    instance_id = (*instance)->id;
  }
  // No services yet; ECS never sets a desired status of PENDING; every task is EC2.
  bool none = service_name || desired == "PENDING" || (launch_type && *launch_type != "EC2");
  auto wanted = [&](const Task& task) {
    if (none || task.desired_status != desired) return false;
    if (instance_id && task.container_instance_id != *instance_id) return false;
    if (family && task.family != *family) return false;
    return !started_by || task.started_by == *started_by;
  };
  reply(arn_page(region->tasks_of((*cluster)->name), *page, wanted, scope, "taskArns"));
}

}  // namespace wharf::ecs
