// The agent's image store: pulls images into the layer cache, remembers them across restarts,
// and removes the ones no task has used for a while.
//
// On disk (see layout.hpp): each image is images/<alg>/<hex>/ with its manifest.json and
// config.json; its layers are layers/<alg>/<diff_id hex>/, shared between images. The index
// images/index.json maps references ("127.0.0.1:5000/web:latest", normalised) to manifest
// digests and keeps each image's last use and each layer's size, so the pull behaviours "once"
// and "prefer-cached" and the clean-up timings survive agent restarts. Blobs are downloaded into
// a directory under layers/tmp/ and deleted once unpacked: only unpacked layers are kept.
//
// Thread-safe. The store's lock is held only for bookkeeping and for clean_up()'s removals,
// never while talking to a registry; ensure() blocks for the whole pull, so callers on an event
// loop run it on a worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/files.hpp"
#include "agent/layout.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"
#include "oci/digest.hpp"
#include "oci/ecr_login.hpp"
#include "oci/image_builder.hpp"
#include "oci/image_transfer.hpp"
#include "oci/reference.hpp"

namespace wharf::agent {

// When to ask the registry, as the ECS agent's ECS_IMAGE_PULL_BEHAVIOR.
enum class PullBehavior {
  kDefault,       // pull; if the pull fails, use the cached image when there is one
  kAlways,        // pull; a failed pull is an error
  kOnce,          // use the image a previous pull cached; pull only when there is none
  kPreferCached,  // as kOnce, and clean_up() removes no image (ECS disables image cleanup)
};

// "default", "always", "once", "prefer-cached"; kInvalidParameter for anything else.
Result<PullBehavior> parse_pull_behavior(std::string_view text);
std::string_view to_string(PullBehavior behavior);

struct Image {
  std::string reference;  // as the caller asked for it
  oci::Digest manifest_digest;
  std::vector<oci::Digest> diff_ids;  // base layer first, each unpacked in the layer cache
  oci::RuntimeConfig config;          // the image config's "config", as the image gives it
  TimePoint last_used;                // the last ensure() or release()
};

// What the agent needs from an image config: its runtime part and rootfs.diff_ids.
struct ParsedImageConfig {
  oci::RuntimeConfig config;
  std::vector<oci::Digest> diff_ids;
};

// Parses an image config (OCI or Docker). Missing or null runtime fields are empty; a field of
// the wrong type, a missing rootfs or a malformed diff_id is kInvalidParameter. Values are kept
// as the image has them (ports are not normalised, Env entries not checked).
Result<ParsedImageConfig> parse_image_config(std::string_view json);

struct ImageStoreOptions {
  PullBehavior behavior = PullBehavior::kDefault;
  oci::RegistryAccess access;  // plain_http, insecure, chunk_size; its credentials are ignored
  // AWS credentials for ECR logins (see oci::registry_login). Unset: never an ECR login.
  oci::EnvLookup env;
  // clean_up() removes unused images last used longer ago than this...
  std::chrono::minutes max_unused_age{180};
  // ...and, while their layers take more than this many bytes, unused images oldest first
  // (0: no size cap)...
  uint64_t max_cache_bytes = 0;
  // ...but never one used more recently than this, which also covers the moment between a
  // task's ensure() and its acquire() (ECS_IMAGE_MINIMUM_CLEANUP_AGE).
  std::chrono::minutes min_unused_age{60};
  // Layers of one image downloaded and unpacked at once.
  std::size_t parallel_layers = 3;
};

class ImageStore {
 public:
  // `layout` and `clock` must outlive the store.
  ImageStore(const Layout& layout, ImageStoreOptions options, const Clock& clock);
  ~ImageStore();
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Reads the image directories and the index back, and clears layers/tmp/. At start-up, before
  // any other call. An image whose files or layers are missing is removed. An unreadable index
  // is logged and rebuilt from the image directories: only references and last uses are lost.
  Status load();

  // Makes `reference` available locally, as options().behavior says, and returns it. A pull
  // resolves the reference for linux/amd64, fetches the config, and downloads and unpacks only
  // the layers the cache lacks. `credentials` are the task's repositoryCredentials; without
  // them an ECR login is tried, else the pull is anonymous. Concurrent calls for one reference
  // (and credentials) share one pull; concurrent pulls share the unpacking of a common layer.
  // A digest reference whose image is cached is never pulled again except with kAlways.
  // Errors keep the registry client's codes (kImageNotFound, kRepositoryNotFound,
  // kAccessDenied, kInternal for an unreachable registry, ...) and read well after ECS's
  // "CannotPullContainerError: ": "pulling image 127.0.0.1:5000/web:v1: ...".
  Result<Image> ensure(std::string_view reference,
                       const std::optional<oci::RegistryCredentials>& credentials = std::nullopt);

