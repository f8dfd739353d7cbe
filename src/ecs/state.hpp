// The ECS control plane's authoritative in-memory state, partitioned by region, made durable
// through the Store before any change is acknowledged.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ecs/model.hpp"
#include "ecs/task.hpp"
#include "ecs/vpc.hpp"
#include "store/store.hpp"

namespace wharf::ecs {

struct RegionState {
  std::map<std::string, Cluster, std::less<>> clusters;  // by name
  // family → revision → definition
  std::map<std::string, std::map<int64_t, TaskDefinition>, std::less<>> task_definitions;
  // principal ARN → setting name → setting; the account default is under kDefaultPrincipal.
  std::map<std::string, std::map<std::string, Setting, std::less<>>, std::less<>> settings;
  // cluster name → container instance id → instance, INACTIVE (deregistered) ones included.
  std::map<std::string, std::map<std::string, ContainerInstance, std::less<>>, std::less<>>
      container_instances;
  // cluster name → task id → task; STOPPED ones stay until retention removes them. Change the
  // set of tasks only through add_task / remove_task, which keep the indexes below.
  std::map<std::string, std::map<std::string, Task, std::less<>>, std::less<>> tasks;
  // container instance id → the ids of the tasks placed there, in every status.
  std::map<std::string, std::set<std::string>, std::less<>> task_ids_by_instance;
  // client_token_key() → the tasks RunTask started for that token.
  std::map<std::string, std::vector<std::string>, std::less<>> task_ids_by_client_token;
  // EC2 networking (vpc.hpp), by id; ensure_default_network adds the region's defaults.
  std::map<std::string, Vpc, std::less<>> vpcs;
  std::map<std::string, Subnet, std::less<>> subnets;
  std::map<std::string, SecurityGroup, std::less<>> security_groups;

  // The cluster's instances (empty when it has none).
  const std::map<std::string, ContainerInstance, std::less<>>& instances_of(
      std::string_view cluster) const;
  // ACTIVE and DRAINING instances of the cluster.
  int64_t registered_instance_count(std::string_view cluster) const;

  // The cluster's tasks (empty when it has none).
  const std::map<std::string, Task, std::less<>>& tasks_of(std::string_view cluster) const;
  Task* find_task(std::string_view cluster, std::string_view id);
  // The tasks placed on the instance, in every status.
  std::vector<Task*> tasks_on(const ContainerInstance& instance);
  std::vector<const Task*> tasks_on(const ContainerInstance& instance) const;
  Task& add_task(Task task);
  void remove_task(const std::string& cluster, const std::string& id);
  // Running and pending tasks of a cluster, or of one instance.
  TaskCounts task_counts(std::string_view cluster) const;
  TaskCounts task_counts(const ContainerInstance& instance) const;
  // The instance as the scheduler sees it, with the groups and count of the tasks it holds.
  scheduler::ContainerInstance placement_view(const ContainerInstance& instance) const;
};

// The key RunTask idempotency is kept under: a token is the caller's own.
std::string client_token_key(std::string_view principal, std::string_view token);

inline constexpr std::string_view kDefaultPrincipal = "";

class EcsState {
 public:
  explicit EcsState(store::Store& store) : store_(store) {}

  // Reads everything back from the store; call once before serving.
  Status load();

  // Guards every region. Readers take it shared; writers take it exclusive and call persist()
  // before releasing it, so the store sees changes in the order memory did.
  std::shared_mutex& mutex() { return mutex_; }
  RegionState& region(const std::string& name) { return regions_[name]; }
  const RegionState* find_region(std::string_view name) const;
  // Calls `visit` with every region's name and state; hold the mutex.
  template <typename Visit>
  void for_each_region(Visit visit) {
    for (auto& [name, region] : regions_) visit(name, region);
  }

  // Queues the mutations for durability; `done` runs on a store thread once they are durable.
  void persist(std::vector<store::Mutation> mutations, std::function<void(Status)> done);

  static store::Mutation put(const std::string& region, const Cluster& cluster);
  static store::Mutation put(const std::string& region, const TaskDefinition& definition);
  static store::Mutation put(const std::string& region, const Setting& setting);
  static store::Mutation put(const std::string& region, const ContainerInstance& instance);
  static store::Mutation put(const std::string& region, const Task& task);
  static store::Mutation remove(const std::string& region, const Task& task);
  static store::Mutation put(const std::string& region, const Vpc& vpc);
  static store::Mutation put(const std::string& region, const Subnet& subnet);
  static store::Mutation put(const std::string& region, const SecurityGroup& group);
  static store::Mutation remove(const std::string& region, const Subnet& subnet);
  static store::Mutation remove(const std::string& region, const SecurityGroup& group);
  static store::Mutation remove_setting(const std::string& region, const Setting& setting);

  size_t task_definition_count() const;

 private:
  store::Store& store_;
  std::shared_mutex mutex_;
  std::map<std::string, RegionState, std::less<>> regions_;
};

}  // namespace wharf::ecs
