// The ECS control plane's authoritative in-memory state, partitioned by region, made durable
// through the Store before any change is acknowledged.
#pragma once

#include <functional>
#include <map>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ecs/model.hpp"
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

  // The cluster's instances (empty when it has none).
  const std::map<std::string, ContainerInstance, std::less<>>& instances_of(
      std::string_view cluster) const;
  // ACTIVE and DRAINING instances of the cluster.
  int64_t registered_instance_count(std::string_view cluster) const;
};

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
  static store::Mutation remove_setting(const std::string& region, const Setting& setting);

  size_t task_definition_count() const;

 private:
  store::Store& store_;
  std::shared_mutex mutex_;
  std::map<std::string, RegionState, std::less<>> regions_;
};

}  // namespace wharf::ecs
