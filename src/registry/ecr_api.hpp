// The ECR API operations (AmazonEC2ContainerRegistry_V20150921, JSON 1.1), registered on the
// JSON protocol service, over the registry's state and blob store. Also runs what ECR runs in
// the background: lifecycle policies (periodically and after each push) and image scans (on
// request and on push).
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "common/clock.hpp"
#include "registry/auth.hpp"
#include "registry/blob_store.hpp"
#include "registry/ecr_model.hpp"
#include "registry/lifecycle.hpp"
#include "registry/registry_state.hpp"
#include "registry/scanner.hpp"
#include "common/work_queue.hpp"

namespace wharf::registry {

struct EcrOptions {
  // How often every lifecycle policy is applied; zero: only after pushes and when asked.
  std::chrono::seconds lifecycle_interval = std::chrono::minutes(5);
  int worker_threads = 2;  // for upload completion (fsync), scans and lifecycle runs
  // The partitions the periodic lifecycle round visits from start-up: these, and the AWS
  // regions of this account (more are learnt from calls and pushes).
  std::string default_region = "us-east-1";
  std::string account_id = "123456789012";
};

class EcrApi {
 public:
  EcrApi(RegistryState& state, BlobStore& blobs, const RegistryAuth& auth, ImageScanner& scanner,
         const Clock& clock, const aws::PageTokens& tokens, EcrOptions options = {});
  ~EcrApi();
  EcrApi(const EcrApi&) = delete;
  EcrApi& operator=(const EcrApi&) = delete;

  // Registers the operations, and the push hook for lifecycle and scan on push.
  void register_operations(aws::JsonService& service);
  // The base URL clients reach this server at ("http://127.0.0.1:8910"): ECR's proxyEndpoint,
  // and (without the scheme) the host of repositoryUri and download URLs.
  void set_endpoint(std::string endpoint);
  // Starts the periodic lifecycle thread (when the interval is not zero).
  void start();
  // Stops the periodic thread and lets queued uploads, scans and lifecycle runs finish; call
  // before the store closes.
  void stop();

  // Applies the repository's lifecycle policy now, waiting until the expired images are gone.
  // Returns what expired (nothing without a policy). Blocks: never call it on an event loop or
  // a store thread.
  Result<std::vector<LifecycleExpiration>> apply_lifecycle_policy(const RepositoryRef& ref);
  // Applies every known repository's policy (the periodic round); returns how many expired.
  std::size_t apply_lifecycle_policies();
  // Waits until queued scans and lifecycle runs are done (for tests).
  void drain() { workers_.drain(); }

 private:
  using Context = aws::CallContext;
  using Input = boost::json::object;
  using Reply = aws::JsonReply;

  // ecr_api.cpp: repositories, policies, tags, registry and authorization
  void create_repository(const Context& context, const Input& input, Reply reply);
  void describe_repositories(const Context& context, const Input& input, Reply reply);
  void delete_repository(const Context& context, const Input& input, Reply reply);
  void set_repository_policy(const Context& context, const Input& input, Reply reply);
  void get_repository_policy(const Context& context, const Input& input, Reply reply);
  void delete_repository_policy(const Context& context, const Input& input, Reply reply);
  void tag_resource(const Context& context, const Input& input, Reply reply);
  void untag_resource(const Context& context, const Input& input, Reply reply);
  void list_tags_for_resource(const Context& context, const Input& input, Reply reply);
  void describe_registry(const Context& context, const Input& input, Reply reply);
  void get_authorization_token(const Context& context, const Input& input, Reply reply);
  // ecr_image_api.cpp: images
  void list_images(const Context& context, const Input& input, Reply reply);
  void describe_images(const Context& context, const Input& input, Reply reply);
  void batch_get_image(const Context& context, const Input& input, Reply reply);
  void batch_delete_image(const Context& context, const Input& input, Reply reply);
  void put_image(const Context& context, const Input& input, Reply reply);
  void put_image_tag_mutability(const Context& context, const Input& input, Reply reply);
  void put_image_scanning_configuration(const Context& context, const Input& input, Reply reply);
  // ecr_layer_api.cpp: layers
  void batch_check_layer_availability(const Context& context, const Input& input, Reply reply);
  void initiate_layer_upload(const Context& context, const Input& input, Reply reply);
  void upload_layer_part(const Context& context, const Input& input, Reply reply);
  void complete_layer_upload(const Context& context, const Input& input, Reply reply);
  void get_download_url_for_layer(const Context& context, const Input& input, Reply reply);
  // ecr_lifecycle_api.cpp: lifecycle policies and previews
  void put_lifecycle_policy(const Context& context, const Input& input, Reply reply);
  void get_lifecycle_policy(const Context& context, const Input& input, Reply reply);
  void delete_lifecycle_policy(const Context& context, const Input& input, Reply reply);
  void start_lifecycle_policy_preview(const Context& context, const Input& input, Reply reply);
  void get_lifecycle_policy_preview(const Context& context, const Input& input, Reply reply);
  // ecr_scan_api.cpp: scans
  void start_image_scan(const Context& context, const Input& input, Reply reply);
  void describe_image_scan_findings(const Context& context, const Input& input, Reply reply);

  // The repository an operation names (repositoryName, registryId), after checking both.
  Result<RepositoryRef> repository_ref(const Context& context, const Input& input);
  // repository_ref() of a repository that exists (RepositoryNotFoundException otherwise).
  Result<RepositoryRef> existing_repository_ref(const Context& context, const Input& input);
  // repositoryRegistryId + repositoryName fields every per-repository response starts with.
  static boost::json::object repository_fields(const RepositoryRef& ref);
  std::string registry_host() const;
  std::string endpoint() const;
  void remember_partition(std::string_view region, std::string_view account_id);

  // Lifecycle and scanning internals (ecr_lifecycle_api.cpp, ecr_scan_api.cpp).
  void on_push(const Repository& repository, const Image& image);
  void queue_lifecycle(const RepositoryRef& ref);
  // Queues a scan unless one is running; false when the image cannot be scanned.
  Status queue_scan(const RepositoryRef& ref, const Image& image);
  void run_scan(const RepositoryRef& ref, const Image& image);
  bool scan_in_progress(const RepositoryRef& ref, const oci::Digest& digest) const;
  std::optional<StoredScan> stored_scan(const RepositoryRef& ref, const oci::Digest& digest) const;

  struct Preview {
    std::string policy_text;
    std::vector<LifecycleExpiration> expiring;
  };

  RegistryState& state_;
  BlobStore& blobs_;
  const RegistryAuth& auth_;
  ImageScanner& scanner_;
  const Clock& clock_;
  const aws::PageTokens& tokens_;
  EcrOptions options_;

  mutable std::mutex mutex_;  // guards everything below
  std::string endpoint_;
  std::set<std::pair<std::string, std::string>> partitions_;  // (region, account) seen
  std::set<std::pair<RepositoryRef, oci::Digest>> scans_running_;
  std::set<RepositoryRef> lifecycle_queued_;  // runs queued and not yet started
  std::map<RepositoryRef, Preview> previews_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread lifecycle_thread_;

  WorkQueue workers_;  // last: destroyed (joined) first
};

}  // namespace wharf::registry
