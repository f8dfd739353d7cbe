// A few threads for blocking work (fsync, image scans, lifecycle evaluation), so that none of
// it runs on an event loop or a store thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace wharf {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  ~WorkQueue() { stop(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `task` for a worker; false (and the task is dropped) once stop() has begun.
  bool post(std::function<void()> task);
  // Lets the queued tasks finish, then joins the workers. Safe to call more than once.
  void stop();
  // Blocks until nothing is queued or running (for tests).
  void drain();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> tasks_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace wharf
