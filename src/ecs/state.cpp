// Loading and persisting EcsState.
#include "ecs/state.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>

namespace wharf::ecs {

namespace {

constexpr const char* kClusterKind = "ecs.cluster";
constexpr const char* kTaskDefinitionKind = "ecs.task_definition";
constexpr const char* kSettingKind = "ecs.account_setting";
constexpr const char* kContainerInstanceKind = "ecs.container_instance";
constexpr const char* kTaskKind = "ecs.task";
constexpr const char* kVpcKind = "ec2.vpc";
constexpr const char* kSubnetKind = "ec2.subnet";
constexpr const char* kSecurityGroupKind = "ec2.security_group";

// Store keys start with the region so a region's records sort together.
std::string region_of(const std::string& key) {
  return key.substr(0, key.find('/'));
}

std::string revision_key(const std::string& region, const TaskDefinition& definition) {
  char revision[24];
  std::snprintf(revision, sizeof revision, "%012lld", static_cast<long long>(definition.revision));
  return region + "/" + definition.family + "/" + revision;
}

std::string setting_key(const std::string& region, const Setting& setting, bool account_default) {
  return region + "/" + (account_default ? std::string("default") : setting.principal_arn) + "/" +
         setting.name;
}

Result<boost::json::object> parse_object(const store::Record& record) {
  boost::system::error_code ec;
  auto value = boost::json::parse(record.value, ec);
  if (ec || !value.is_object()) {
    return fail(ErrorCode::kInternal, "record " + record.kind + " " + record.key + " is not JSON");
  }
  return std::move(value.as_object());
}

template <typename Decode, typename Insert>
Status load_kind(store::Store& store, const char* kind, Decode decode, Insert insert) {
  auto records = store.load(kind);
  if (!records) return std::unexpected(records.error().context(std::string("loading ") + kind));
  for (const auto& record : *records) {
    auto object = parse_object(record);
    if (!object) return std::unexpected(object.error());
    auto decoded = decode(std::move(*object));
    if (!decoded) return std::unexpected(decoded.error().context("record " + record.key));
    insert(region_of(record.key), record.key, std::move(*decoded));
  }
  return {};
}

}  // namespace

Status EcsState::load() {
  std::unique_lock lock(mutex_);
  auto status = load_kind(store_, kClusterKind, cluster_from_store,
                          [this](const std::string& region, const std::string&, Cluster cluster) {
                            std::string name = cluster.name;
                            regions_[region].clusters[name] = std::move(cluster);
                          });
  if (!status) return status;
  status = load_kind(store_, kTaskDefinitionKind, task_definition_from_store,
                     [this](const std::string& region, const std::string&, TaskDefinition def) {
                       std::string family = def.family;
                       int64_t revision = def.revision;
                       regions_[region].task_definitions[family][revision] = std::move(def);
                     });
  if (!status) return status;
  status = load_kind(store_, kSettingKind, setting_from_store,
                     [this](const std::string& region, const std::string&, Setting setting) {
                       std::string principal = setting.principal_arn;  // empty for the default
                       std::string name = setting.name;
                       regions_[region].settings[principal][name] = std::move(setting);
                     });
  if (!status) return status;
  status =
      load_kind(store_, kContainerInstanceKind, container_instance_from_store,
                [this](const std::string& region, const std::string&, ContainerInstance instance) {
                  std::string cluster = instance.cluster;
                  std::string id = instance.id;
                  regions_[region].container_instances[cluster][id] = std::move(instance);
                });
  if (!status) return status;
  status = load_kind(store_, kTaskKind, task_from_store,
                     [this](const std::string& region, const std::string&, Task task) {
                       regions_[region].add_task(std::move(task));
                     });
  if (!status) return status;
  status = load_kind(store_, kVpcKind, vpc_from_store,
                     [this](const std::string& region, const std::string&, Vpc vpc) {
                       std::string id = vpc.id;
                       regions_[region].vpcs[id] = std::move(vpc);
                     });
  if (!status) return status;
  status = load_kind(store_, kSubnetKind, subnet_from_store,
                     [this](const std::string& region, const std::string&, Subnet subnet) {
                       std::string id = subnet.id;
                       regions_[region].subnets[id] = std::move(subnet);
                     });
  if (!status) return status;
  return load_kind(store_, kSecurityGroupKind, security_group_from_store,
                   [this](const std::string& region, const std::string&, SecurityGroup group) {
                     std::string id = group.id;
                     regions_[region].security_groups[id] = std::move(group);
                   });
}

std::string client_token_key(std::string_view principal, std::string_view token) {
  return std::string(principal) + "\n" + std::string(token);
}

const std::map<std::string, Task, std::less<>>& RegionState::tasks_of(
    std::string_view cluster) const {
  static const std::map<std::string, Task, std::less<>> kNone;
  auto found = tasks.find(cluster);
  return found == tasks.end() ? kNone : found->second;
}

Task* RegionState::find_task(std::string_view cluster, std::string_view id) {
  auto by_cluster = tasks.find(cluster);
  if (by_cluster == tasks.end()) return nullptr;
  auto found = by_cluster->second.find(id);
  return found == by_cluster->second.end() ? nullptr : &found->second;
}

std::vector<Task*> RegionState::tasks_on(const ContainerInstance& instance) {
  std::vector<Task*> out;
  auto ids = task_ids_by_instance.find(instance.id);
  if (ids == task_ids_by_instance.end()) return out;
  for (const auto& id : ids->second) {
    if (Task* task = find_task(instance.cluster, id)) out.push_back(task);
  }
  return out;
}

std::vector<const Task*> RegionState::tasks_on(const ContainerInstance& instance) const {
  auto found = const_cast<RegionState*>(this)->tasks_on(instance);
  return {found.begin(), found.end()};
}

Task& RegionState::add_task(Task task) {
  task_ids_by_instance[task.container_instance_id].insert(task.id);
  if (!task.client_token.empty()) {
    task_ids_by_client_token[client_token_key(task.client_principal, task.client_token)].push_back(
        task.id);
  }
  std::string cluster = task.cluster;
  std::string id = task.id;
  return tasks[cluster][id] = std::move(task);
}

void RegionState::remove_task(const std::string& cluster, const std::string& id) {
  Task* task = find_task(cluster, id);
  if (task == nullptr) return;
  if (auto ids = task_ids_by_instance.find(task->container_instance_id);
      ids != task_ids_by_instance.end()) {
    ids->second.erase(id);
    if (ids->second.empty()) task_ids_by_instance.erase(ids);
  }
  if (!task->client_token.empty()) {
    auto key = client_token_key(task->client_principal, task->client_token);
    if (auto ids = task_ids_by_client_token.find(key); ids != task_ids_by_client_token.end()) {
      std::erase(ids->second, id);
      if (ids->second.empty()) task_ids_by_client_token.erase(ids);
    }
  }
  auto by_cluster = tasks.find(cluster);
  by_cluster->second.erase(id);
  if (by_cluster->second.empty()) tasks.erase(by_cluster);
}

namespace {

void count(TaskCounts& counts, const Task& task) {
  counts.running += is_running(task);
  counts.pending += is_pending(task);
}

}  // namespace

TaskCounts RegionState::task_counts(std::string_view cluster) const {
  TaskCounts counts;
  for (const auto& [id, task] : tasks_of(cluster)) count(counts, task);
  return counts;
}

TaskCounts RegionState::task_counts(const ContainerInstance& instance) const {
  TaskCounts counts;
  for (const Task* task : tasks_on(instance)) count(counts, *task);
  return counts;
}

scheduler::ContainerInstance RegionState::placement_view(const ContainerInstance& instance) const {
  scheduler::ContainerInstance view = scheduler_view(instance);
  for (const Task* task : tasks_on(instance)) {
    if (is_stopped(*task)) continue;
    view.running_tasks_count += is_running(*task);
    auto group = std::find_if(view.task_groups.begin(), view.task_groups.end(),
                              [&](const auto& entry) { return entry.group == task->group; });
    if (group == view.task_groups.end()) {
      view.task_groups.push_back({task->group, 1});
    } else {
      ++group->count;
    }
  }
  return view;
}

const std::map<std::string, ContainerInstance, std::less<>>& RegionState::instances_of(
    std::string_view cluster) const {
  static const std::map<std::string, ContainerInstance, std::less<>> kNone;
  auto found = container_instances.find(cluster);
  return found == container_instances.end() ? kNone : found->second;
}

int64_t RegionState::registered_instance_count(std::string_view cluster) const {
  int64_t count = 0;
  for (const auto& [id, instance] : instances_of(cluster)) count += is_registered(instance);
  return count;
}

const RegionState* EcsState::find_region(std::string_view name) const {
  auto found = regions_.find(name);
  return found == regions_.end() ? nullptr : &found->second;
}

void EcsState::persist(std::vector<store::Mutation> mutations, std::function<void(Status)> done) {
  store_.commit(std::move(mutations), std::move(done));
}

store::Mutation EcsState::put(const std::string& region, const Cluster& cluster) {
  return {kClusterKind, region + "/" + cluster.name,
          boost::json::serialize(cluster_to_store(cluster))};
}

store::Mutation EcsState::put(const std::string& region, const TaskDefinition& definition) {
  return {kTaskDefinitionKind, revision_key(region, definition),
          boost::json::serialize(task_definition_to_store(definition))};
}

store::Mutation EcsState::put(const std::string& region, const Setting& setting) {
  bool account_default = setting.principal_arn.empty();
  return {kSettingKind, setting_key(region, setting, account_default),
          boost::json::serialize(setting_to_wire(setting))};
}

store::Mutation EcsState::put(const std::string& region, const ContainerInstance& instance) {
  return {kContainerInstanceKind, region + "/" + instance.cluster + "/" + instance.id,
          boost::json::serialize(container_instance_to_store(instance))};
}

store::Mutation EcsState::put(const std::string& region, const Task& task) {
  return {kTaskKind, region + "/" + task.cluster + "/" + task.id,
          boost::json::serialize(task_to_store(task))};
}

store::Mutation EcsState::remove(const std::string& region, const Task& task) {
  return {kTaskKind, region + "/" + task.cluster + "/" + task.id, std::nullopt};
}

store::Mutation EcsState::put(const std::string& region, const Vpc& vpc) {
  return {kVpcKind, region + "/" + vpc.id, boost::json::serialize(vpc_to_store(vpc))};
}

store::Mutation EcsState::put(const std::string& region, const Subnet& subnet) {
  return {kSubnetKind, region + "/" + subnet.id, boost::json::serialize(subnet_to_store(subnet))};
}

store::Mutation EcsState::put(const std::string& region, const SecurityGroup& group) {
  return {kSecurityGroupKind, region + "/" + group.id,
          boost::json::serialize(security_group_to_store(group))};
}

store::Mutation EcsState::remove(const std::string& region, const Subnet& subnet) {
  return {kSubnetKind, region + "/" + subnet.id, std::nullopt};
}

store::Mutation EcsState::remove(const std::string& region, const SecurityGroup& group) {
  return {kSecurityGroupKind, region + "/" + group.id, std::nullopt};
}

store::Mutation EcsState::remove_setting(const std::string& region, const Setting& setting) {
  return {kSettingKind, setting_key(region, setting, setting.principal_arn.empty()), std::nullopt};
}

size_t EcsState::task_definition_count() const {
  size_t count = 0;
  for (const auto& [name, region] : regions_) {
    for (const auto& [family, revisions] : region.task_definitions) count += revisions.size();
  }
  return count;
}

}  // namespace wharf::ecs
