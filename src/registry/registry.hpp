// The registry assembled for `wharf server`: blob store, metadata state (loaded), credentials,
// the /v2/ handler and the upkeep thread, in one object the control plane owns.
#pragma once

#include <memory>
#include <string>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "registry/auth.hpp"
#include "registry/blob_store.hpp"
#include "registry/distribution_api.hpp"
#include "registry/maintenance.hpp"
#include "registry/registry_state.hpp"
#include "store/store.hpp"

namespace wharf::registry {

struct RegistryConfig {
  std::string data_dir;  // blobs go to DATA_DIR/registry, the token secret to DATA_DIR/registry.key
  std::string account_id = "123456789012";  // the account anonymous pulls read from
  std::string default_region = "us-east-1";
  std::chrono::seconds maintenance_interval = std::chrono::minutes(10);
};

class Registry {
 public:
  // Opens the blob store, loads the state from `store` and starts the upkeep thread.
  static Result<std::unique_ptr<Registry>> open(const RegistryConfig& config, store::Store& store,
                                                const Clock& clock);
  ~Registry();

  RegistryState& state() { return *state_; }
  BlobStore& blobs() { return *blobs_; }
  const RegistryAuth& auth() const { return *auth_; }
  // The handler for every path under /v2/.
  DistributionApi& distribution() { return *distribution_; }
  // Stops the upkeep thread and finishes blob work in flight; call before closing the store.
  void stop();

 private:
  Registry() = default;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<RegistryState> state_;
  std::unique_ptr<RegistryAuth> auth_;
  std::unique_ptr<DistributionApi> distribution_;
  std::unique_ptr<Maintenance> maintenance_;
};

}  // namespace wharf::registry
