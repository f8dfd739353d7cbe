// The long polls of container agents (WharfPollTasks): each instance's durable task assignment,
// its version, and the agents waiting for it to change.
#pragma once

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::ecs {

// What an instance's agent is told: its tasks, and the current members of the security groups
// their rules name (shared by all of them, so a task joining a group changes no task's entry).
struct Assignment {
  boost::json::array tasks;  // objects, each with a "taskArn"
  boost::json::object group_members;
};

// An agent sees only durable state: a change to an instance's tasks is staged (a fresh version)
// while the state lock is held, and published with the tasks as they were then once the store
// acknowledged it. Versions are a random epoch, drawn when the process starts, times 2^32 plus a
// counter: they never go backwards within a run, and a version from an earlier run (or from
// anywhere else) is recognised as not this run's, so it is never answered with stubs.
//
// Locking: callers may hold the state's mutex when calling in; the watch never calls back into
// the state, and answers waiters outside its own mutex.
class AssignmentWatch {
 public:
  using Reply = std::function<void(Result<boost::json::object>)>;

  explicit AssignmentWatch(const Clock& clock);
  ~AssignmentWatch() { stop(); }
  AssignmentWatch(const AssignmentWatch&) = delete;
  AssignmentWatch& operator=(const AssignmentWatch&) = delete;

  // Under the exclusive state lock, as an instance's tasks change: the version the change will
  // be published under. Until it is published, polls of an instance never answered before wait
  // rather than read state the store has not acknowledged.
  int64_t stage(const std::string& instance_arn);
  // Once durable: the instance's assignment as of `version`. Completes the waiters.
  void publish(const std::string& instance_arn, int64_t version, Assignment assignment);
  // The instance left (deregistered): its waiters get `error`, and it is forgotten.
  void retire(const std::string& instance_arn, const Error& error);

  // Answers at once when the published version differs from `seen` (or wait is zero, or the
  // watch is stopping); otherwise holds `reply` until a publish or until `wait` passes. Call
  // with the state lock held: `current` builds the assignment from state for an instance not
  // yet known here, which is then durable since every change is staged first.
  //
  // The answer lists every task, but a task whose entry is the same as in version `seen` (one
  // this watch published) is only {"taskArn": …, "unchanged": true}: the agent has it. Any
  // other `seen` (0, or from before a restart) gets every entry whole.
  void poll(const std::string& instance_arn, int64_t seen, std::chrono::seconds wait,
            const std::function<Assignment()>& current, Reply reply);

  // Answers the waiters whose time is up; returns how many.
  std::size_t expire_once();
  // Expires waiters on a thread of its own, until stop().
  void start();
  // Answers every waiter now and from then on answers polls at once, so a graceful shutdown
  // does not wait out long polls.
  void stop();

 private:
  struct Waiter {
    TimePoint deadline;
    int64_t seen;
    Reply reply;
  };
  struct Entry {
    int64_t version = 0;
    // Absent while the first staged change is not yet durable.
    std::optional<Assignment> assignment;
    // The version at which each task's entry last changed, and the first version this entry
    // published: answers to a `seen` from `since` on can leave out what did not change.
    std::map<std::string, int64_t, std::less<>> changed_at;
    int64_t since = 0;
    std::vector<Waiter> waiters;
    void set(int64_t new_version, Assignment next);
  };
  using Answers = std::vector<std::pair<Reply, Result<boost::json::object>>>;

  boost::json::object answer(const Entry& entry, int64_t seen) const;
  static void deliver(Answers answers);
  std::optional<TimePoint> next_deadline() const;

  const Clock& clock_;
  const int64_t epoch_;  // the high bits of every version this watch issues
  std::atomic<int64_t> next_version_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;  // by instance ARN
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace wharf::ecs
