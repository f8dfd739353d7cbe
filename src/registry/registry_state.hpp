// The registry's authoritative metadata: repositories, images (manifests), tags, blob links,
// pull times and scan results, partitioned by region and account, made durable through the
// Store before any change is acknowledged. Shared by the /v2/ distribution API and the ECR API.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/digest.hpp"
#include "oci/manifest.hpp"
#include "store/store.hpp"

namespace wharf::registry {

class BlobStore;

// Which repository: repositories are partitioned by region, then by account.
struct RepositoryRef {
  std::string region;
  std::string account_id;
  std::string name;

  bool operator==(const RepositoryRef&) const = default;
  auto operator<=>(const RepositoryRef&) const = default;
};

// ECR tag mutability values.
inline constexpr std::string_view kMutable = "MUTABLE";
inline constexpr std::string_view kImmutable = "IMMUTABLE";
inline constexpr std::string_view kImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION";
inline constexpr std::string_view kMutableWithExclusion = "MUTABLE_WITH_EXCLUSION";

struct Repository {
  RepositoryRef ref;
  std::string arn;  // arn:aws:ecr:REGION:ACCOUNT:repository/NAME (set by create_repository)
  TimePoint created_at;
  std::string tag_mutability = std::string(kMutable);
  // Wildcard filters ('*' matches any run) for the *_WITH_EXCLUSION mutabilities.
  std::vector<std::string> tag_mutability_exclusions;
  bool scan_on_push = false;
  std::string encryption_type = "AES256";  // "AES256" | "KMS" | "KMS_DSSE"
  std::optional<std::string> kms_key;
  std::map<std::string, std::string> tags;          // resource tags: Key → Value
  std::optional<std::string> policy;                // repository policy JSON text
  std::optional<std::string> lifecycle_policy;      // lifecycle policy JSON text
  std::optional<TimePoint> lifecycle_evaluated_at;  // for GetLifecyclePolicy.lastEvaluatedAt

  // Whether re-pointing `tag` to another image is refused (mutability and exclusions).
  bool tag_is_immutable(std::string_view tag) const;
};

// One manifest stored in a repository.
struct Image {
  oci::Digest digest;
  std::string media_type;                       // the manifest's media type
  std::shared_ptr<const std::string> manifest;  // the exact bytes pushed
  std::shared_ptr<const oci::Manifest> parsed;  // the same, parsed
  std::vector<std::string> tags;                // sorted
  int64_t size_in_bytes = 0;  // ECR imageSizeInBytes: config + layers; an index: its children's
  TimePoint pushed_at;
  std::optional<TimePoint> last_pulled_at;  // ECR lastRecordedPullTime

  // The config's media type (ECR artifactMediaType); empty for an index.
  std::string artifact_media_type() const;
  // The manifest's subject digest (ECR subjectManifestDigest), if any.
  std::optional<oci::Digest> subject() const;
};

// Selects an image by digest, tag or both (then they must name the same image).
struct ImageSelector {
  std::optional<oci::Digest> digest;
  std::optional<std::string> tag;
};

struct PutImageRequest {
  std::string manifest;               // the exact bytes
  std::string content_type;           // the media type the client declared (may be empty)
  std::optional<std::string> tag;     // tag to point at the image
  std::optional<oci::Digest> digest;  // the digest the client says it has (PUT by digest)
};

struct PutImageResult {
  Image image;
  // True when the image already existed and the tag (if any) already pointed at it: nothing
  // changed (ECR PutImage then reports ImageAlreadyExistsException; /v2/ just succeeds).
  bool unchanged = false;
};

struct RemoveImageOptions {
  // ECR semantics: removing an image's last tag deletes the image. /v2/ DELETE by tag only
  // untags.
  bool delete_when_last_tag_removed = false;
  // Refuse (kResourceInUse) to delete an image that an index in the repository lists.
  bool refuse_if_referenced = false;
};

struct RemoveImageResult {
  Image image;  // the image as it was (tags included)
  std::vector<std::string> removed_tags;
  bool deleted = false;  // the image itself is gone (not just untagged)
};

// Completion of a state change: runs once, on a store thread after the change is durable, or at
// once on the calling thread when the request was refused. It must not block. No state lock is
// held while it runs, so it may call back into RegistryState.
template <typename T>
using Done = std::function<void(Result<T>)>;

// Called after each push that added an image or moved a tag, once durable and before the push's
// own completion (on a store thread, no state lock held; post real work elsewhere). Pushes
// through /v2/ and ECR PutImage alike. The ECR API registers lifecycle and scan-on-push here.
using PushHook = std::function<void(const Repository& repository, const Image& image)>;

class RegistryState {
 public:
  RegistryState(store::Store& store, BlobStore& blobs, const Clock& clock);
  ~RegistryState();

  // Reads everything back from the store; call once before serving.
  Status load();
  void add_push_hook(PushHook hook);

