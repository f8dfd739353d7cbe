// Maintenance: the upkeep loop.
#include "registry/maintenance.hpp"

#include "common/log.hpp"

namespace wharf::registry {

Result<GcStats> Maintenance::run_once() {
  std::size_t expired = blobs_.expire_uploads();
  if (expired > 0) spdlog::info("registry: removed {} abandoned uploads", expired);
  auto stats = blobs_.collect_garbage([this] { return state_.referenced_blobs(); });
  if (!stats) return std::unexpected(stats.error().context("collecting unreferenced blobs"));
  state_.forget_blobs(stats->removed);
  if (stats->blobs_removed > 0) {
    spdlog::info("registry: collected {} unreferenced blobs ({} bytes)", stats->blobs_removed,
                 stats->bytes_removed);
  }
  return stats;
}

void Maintenance::start(std::chrono::seconds interval) {
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      if (auto stats = run_once(); !stats) spdlog::warn("registry: {}", stats.error().message);
      lock.lock();
    }
  });
}

void Maintenance::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace wharf::registry
