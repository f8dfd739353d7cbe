// AssignmentWatch: versions, published assignments and held polls.
#include "ecs/assignment_watch.hpp"

#include <algorithm>

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// How often the expiry thread looks, at most; a poll may be held this much past its time.
constexpr auto kExpiryTick = std::chrono::milliseconds(250);

int64_t start_version(const Clock& clock) {
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch()).count();
  return std::max<int64_t>(millis, 1);
}

}  // namespace

AssignmentWatch::AssignmentWatch(const Clock& clock)
    : clock_(clock), next_version_(start_version(clock)) {}

bj::object AssignmentWatch::answer(const Entry& entry) {
  return bj::object{{"version", entry.version}, {"tasks", entry.tasks.value_or(Tasks{})}};
}

void AssignmentWatch::deliver(Answers answers) {
  for (auto& [reply, result] : answers) reply(std::move(result));
}

int64_t AssignmentWatch::stage(const std::string& instance_arn) {
  std::lock_guard lock(mutex_);
  entries_.try_emplace(instance_arn);  // unknown until now: polls wait for the publish
  return ++next_version_;
}

void AssignmentWatch::publish(const std::string& instance_arn, int64_t version, Tasks tasks) {
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    auto found = entries_.find(instance_arn);
    if (found == entries_.end()) return;  // retired meanwhile
    Entry& entry = found->second;
    if (version <= entry.version) return;  // a later change was published already
    entry.version = version;
    entry.tasks = std::move(tasks);
    for (auto& waiter : entry.waiters) answers.emplace_back(std::move(waiter.reply), answer(entry));
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
                           const std::function<Tasks()>& current, Reply reply) {
  std::unique_lock lock(mutex_);
  auto [found, added] = entries_.try_emplace(instance_arn);
  Entry& entry = found->second;
  if (added) {
    entry.version = ++next_version_;
    entry.tasks = current();
  }
  bool published = entry.tasks.has_value();
  if (published && (entry.version != seen || wait.count() <= 0 || stopping_)) {
    bj::object output = answer(entry);
    lock.unlock();
    return reply(std::move(output));
  }
  if (stopping_) {
    lock.unlock();
    return reply(fail(ErrorCode::kInternal, "The server is stopping; poll again."));
  }
  // Not yet published, or nothing new: hold. An unpublished entry is published within a commit.
  entry.waiters.push_back({clock_.now() + wait, std::move(reply)});
  lock.unlock();
  wake_.notify_all();
}

std::size_t AssignmentWatch::expire_once() {
  TimePoint now = clock_.now();
  Answers answers;
  {
    std::lock_guard lock(mutex_);
    for (auto& [arn, entry] : entries_) {
      if (!entry.tasks) continue;  // its first publish is moments away
      auto due = std::partition(entry.waiters.begin(), entry.waiters.end(),
                                [&](const Waiter& waiter) { return waiter.deadline > now; });
      for (auto waiter = due; waiter != entry.waiters.end(); ++waiter) {
        answers.emplace_back(std::move(waiter->reply), answer(entry));
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
        if (entry.tasks) {
          answers.emplace_back(std::move(waiter.reply), answer(entry));
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
