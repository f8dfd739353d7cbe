// Registry: assembly and shutdown order.
#include "registry/registry.hpp"

#include <filesystem>

namespace wharf::registry {

Result<std::unique_ptr<Registry>> Registry::open(const RegistryConfig& config, store::Store& store,
                                                 const Clock& clock) {
  std::unique_ptr<Registry> registry(new Registry());
  auto secret = load_or_create_secret(config.data_dir);
  if (!secret) return std::unexpected(secret.error().context("registry token secret"));
  auto blobs = BlobStore::open({std::filesystem::path(config.data_dir) / "registry"}, clock);
  if (!blobs) return std::unexpected(blobs.error());
  registry->blobs_ = std::move(*blobs);
  registry->state_ = std::make_unique<RegistryState>(store, *registry->blobs_, clock);
  if (auto status = registry->state_->load(); !status) {
    return std::unexpected(status.error().context("loading the registry"));
  }
  registry->auth_ = std::make_unique<RegistryAuth>(std::move(*secret), config.default_region);
  DistributionOptions options;
  options.default_account_id = config.account_id;
  registry->distribution_ = std::make_unique<DistributionApi>(*registry->state_, *registry->blobs_,
                                                              *registry->auth_, clock, options);
  registry->maintenance_ = std::make_unique<Maintenance>(*registry->state_, *registry->blobs_);
  registry->maintenance_->start(config.maintenance_interval);
  return registry;
}

Registry::~Registry() {
  stop();
}

void Registry::stop() {
  if (maintenance_) maintenance_->stop();
  if (distribution_) distribution_->stop();
}

}  // namespace wharf::registry