  // ---- repositories ----
  // Creates a repository from `initial` (its ref names it; arn and created_at are set here).
  // kInvalidParameter for a bad name, kRepositoryAlreadyExists.
  void create_repository(Repository initial, Done<Repository> done);
  Result<Repository> repository(const RepositoryRef& ref) const;  // kRepositoryNotFound
  // The account's repositories in the region, by name.
  std::vector<Repository> list_repositories(std::string_view region,
                                            std::string_view account_id) const;
  // Changes a repository's settings, tags or policies: `change` edits a copy under the state
  // lock (an error from it aborts the update and is passed to `done`); the result is persisted.
  // `change` must not alter ref, arn or created_at. kRepositoryNotFound.
  void update_repository(const RepositoryRef& ref, std::function<Status(Repository&)> change,
                         Done<Repository> done);
  // Deletes a repository and its images, tags and links. kRepositoryNotEmpty when it has
  // images and !force. Returns the repository as it was, with its image count.
  void delete_repository(const RepositoryRef& ref, bool force, Done<Repository> done);

  // ---- images ----
  // kRepositoryNotFound, kImageNotFound (also when digest and tag name different images).
  Result<Image> find_image(const RepositoryRef& ref, const ImageSelector& selector) const;
  // Every image of the repository, by digest.
  Result<std::vector<Image>> list_images(const RepositoryRef& ref) const;
  // Sorted tags. kRepositoryNotFound.
  Result<std::vector<std::string>> list_tags(const RepositoryRef& ref) const;
  // Images whose subject is `subject`, by digest. kRepositoryNotFound.
  Result<std::vector<Image>> referrers(const RepositoryRef& ref, const oci::Digest& subject) const;
  // Validates and stores a manifest, then points the tag at it. Errors: kRepositoryNotFound;
  // kUnsupportedImageType (schema 1, unknown type) and kInvalidParameter (malformed) from
  // parsing; kImageDigestDoesNotMatch when request.digest differs from the bytes' digest;
  // kInvalidTagParameter for a malformed tag; kLayersNotFound when the config or a layer is not
  // a blob of this repository; kReferencedImagesNotFound when an index lists a manifest the
  // repository lacks; kImageTagAlreadyExists when the tag is immutable and names another image.
  void put_image(const RepositoryRef& ref, PutImageRequest request, Done<PutImageResult> done);
  // Untags and/or deletes: by digest deletes the image and its tags; by tag removes the tag
  // (and the image too, per options). kRepositoryNotFound, kImageNotFound.
  void remove_image(const RepositoryRef& ref, const ImageSelector& selector,
                    RemoveImageOptions options, Done<RemoveImageResult> done);
  // Notes a pull of the image (ECR lastRecordedPullTime). Memory changes at once; the store
  // write is coalesced to at most one per image per minute and is not awaited.
  void record_pull(const RepositoryRef& ref, const oci::Digest& digest);

  // ---- scan results (opaque JSON kept for the ECR scanner) ----
  void set_scan_result(const RepositoryRef& ref, const oci::Digest& digest, std::string json,
                       Done<void> done);
  // nullopt when the image was never scanned. kRepositoryNotFound, kImageNotFound.
  Result<std::optional<std::string>> scan_result(const RepositoryRef& ref,
                                                 const oci::Digest& digest) const;

  // ---- blob links: which blobs a repository may use and serve ----
  // Makes a stored blob part of the repository (after an upload or a mount).
  void link_blob(const RepositoryRef& ref, const oci::Digest& digest, uint64_t size,
                 Done<void> done);
  // The blob's size if it is linked to the repository and still stored, else nullopt.
  // kRepositoryNotFound.
  Result<std::optional<uint64_t>> linked_blob(const RepositoryRef& ref,
                                              const oci::Digest& digest) const;
  // Removes a link (/v2/ DELETE of a blob). kRepositoryNotFound, kLayersNotFound.
  void unlink_blob(const RepositoryRef& ref, const oci::Digest& digest, Done<void> done);

  // ---- garbage collection support ----
  // Every blob digest any manifest references (configs and layers), across all regions.
  std::set<oci::Digest> referenced_blobs() const;
  // Drops links to blobs that garbage collection removed (those still absent from the store).
  void forget_blobs(const std::vector<oci::Digest>& removed);

  std::size_t image_count() const;

 private:
  struct RepositoryEntry;
  RepositoryEntry* find_entry(const RepositoryRef& ref) const;
  void persist(std::vector<store::Mutation> mutations, std::function<void(Status)> done);

  store::Store& store_;
  BlobStore& blobs_;
  const Clock& clock_;
  mutable std::shared_mutex mutex_;
  // "region/account" → repository name → entry
  std::map<std::string, std::map<std::string, std::unique_ptr<RepositoryEntry>, std::less<>>,
           std::less<>>
      partitions_;
  std::vector<PushHook> push_hooks_;
};

// Validates a repository name against the OCI distribution grammar (lower-case path components
// separated by '/', each alphanumeric runs joined by '.', '_', '__' or '-'), 255 characters at
// most. kInvalidParameter with the reason.
Status validate_repository_name(std::string_view name);
// Validates a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. kInvalidTagParameter.
Status validate_tag(std::string_view tag);

}  // namespace wharf::registry
