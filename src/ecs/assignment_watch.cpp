// AssignmentWatch: versions, published assignments and held polls.
#include "ecs/assignment_watch.hpp"

#include <algorithm>

#include "common/crypto.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// How often the expiry thread looks, at most; a poll may be held this much past its time.
constexpr auto kExpiryTick = std::chrono::milliseconds(250);

// 1 to 2^30 - 1: versions stay positive and far from overflowing.
int64_t random_epoch() {
  std::string bytes = random_bytes(4);
  uint32_t value = 0;
  for (char byte : bytes) value = (value << 8) | static_cast<unsigned char>(byte);
  return static_cast<int64_t>((value & 0x3fffffffu) | 1u);
}

std::string_view task_arn(const bj::value& task) {
  const auto* object = task.if_object();
  const auto* arn = object != nullptr ? object->if_contains("taskArn") : nullptr;
  return arn != nullptr && arn->is_string() ? std::string_view(arn->get_string()) : "";
}

}  // namespace

AssignmentWatch::AssignmentWatch(const Clock& clock)
    : clock_(clock), epoch_(random_epoch()), next_version_(epoch_ << 32) {}

void AssignmentWatch::Entry::set(int64_t new_version, Assignment next) {
  std::map<std::string, const bj::value*, std::less<>> before;
  if (assignment) {
    for (const auto& task : assignment->tasks) before.emplace(std::string(task_arn(task)), &task);
  }
  std::map<std::string, int64_t, std::less<>> stamps;
  for (const auto& task : next.tasks) {
    std::string arn(task_arn(task));
    auto previous = before.find(arn);
    auto stamp = changed_at.find(arn);
    bool same = previous != before.end() && *previous->second == task && stamp != changed_at.end();
    stamps[arn] = same ? stamp->second : new_version;
  }
  if (!assignment) since = new_version;
  changed_at = std::move(stamps);
  version = new_version;
  assignment = std::move(next);
}

bj::object AssignmentWatch::answer(const Entry& entry, int64_t seen) const {
  if (!entry.assignment) return bj::object{{"version", entry.version}, {"tasks", bj::array{}}};
  // Only a version this run published for the entry says what the agent holds.
  bool known = (seen >> 32) == epoch_ && seen >= entry.since && seen <= entry.version;
  bj::array tasks;
  for (const auto& task : entry.assignment->tasks) {
    std::string_view arn = task_arn(task);
    auto stamp = entry.changed_at.find(arn);
    if (known && stamp != entry.changed_at.end() && stamp->second <= seen) {
      tasks.push_back(bj::object{{"taskArn", arn}, {"unchanged", true}});
    } else {
      tasks.push_back(task);
    }
  }
  return bj::object{{"version", entry.version},
                    {"tasks", std::move(tasks)},
                    {"groupMembers", entry.assignment->group_members}};
}

void AssignmentWatch::deliver(Answers answers) {
  for (auto& [reply, result] : answers) reply(std::move(result));
}

int64_t AssignmentWatch::stage(const std::string& instance_arn) {
  std::lock_guard lock(mutex_);
  entries_.try_emplace(instance_arn);  // unknown until now: polls wait for the publish
  return ++next_version_;
}

void AssignmentWatch::publish(const std::string& instance_arn, int64_t version,
                              Assignment assignment) {
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    auto found = entries_.find(instance_arn);
    if (found == entries_.end()) return;  // retired meanwhile
    Entry& entry = found->second;
    if (version <= entry.version) return;  // a later change was published already
    entry.set(version, std::move(assignment));
    for (auto& waiter : entry.waiters) {
      answers.emplace_back(std::move(waiter.reply), answer(entry, waiter.seen));
    }
    entry.waiters.clear();
  }
  deliver(std::move(answers));
}

void AssignmentWatch::retire(const std::string& instance_arn, const Error& error) {
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    auto found = entries_.find(instance_arn);
    if (found == entries_.end()) return;
    for (auto& waiter : found->second.waiters) {
      answers.emplace_back(std::move(waiter.reply), std::unexpected(error));
    }
    entries_.erase(found);
  }
  deliver(std::move(answers));
}

void AssignmentWatch::poll(const std::string& instance_arn, int64_t seen, std::chrono::seconds wait,
                           const std::function<Assignment()>& current, Reply reply) {
  std::unique_lock lock(mutex_);
  auto [found, added] = entries_.try_emplace(instance_arn);
  Entry& entry = found->second;
  if (added) entry.set(++next_version_, current());
  bool published = entry.assignment.has_value();
  if (published && (entry.version != seen || wait.count() <= 0 || stopping_)) {
    bj::object output = answer(entry, seen);
    lock.unlock();
    return reply(std::move(output));
  }
  if (stopping_) {
    lock.unlock();
    return reply(fail(ErrorCode::kInternal, "The server is stopping; poll again."));
  }
  // Not yet published, or nothing new: hold. An unpublished entry is published within a commit.
  entry.waiters.push_back({clock_.now() + wait, seen, std::move(reply)});
  lock.unlock();
  wake_.notify_all();
}

std::size_t AssignmentWatch::expire_once() {
  TimePoint now = clock_.now();
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    for (auto& [arn, entry] : entries_) {
      if (!entry.assignment) continue;  // its first publish is moments away
      auto due = std::partition(entry.waiters.begin(), entry.waiters.end(),
                                [&](const Waiter& waiter) { return waiter.deadline > now; });
      for (auto waiter = due; waiter != entry.waiters.end(); ++waiter) {
        answers.emplace_back(std::move(waiter->reply), answer(entry, waiter->seen));
      }
      entry.waiters.erase(due, entry.waiters.end());
    }
  }
  std::size_t expired = answers.size();
  deliver(std::move(answers));
  return expired;
}

std::optional<TimePoint> AssignmentWatch::next_deadline() const {
  std::optional<TimePoint> next;
  for (const auto& [arn, entry] : entries_) {
    for (const auto& waiter : entry.waiters) {
      if (!next || waiter.deadline < *next) next = waiter.deadline;
    }
  }
  return next;
}

void AssignmentWatch::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto next = next_deadline();
      auto pause =
          next ? std::clamp(
                     std::chrono::duration_cast<std::chrono::milliseconds>(*next - clock_.now()),
                     std::chrono::milliseconds(0), kExpiryTick)
               : kExpiryTick;
      wake_.wait_for(lock, pause);
      if (stopping_) break;
      lock.unlock();
      expire_once();
      lock.lock();
    }
  });
}

void AssignmentWatch::stop() {
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [arn, entry] : entries_) {
      for (auto& waiter : entry.waiters) {
        if (entry.assignment) {
          answers.emplace_back(std::move(waiter.reply), answer(entry, waiter.seen));
        } else {
          answers.emplace_back(std::move(waiter.reply),
                               fail(ErrorCode::kInternal, "The server is stopping; poll again."));
        }
      }
      entry.waiters.clear();
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  deliver(std::move(answers));
}

}  // namespace wharf::ecs