  // A running container uses the image: clean_up() keeps it and its layers until every
  // acquire() is matched by a release(). release() counts as a use for max_unused_age.
  void acquire(const oci::Digest& manifest_digest);
  void release(const oci::Digest& manifest_digest);
  // The image the cache holds for `reference`, acquired, without asking its registry: for work
  // that may start before ensure() has checked the reference. nullopt when none is cached whole.
  std::optional<Image> acquire_cached(std::string_view reference);

  // Removes unused images as ImageStoreOptions describes, then every cached layer that no
  // remaining image (or pull in progress) needs. Returns how many images were removed.
  Result<std::size_t> clean_up();

  // Cached images (one entry per manifest digest, `reference` the last one pulled by).
  std::vector<Image> images() const;
  const ImageStoreOptions& options() const { return options_; }

 private:
  // Work in progress (a pull, a layer's unpack) whose result several callers wait for.
  template <typename T>
  struct Flight;
  template <typename Key, typename T, typename Work>
  T single_flight(std::map<Key, std::shared_ptr<Flight<T>>>& flights, const Key& key, Work work);

  Result<Image> ensure_parsed(const oci::Reference& reference,
                              const std::optional<oci::RegistryCredentials>& credentials);
  Result<Image> pull(const oci::Reference& reference,
                     const std::optional<oci::RegistryCredentials>& credentials);
  Result<Image> pull_with(oci::RegistryClient& client, const oci::Reference& reference);
  // A logged-in client for the reference's registry, kept for kClientReuse so that pulls reuse
  // its connections, bearer tokens and ECR login. `fresh` replaces a kept one; `reused` says
  // whether a kept one was returned.
  Result<std::shared_ptr<oci::RegistryClient>> client_for(
      const oci::Reference& reference, const std::optional<oci::RegistryCredentials>& credentials,
      bool fresh, bool* reused = nullptr);
  Result<Image> fetch_image(oci::RegistryClient& client, const oci::Reference& reference,
                            const oci::ResolvedImage& resolved,
                            std::vector<oci::Digest>& pinned_layers);
  Image remember(const oci::Reference& reference, Image image);
  Status fetch_layers(oci::RegistryClient& client, const oci::Reference& reference,
                      const oci::Manifest& manifest, const std::vector<oci::Digest>& diff_ids);
  Status fetch_layer(oci::RegistryClient& client, const oci::Reference& reference,
                     const oci::Descriptor& blob, const oci::Digest& diff_id);
  Result<Image> load_image(const oci::Digest& manifest_digest) const;
  void measure_layers(const std::vector<oci::Digest>& diff_ids);

  // With mutex_ held.
  Image* find_cached_locked(const oci::Reference& reference);
  std::optional<Image> use_cached_locked(const oci::Reference& reference);
  bool layers_present_locked(const Image& image) const;
  std::vector<oci::Digest> removable_images_locked(TimePoint now) const;
  Status remove_image_locked(const oci::Digest& manifest_digest);
  Status remove_unneeded_layers_locked();
  Status save_index_locked() const;
  // After a use of an image: saves the index when it was last saved a minute ago or earlier.
  void save_use_locked() const;

  const Layout& layout_;
  const ImageStoreOptions options_;
  const Clock& clock_;

  mutable std::mutex mutex_;
  mutable StateFile index_file_;                   // images/index.json
  mutable std::optional<TimePoint> index_saved_;   // when index_file_ was last written
  std::map<std::string, oci::Digest> references_;  // normalised reference → manifest digest
  std::map<oci::Digest, Image> images_;
  std::map<oci::Digest, uint64_t> layer_bytes_;  // by diff_id: disk use of the unpacked tree
  std::map<oci::Digest, int> in_use_;            // acquire() count
  std::multiset<oci::Digest> pulling_images_;    // manifests being pulled: not removable
  std::multiset<oci::Digest> pulling_layers_;    // their layers: not removable
  std::map<std::string, std::shared_ptr<Flight<Result<Image>>>> pulls_;  // by reference, login
  std::map<oci::Digest, std::shared_ptr<Flight<Status>>> unpacks_;       // by diff_id

  struct KeptClient {
    std::shared_ptr<oci::RegistryClient> client;
    TimePoint made;
  };
  std::mutex clients_mutex_;
  std::map<std::string, KeptClient> clients_;  // by registry and login
};

}  // namespace wharf::agent
