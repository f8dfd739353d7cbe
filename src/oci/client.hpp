// A client of the OCI distribution API: resolves references, pulls manifests and blobs with
// their digests verified, pushes blobs and manifests; anonymous, Basic and Bearer-token auth.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/digest.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"

namespace wharf::oci {

struct RegistryCredentials {
  std::string username;
  std::string password;
};

inline constexpr uint64_t kDefaultChunkSize = 64 << 20;

inline Platform linux_amd64() {
  Platform platform;
  platform.architecture = "amd64";
  platform.os = "linux";
  return platform;
}

struct ClientOptions {
  // Sent as HTTP Basic to registries that ask for it, and to token servers for Bearer tokens.
  // Without them every exchange is anonymous.
  std::optional<RegistryCredentials> credentials;
  // Plain http instead of https. Unset: http for loopback registries (localhost, 127.0.0.0/8,
  // [::1]), https for the rest.
  std::optional<bool> plain_http;
  bool insecure = false;  // https without certificate verification (self-signed test registries)
  // The image picked from an index or manifest list. An empty variant matches any variant but
  // prefers entries without one.
  Platform platform = linux_amd64();
  // Blobs larger than this are pushed in PATCH chunks of this size (a body limit of proxies and
  // some registries); 0 pushes every blob in one PUT.
  uint64_t chunk_size = kDefaultChunkSize;
  std::string user_agent = "wharf";
  const Clock* clock = nullptr;  // decides when cached tokens expire; nullptr: the system clock
};

// A manifest as the registry served it, its digest verified.
struct FetchedManifest {
  std::string media_type;
  std::string bytes;
  Digest digest;
};

// An image manifest for the configured platform, with the index it was picked from (if any).
struct ResolvedImage {
  Reference reference;  // the reference asked for, with `digest` set to the image manifest's
  FetchedManifest manifest;
  Manifest parsed;  // kind is kImage
  std::optional<FetchedManifest> index;
};

enum class BlobPush {
  kExisted,   // the repository already had it (HEAD)
  kMounted,   // mounted from another repository of the same registry
  kUploaded,  // sent
};

struct BlobSource {
  Digest digest;
  uint64_t size = 0;
  std::filesystem::path path;  // the blob's bytes
};

// Thread-safe: one client may serve several threads (tokens and connections are shared).
// Every error says what was being done: "pulling layer sha256:… of 127.0.0.1:5000/web:latest:
// …", with the registry's {"errors":[{code,message}]} when it sent them. Codes: kAccessDenied
// (401/403), kRepositoryNotFound (NAME_UNKNOWN), kImageNotFound (MANIFEST_UNKNOWN),
// kLayersNotFound (BLOB_UNKNOWN), kImageDigestDoesNotMatch (content not matching its digest),
// kUnsupportedImageType, kLimitExceeded (429), kInvalidParameter (other 4xx), kInternal
// (network, TLS, 5xx, local I/O).
class RegistryClient {
 public:
  explicit RegistryClient(ClientOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const ClientOptions& options() const;
  // "http://host:port" or "https://host" for a registry.
  std::string base_url(std::string_view registry) const;

  // GET /v2/: ok when the registry answers as a registry (200, or 401 asking for auth).
  Status ping(std::string_view registry);

  // The manifest at a tag or digest, as served (an index stays an index). With a digest
  // reference the bytes must hash to it; by tag, to the Docker-Content-Digest header if sent.
  Result<FetchedManifest> fetch_manifest(const Reference& reference);
  // The image manifest for the configured platform: an index or manifest list is followed to
  // its matching entry, which is fetched by digest.
  Result<ResolvedImage> resolve(const Reference& reference);

  // Streams a blob into `destination` through a temporary file beside it, renamed into place
  // only once size (when given) and digest match. Never holds the blob in memory.
  Status fetch_blob(const Reference& reference, const Digest& digest,
                    const std::filesystem::path& destination,
                    std::optional<uint64_t> expected_size = std::nullopt);
  // A small blob (an image config) in memory, verified; refused above `max_size` bytes.
  Result<std::string> fetch_blob_bytes(const Reference& reference, const Digest& digest,
                                       uint64_t max_size = 8 << 20);

  // HEAD /v2/<name>/blobs/<digest>.
  Result<bool> blob_exists(const Reference& reference, const Digest& digest);
  // Pushes a blob unless the repository has it: tries a cross-repository mount from
  // `mount_from` (a repository of the same registry) when given, else uploads in one PUT or in
  // chunks (see ClientOptions::chunk_size).
  Result<BlobPush> push_blob(const Reference& reference, const BlobSource& blob,
                             std::optional<std::string> mount_from = std::nullopt);
  // PUTs a manifest at the reference's tag (or digest) with its media type as Content-Type;
  // returns its digest, checked against what the registry reports.
  Result<Digest> push_manifest(const Reference& reference, std::string_view media_type,
                               std::string_view bytes);

  // Pulls an image (platform manifest, config, layers) into an OCI image layout directory
  // (oci-layout, index.json, blobs/<alg>/<hex>), skipping blobs already there. index.json lists
  // the image manifest, named by the reference's tag.
  Result<ResolvedImage> pull_image(const Reference& reference,
                                   const std::filesystem::path& layout_dir);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::oci
