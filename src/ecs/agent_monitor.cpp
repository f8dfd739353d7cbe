// AgentMonitor: the periodic check of agent heartbeats.
#include "ecs/agent_monitor.hpp"

#include "common/log.hpp"

namespace wharf::ecs {

std::size_t AgentMonitor::check_once() {
  TimePoint now = clock_.now();
  std::vector<store::Mutation> mutations;
  std::unique_lock lock(state_.mutex());
  state_.for_each_region([&](const std::string& region_name, RegionState& region) {
    for (auto& [cluster, instances] : region.container_instances) {
      for (auto& [id, instance] : instances) {
        if (!instance.agent_connected || instance.status == "INACTIVE") continue;
        if (instance.last_heartbeat == TimePoint{}) {
          instance.last_heartbeat = now;  // loaded at start-up: its agent gets a full timeout
          continue;
        }
        if (now - instance.last_heartbeat <= timeout()) continue;
        instance.agent_connected = false;
        ++instance.version;
        mutations.push_back(EcsState::put(region_name, instance));
        spdlog::info("container instance {}: no heartbeat for {} s, agent disconnected",
                     instance.arn, timeout().count());
      }
    }
  });
  std::size_t disconnected = mutations.size();
  if (disconnected > 0) {
    state_.persist(std::move(mutations), [](Status status) {
      if (!status) spdlog::warn("recording disconnected agents: {}", status.error().message);
    });
  }
  return disconnected;
}

std::size_t AgentMonitor::prune_once() {
  TimePoint now = clock_.now();
  std::vector<store::Mutation> mutations;
  std::unique_lock lock(state_.mutex());
  state_.for_each_region([&](const std::string& region_name, RegionState& region) {
    std::vector<std::pair<std::string, std::string>> expired;  // cluster, id
    for (const auto& [cluster, tasks] : region.tasks) {
      for (const auto& [id, task] : tasks) {
        if (!is_stopped(task) || !task.stopped_at) continue;
        if (now - *task.stopped_at < kStoppedTaskRetention) continue;
        expired.emplace_back(cluster, id);
        mutations.push_back(EcsState::remove(region_name, task));
      }
    }
    for (const auto& [cluster, id] : expired) region.remove_task(cluster, id);
  });
  std::size_t pruned = mutations.size();
  if (pruned > 0) {
    state_.persist(std::move(mutations), [](Status status) {
      if (!status) spdlog::warn("removing expired stopped tasks: {}", status.error().message);
    });
  }
  return pruned;
}

void AgentMonitor::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      check_once();
      prune_once();
      lock.lock();
    }
  });
}

void AgentMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace wharf::ecs
