// Notices container agents that stopped calling in, and marks their instances disconnected; also
// forgets STOPPED tasks once they have been describable for the retention period.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "common/clock.hpp"
#include "ecs/state.hpp"

namespace wharf::ecs {

// Agents call DiscoverPollEndpoint every heartbeat interval; an instance whose agent has not
// called for three intervals gets agentConnected=false (persisted), and its next call sets it
// back. After a server start every agent gets a fresh three intervals to call in.
class AgentMonitor {
 public:
  AgentMonitor(EcsState& state, const Clock& clock, std::chrono::seconds heartbeat_interval)
      : state_(state), clock_(clock), interval_(heartbeat_interval) {}
  ~AgentMonitor() { stop(); }
  AgentMonitor(const AgentMonitor&) = delete;
  AgentMonitor& operator=(const AgentMonitor&) = delete;

  // How long an agent may stay silent before its instance counts as disconnected.
  std::chrono::seconds timeout() const { return 3 * interval_; }
  // One pass, now: returns how many instances it marked disconnected.
  std::size_t check_once();
  // Removes tasks STOPPED longer than kStoppedTaskRetention ago, from memory and the store;
  // returns how many.
  std::size_t prune_once();
  // A pass every heartbeat interval on its own thread until stop().
  void start();
  void stop();

 private:
  EcsState& state_;
  const Clock& clock_;
  std::chrono::seconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace wharf::ecs
