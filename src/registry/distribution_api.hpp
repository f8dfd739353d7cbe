// The OCI Distribution Spec v1.1 registry under /v2/: manifests, blobs, uploads, tags,
// referrers and the token endpoint, over RegistryState and BlobStore.
#pragma once

#include <memory>
#include <string>

#include "common/clock.hpp"
#include "http/server.hpp"
#include "registry/auth.hpp"
#include "registry/blob_store.hpp"
#include "registry/registry_state.hpp"

namespace wharf::registry {

struct DistributionOptions {
  std::string default_account_id = "123456789012";  // owner of repositories anonymous pulls name
  std::size_t manifest_limit = 4 * 1024 * 1024;     // larger manifests are refused with 413
  int io_threads = 2;  // threads for blocking disk work (fsync when an upload completes)
};

// An http::Handler for every path under /v2/. Bodies of blob uploads stream into the
// BlobStore; everything else is small and buffered.
class DistributionApi final : public http::Handler {
 public:
  DistributionApi(RegistryState& state, BlobStore& blobs, const RegistryAuth& auth,
                  const Clock& clock, DistributionOptions options = {});
  ~DistributionApi() override;

  void handle(http::Request&& request, http::Responder respond) override;
  std::unique_ptr<http::BodySink> stream_body(const http::RequestHeader& header) override;
  // Manifests over the listener's body limit: 413 in the registry's error shape.
  http::Response payload_too_large(const http::RequestHeader& header, std::size_t limit) override;
  // Waits for blob work in flight (upload completions); call after the listener stopped.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::registry
