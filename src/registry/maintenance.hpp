// Periodic registry upkeep on its own thread: abandoned uploads expire and blobs no manifest
// references are collected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/error.hpp"
#include "registry/blob_store.hpp"
#include "registry/registry_state.hpp"

namespace wharf::registry {

class Maintenance {
 public:
  Maintenance(RegistryState& state, BlobStore& blobs) : state_(state), blobs_(blobs) {}
  ~Maintenance() { stop(); }

  // Runs a round every `interval` until stop().
  void start(std::chrono::seconds interval);
  void stop();
  // One round, now: expire uploads, collect garbage, drop links to collected blobs.
  Result<GcStats> run_once();

 private:
  RegistryState& state_;
  BlobStore& blobs_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace wharf::registry
