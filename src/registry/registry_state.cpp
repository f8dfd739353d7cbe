// RegistryState: the in-memory registry metadata, its store records and its invariants.
#include "registry/registry_state.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <mutex>

#include "common/arn.hpp"
#include "common/log.hpp"
#include "registry/blob_store.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

constexpr const char* kRepositoryKind = "ecr.repository";
constexpr const char* kImageKind = "ecr.image";
constexpr const char* kTagKind = "ecr.tag";
constexpr const char* kBlobLinkKind = "ecr.blob_link";
constexpr const char* kPullKind = "ecr.image_pull";
constexpr const char* kScanKind = "ecr.image_scan";
constexpr auto kPullWriteInterval = std::chrono::minutes(1);

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_tag_char(char c) {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

// One path component: alphanumeric runs joined by '.', '_', '__' or any run of '-'.
bool valid_component(std::string_view component) {
  std::size_t pos = 0;
  while (true) {
    std::size_t run = pos;
    while (pos < component.size() && is_lower_alnum(component[pos])) ++pos;
    if (pos == run) return false;  // empty, or a separator not followed by an alphanumeric
    if (pos == component.size()) return true;
    char separator = component[pos];
    std::size_t start = pos;
    while (pos < component.size() && component[pos] == separator) ++pos;
    std::size_t length = pos - start;
    bool ok =
        (separator == '.' && length == 1) || (separator == '_' && length <= 2) || separator == '-';
    if (!ok) return false;
  }
}

bool wildcard_match(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern.front() == '*') {
    for (std::size_t skip = 0; skip <= text.size(); ++skip) {
      if (wildcard_match(pattern.substr(1), text.substr(skip))) return true;
    }
    return false;
  }
  return !text.empty() && pattern.front() == text.front() &&
         wildcard_match(pattern.substr(1), text.substr(1));
}

int64_t to_millis(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

TimePoint from_millis(int64_t millis) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(millis)));
}

std::string partition_key(std::string_view region, std::string_view account) {
  return std::string(region) + "/" + std::string(account);
}

// Store keys: names never contain '@' or ':', so these cannot collide.
std::string repository_key(const RepositoryRef& ref) {
  return ref.region + "/" + ref.account_id + "/" + ref.name;
}
std::string image_key(const RepositoryRef& ref, const oci::Digest& digest) {
  return repository_key(ref) + "@" + digest.str();
}
std::string tag_key(const RepositoryRef& ref, std::string_view tag) {
  return repository_key(ref) + ":" + std::string(tag);
}

bj::object ref_fields(const RepositoryRef& ref) {
  return bj::object{
      {"region", ref.region}, {"accountId", ref.account_id}, {"repository", ref.name}};
}

store::Mutation put_record(const char* kind, std::string key, bj::object value) {
  return {kind, std::move(key), bj::serialize(value)};
}

store::Mutation delete_record(const char* kind, std::string key) {
  return {kind, std::move(key), std::nullopt};
}

bj::object repository_to_store(const Repository& repository) {
  bj::object value = ref_fields(repository.ref);
  value["arn"] = repository.arn;
  value["createdAt"] = to_millis(repository.created_at);
  value["tagMutability"] = repository.tag_mutability;
  bj::array exclusions;
  for (const auto& filter : repository.tag_mutability_exclusions) exclusions.emplace_back(filter);
  value["tagMutabilityExclusions"] = std::move(exclusions);
  value["scanOnPush"] = repository.scan_on_push;
  value["encryptionType"] = repository.encryption_type;
  if (repository.kms_key) value["kmsKey"] = *repository.kms_key;
  bj::object tags;
  for (const auto& [key, tag_value] : repository.tags) tags[key] = tag_value;
  value["tags"] = std::move(tags);
  if (repository.policy) value["policy"] = *repository.policy;
  if (repository.lifecycle_policy) value["lifecyclePolicy"] = *repository.lifecycle_policy;
  if (repository.lifecycle_evaluated_at) {
    value["lifecycleEvaluatedAt"] = to_millis(*repository.lifecycle_evaluated_at);
  }
  return value;
}

std::string string_member(const bj::object& object, std::string_view key) {
  const bj::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::optional<std::string> optional_member(const bj::object& object, std::string_view key) {
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return std::string(value->as_string());
}

int64_t int_member(const bj::object& object, std::string_view key) {
  const bj::value* value = object.if_contains(key);
  return value != nullptr && value->is_int64() ? value->as_int64() : 0;
}

RepositoryRef ref_from_store(const bj::object& value) {
  return {string_member(value, "region"), string_member(value, "accountId"),
          string_member(value, "repository")};
}

Repository repository_from_store(const bj::object& value) {
  Repository repository;
  repository.ref = ref_from_store(value);
  repository.arn = string_member(value, "arn");
  repository.created_at = from_millis(int_member(value, "createdAt"));
  repository.tag_mutability = string_member(value, "tagMutability");
  if (const auto* exclusions = value.if_contains("tagMutabilityExclusions");
      exclusions != nullptr && exclusions->is_array()) {
    for (const auto& filter : exclusions->as_array()) {
      if (filter.is_string()) repository.tag_mutability_exclusions.emplace_back(filter.as_string());
    }
  }
  const bj::value* scan = value.if_contains("scanOnPush");
  repository.scan_on_push = scan != nullptr && scan->is_bool() && scan->as_bool();
  repository.encryption_type = string_member(value, "encryptionType");
  repository.kms_key = optional_member(value, "kmsKey");
  if (const auto* tags = value.if_contains("tags"); tags != nullptr && tags->is_object()) {
    for (const auto& [key, tag_value] : tags->as_object()) {
      if (tag_value.is_string()) repository.tags[key] = tag_value.as_string();
    }
  }
  repository.policy = optional_member(value, "policy");
  repository.lifecycle_policy = optional_member(value, "lifecyclePolicy");
  if (value.contains("lifecycleEvaluatedAt")) {
    repository.lifecycle_evaluated_at = from_millis(int_member(value, "lifecycleEvaluatedAt"));
  }
  return repository;
}

Result<bj::object> parse_record(const store::Record& record) {
  boost::system::error_code ec;
  bj::value value = bj::parse(record.value, ec);
  if (ec || !value.is_object()) {
    return fail(ErrorCode::kInternal, "record " + record.kind + " " + record.key + " is not JSON");
  }
  return std::move(value.as_object());
}

Error repository_not_found(const RepositoryRef& ref) {
  return Error{ErrorCode::kRepositoryNotFound, "The repository with name '" + ref.name +
                                                   "' does not exist in the registry with id '" +
                                                   ref.account_id + "'"};
}

Error image_not_found(const RepositoryRef& ref, std::string_view what) {
  return Error{ErrorCode::kImageNotFound, "The image with " + std::string(what) +
                                              " does not exist within the repository with name '" +
                                              ref.name + "'"};
}

}  // namespace

// ---- free functions and small types ----

Status validate_repository_name(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return invalid("repository name must have 1 to 255 characters");
  }
  std::size_t start = 0;
  while (true) {
    std::size_t slash = name.find('/', start);
    std::string_view component = name.substr(start, slash - start);
    if (!valid_component(component)) {
      return invalid("repository name '" + std::string(name) +
                     "' must be lower-case path components of letters and digits joined by "
                     "'.', '_', '__' or '-', separated by '/'");
    }
    if (slash == std::string_view::npos) return {};
    start = slash + 1;
  }
}

Status validate_tag(std::string_view tag) {
  bool ok = !tag.empty() && tag.size() <= 128 && tag.front() != '.' && tag.front() != '-' &&
            std::all_of(tag.begin(), tag.end(), is_tag_char);
  if (ok) return {};
  return fail(ErrorCode::kInvalidTagParameter,
              "tag '" + std::string(tag) +
                  "' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with "
                  "'.' or '-'");
}

bool Repository::tag_is_immutable(std::string_view tag) const {
  if (tag_mutability == kImmutable) return true;
  if (tag_mutability == kMutable) return false;
  bool excluded =
      std::any_of(tag_mutability_exclusions.begin(), tag_mutability_exclusions.end(),
                  [&](const std::string& filter) { return wildcard_match(filter, tag); });
  if (tag_mutability == kImmutableWithExclusion) return !excluded;
  return excluded;  // MUTABLE_WITH_EXCLUSION
}

std::string Image::artifact_media_type() const {
  return parsed && parsed->config ? parsed->config->media_type : std::string();
}

std::optional<oci::Digest> Image::subject() const {
  if (!parsed || !parsed->subject) return std::nullopt;
  return parsed->subject->digest;
}

// ---- RegistryState ----

struct RegistryState::RepositoryEntry {
  Repository repository;
  std::map<oci::Digest, Image> images;
  std::map<std::string, oci::Digest, std::less<>> tags;    // tag → image
  std::map<oci::Digest, uint64_t> blobs;                   // linked blob → size
  std::map<oci::Digest, std::set<oci::Digest>> referrers;  // subject → images naming it
  std::map<oci::Digest, std::string> scans;
  std::map<oci::Digest, TimePoint> pulls_written;  // last pull time sent to the store

  void add_image(Image image) {
    if (auto subject = image.subject()) referrers[*subject].insert(image.digest);
    oci::Digest digest = image.digest;
    images.insert_or_assign(std::move(digest), std::move(image));
  }

  // Removes the image with its tags, scan and pull records; returns the store mutations.
  std::vector<store::Mutation> erase_image(const oci::Digest& digest) {
    std::vector<store::Mutation> mutations;
    auto image = images.find(digest);
    if (image == images.end()) return mutations;
    const RepositoryRef& ref = repository.ref;
    for (const std::string& tag : image->second.tags) {
      tags.erase(tag);
      mutations.push_back(delete_record(kTagKind, tag_key(ref, tag)));
    }
    if (auto subject = image->second.subject()) {
      auto listed = referrers.find(*subject);
      if (listed != referrers.end()) {
        listed->second.erase(digest);
        if (listed->second.empty()) referrers.erase(listed);
      }
    }
    mutations.push_back(delete_record(kImageKind, image_key(ref, digest)));
    mutations.push_back(delete_record(kPullKind, image_key(ref, digest)));
    mutations.push_back(delete_record(kScanKind, image_key(ref, digest)));
    scans.erase(digest);
    pulls_written.erase(digest);
    images.erase(image);
    return mutations;
  }

  bool listed_by_an_index(const oci::Digest& digest) const {
    for (const auto& [index_digest, image] : images) {
      if (!image.parsed->is_index()) continue;
      for (const auto& child : image.parsed->manifests) {
        if (child.digest == digest) return true;
      }
    }
    return false;
  }
};

RegistryState::RegistryState(store::Store& store, BlobStore& blobs, const Clock& clock)
    : store_(store), blobs_(blobs), clock_(clock) {}

RegistryState::~RegistryState() = default;

void RegistryState::add_push_hook(PushHook hook) {
  std::unique_lock lock(mutex_);
  push_hooks_.push_back(std::move(hook));
}

RegistryState::RepositoryEntry* RegistryState::find_entry(const RepositoryRef& ref) const {
  auto partition = partitions_.find(partition_key(ref.region, ref.account_id));
  if (partition == partitions_.end()) return nullptr;
  auto entry = partition->second.find(ref.name);
  return entry == partition->second.end() ? nullptr : entry->second.get();
}

void RegistryState::persist(std::vector<store::Mutation> mutations,
                            std::function<void(Status)> done) {
  store_.commit(std::move(mutations), std::move(done));
}

// ---- loading ----

Status RegistryState::load() {
  std::unique_lock lock(mutex_);
  auto each = [this](const char* kind, auto&& apply) -> Status {
    auto records = store_.load(kind);
    if (!records) return std::unexpected(records.error().context(std::string("loading ") + kind));
    for (const auto& record : *records) {
      auto value = parse_record(record);
      if (!value) return std::unexpected(value.error());
      RepositoryRef ref = ref_from_store(*value);
      RepositoryEntry* entry = find_entry(ref);
      if (entry == nullptr && std::string_view(kind) != kRepositoryKind) {
        spdlog::warn("registry: ignoring {} {}: its repository is gone", kind, record.key);
        continue;
      }
      if (auto status = apply(ref, entry, *value); !status) {
        return std::unexpected(status.error().context("record " + record.key));
      }
    }
    return {};
  };
  auto digest_of_record = [](const bj::object& value) {
    return oci::parse_digest(string_member(value, "digest"));
  };

  Status status =
      each(kRepositoryKind,
           [this](const RepositoryRef& ref, RepositoryEntry*, const bj::object& value) -> Status {
             auto entry = std::make_unique<RepositoryEntry>();
             entry->repository = repository_from_store(value);
             partitions_[partition_key(ref.region, ref.account_id)][ref.name] = std::move(entry);
             return {};
           });
  if (status) {
    status = each(
        kImageKind,
        [&](const RepositoryRef&, RepositoryEntry* entry, const bj::object& value) -> Status {
          auto digest = digest_of_record(value);
          if (!digest) return std::unexpected(digest.error());
          Image image;
          image.digest = *digest;
          image.media_type = string_member(value, "mediaType");
          auto manifest = std::make_shared<const std::string>(string_member(value, "manifest"));
          auto parsed = oci::parse_manifest(*manifest, image.media_type);
          if (!parsed) return std::unexpected(parsed.error());
          image.manifest = std::move(manifest);
          image.parsed = std::make_shared<const oci::Manifest>(std::move(*parsed));
          image.size_in_bytes = int_member(value, "size");
          image.pushed_at = from_millis(int_member(value, "pushedAt"));
          entry->add_image(std::move(image));
          return {};
        });
  }
  if (status) {
    status =
        each(kTagKind,
             [&](const RepositoryRef&, RepositoryEntry* entry, const bj::object& value) -> Status {
               auto digest = digest_of_record(value);
               if (!digest) return std::unexpected(digest.error());
               auto image = entry->images.find(*digest);
               if (image == entry->images.end()) return {};  // removed with its image
               std::string tag = string_member(value, "tag");
               image->second.tags.push_back(tag);
               entry->tags[tag] = *digest;
               return {};
             });
  }
  if (status) {
    status =
        each(kBlobLinkKind,
             [&](const RepositoryRef&, RepositoryEntry* entry, const bj::object& value) -> Status {
               auto digest = digest_of_record(value);
               if (!digest) return std::unexpected(digest.error());
               entry->blobs[*digest] = static_cast<uint64_t>(int_member(value, "size"));
               return {};
             });
  }
  if (status) {
    status =
        each(kPullKind,
             [&](const RepositoryRef&, RepositoryEntry* entry, const bj::object& value) -> Status {
               auto digest = digest_of_record(value);
               if (!digest) return std::unexpected(digest.error());
               auto image = entry->images.find(*digest);
               if (image == entry->images.end()) return {};
               image->second.last_pulled_at = from_millis(int_member(value, "at"));
               entry->pulls_written[*digest] = *image->second.last_pulled_at;
               return {};
             });
  }
  if (status) {
    status =
        each(kScanKind,
             [&](const RepositoryRef&, RepositoryEntry* entry, const bj::object& value) -> Status {
               auto digest = digest_of_record(value);
               if (!digest) return std::unexpected(digest.error());
               if (entry->images.contains(*digest))
                 entry->scans[*digest] = string_member(value, "result");
               return {};
             });
  }
  for (auto& [partition, repositories] : partitions_) {
    for (auto& [name, entry] : repositories) {
      for (auto& [digest, image] : entry->images) std::sort(image.tags.begin(), image.tags.end());
    }
  }
  return status;
}

// ---- repositories ----

void RegistryState::create_repository(Repository initial, Done<Repository> done) {
  if (auto status = validate_repository_name(initial.ref.name); !status) {
    return done(std::unexpected(status.error()));
  }
  std::unique_lock lock(mutex_);
  if (find_entry(initial.ref) != nullptr) {
    lock.unlock();
    return done(
        fail(ErrorCode::kRepositoryAlreadyExists, "The repository with name '" + initial.ref.name +
                                                      "' already exists in the registry with id '" +
                                                      initial.ref.account_id + "'"));
  }
  initial.arn = Arn{"aws", "ecr", initial.ref.region, initial.ref.account_id,
                    "repository/" + initial.ref.name}
                    .str();
  initial.created_at = clock_.now();
  auto entry = std::make_unique<RepositoryEntry>();
  entry->repository = initial;
  partitions_[partition_key(initial.ref.region, initial.ref.account_id)][initial.ref.name] =
      std::move(entry);
  store::Mutation mutation =
      put_record(kRepositoryKind, repository_key(initial.ref), repository_to_store(initial));
  persist({std::move(mutation)},
          [done = std::move(done), repository = std::move(initial)](Status status) {
            if (!status) return done(std::unexpected(status.error()));
            done(repository);
          });
}

Result<Repository> RegistryState::repository(const RepositoryRef& ref) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  return entry->repository;
}

std::vector<Repository> RegistryState::list_repositories(std::string_view region,
                                                         std::string_view account_id) const {
  std::shared_lock lock(mutex_);
  std::vector<Repository> repositories;
  auto partition = partitions_.find(partition_key(region, account_id));
  if (partition == partitions_.end()) return repositories;
  for (const auto& [name, entry] : partition->second) repositories.push_back(entry->repository);
  return repositories;
}

void RegistryState::update_repository(const RepositoryRef& ref,
                                      std::function<Status(Repository&)> change,
                                      Done<Repository> done) {
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) {
    lock.unlock();
    return done(std::unexpected(repository_not_found(ref)));
  }
  Repository updated = entry->repository;
  if (auto status = change(updated); !status) {
    lock.unlock();
    return done(std::unexpected(status.error()));
  }
  if (updated.ref != ref || updated.arn != entry->repository.arn ||
      updated.created_at != entry->repository.created_at) {
    spdlog::critical("registry: update_repository changed the identity of {}", ref.name);
    std::abort();
  }
  entry->repository = updated;
  store::Mutation mutation =
      put_record(kRepositoryKind, repository_key(ref), repository_to_store(updated));
  persist({std::move(mutation)},
          [done = std::move(done), updated = std::move(updated)](Status status) {
            if (!status) return done(std::unexpected(status.error()));
            done(updated);
          });
}

void RegistryState::delete_repository(const RepositoryRef& ref, bool force, Done<Repository> done) {
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) {
    lock.unlock();
    return done(std::unexpected(repository_not_found(ref)));
  }
  if (!force && !entry->images.empty()) {
    lock.unlock();
    return done(fail(ErrorCode::kRepositoryNotEmpty,
                     "The repository with name '" + ref.name + "' in registry with id '" +
                         ref.account_id + "' cannot be deleted because it still contains images"));
  }
  std::vector<store::Mutation> mutations;
  while (!entry->images.empty()) {
    auto erased = entry->erase_image(entry->images.begin()->first);
    std::move(erased.begin(), erased.end(), std::back_inserter(mutations));
  }
  for (const auto& [digest, size] : entry->blobs) {
    mutations.push_back(delete_record(kBlobLinkKind, image_key(ref, digest)));
  }
  mutations.push_back(delete_record(kRepositoryKind, repository_key(ref)));
  Repository removed = entry->repository;
  partitions_[partition_key(ref.region, ref.account_id)].erase(ref.name);
  persist(std::move(mutations),
          [done = std::move(done), removed = std::move(removed)](Status status) {
            if (!status) return done(std::unexpected(status.error()));
            done(removed);
          });
}

// ---- images ----

Result<Image> RegistryState::find_image(const RepositoryRef& ref,
                                        const ImageSelector& selector) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  std::optional<oci::Digest> digest = selector.digest;
  if (selector.tag) {
    auto tagged = entry->tags.find(*selector.tag);
    if (tagged == entry->tags.end() || (digest && *digest != tagged->second)) {
      return std::unexpected(image_not_found(ref, "tag '" + *selector.tag + "'"));
    }
    digest = tagged->second;
  }
  if (!digest) return invalid("name an image by digest or tag");
  auto image = entry->images.find(*digest);
  if (image == entry->images.end()) {
    return std::unexpected(image_not_found(ref, "digest '" + digest->str() + "'"));
  }
  return image->second;
}

Result<std::vector<Image>> RegistryState::list_images(const RepositoryRef& ref) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  std::vector<Image> images;
  images.reserve(entry->images.size());
  for (const auto& [digest, image] : entry->images) images.push_back(image);
  return images;
}

Result<std::vector<std::string>> RegistryState::list_tags(const RepositoryRef& ref) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  std::vector<std::string> tags;
  tags.reserve(entry->tags.size());
  for (const auto& [tag, digest] : entry->tags) tags.push_back(tag);
  return tags;
}

Result<std::vector<Image>> RegistryState::referrers(const RepositoryRef& ref,
                                                    const oci::Digest& subject) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  std::vector<Image> images;
  auto listed = entry->referrers.find(subject);
  if (listed == entry->referrers.end()) return images;
  for (const oci::Digest& digest : listed->second) images.push_back(entry->images.at(digest));
  return images;
}

void RegistryState::put_image(const RepositoryRef& ref, PutImageRequest request,
                              Done<PutImageResult> done) {
  auto parsed = oci::parse_manifest(request.manifest, request.content_type);
  if (!parsed) return done(std::unexpected(parsed.error()));
  oci::Digest digest =
      oci::digest_of(request.manifest, request.digest ? request.digest->algorithm : "sha256");
  if (request.digest && *request.digest != digest) {
    return done(
        fail(ErrorCode::kImageDigestDoesNotMatch,
             "the manifest's digest is " + digest.str() + ", not " + request.digest->str()));
  }
  if (request.tag) {
    if (auto status = validate_tag(*request.tag); !status) {
      return done(std::unexpected(status.error()));
    }
  }

  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  auto refuse = [&](Error error) {
    lock.unlock();
    done(std::unexpected(std::move(error)));
  };
  if (entry == nullptr) return refuse(repository_not_found(ref));
  for (const oci::Descriptor& blob : parsed->blobs()) {
    if (!entry->blobs.contains(blob.digest) || !blobs_.retain(blob.digest)) {
      return refuse(Error{ErrorCode::kLayersNotFound,
                          "blob " + blob.digest.str() + " is not in repository " + ref.name});
    }
  }
  int64_t size = parsed->blob_bytes();
  for (const oci::Descriptor& child : parsed->manifests) {
    auto found = entry->images.find(child.digest);
    if (found == entry->images.end()) {
      return refuse(Error{ErrorCode::kReferencedImagesNotFound,
                          "manifest " + child.digest.str() + " is not in repository " + ref.name});
    }
    size += found->second.size_in_bytes;
  }
  std::optional<oci::Digest> previous;  // the image the tag named before
  if (request.tag) {
    auto tagged = entry->tags.find(*request.tag);
    if (tagged != entry->tags.end()) previous = tagged->second;
    if (previous && *previous != digest && entry->repository.tag_is_immutable(*request.tag)) {
      return refuse(Error{ErrorCode::kImageTagAlreadyExists,
                          "The image tag '" + *request.tag + "' already exists in the '" +
                              ref.name +
                              "' repository and cannot be overwritten because the tag "
                              "is immutable."});
    }
  }

  std::vector<store::Mutation> mutations;
  auto existing = entry->images.find(digest);
  bool created = existing == entry->images.end();
  if (created) {
    Image image;
    image.digest = digest;
    image.media_type = parsed->media_type;
    image.manifest = std::make_shared<const std::string>(std::move(request.manifest));
    image.parsed = std::make_shared<const oci::Manifest>(std::move(*parsed));
    image.size_in_bytes = size;
    image.pushed_at = clock_.now();
    bj::object value = ref_fields(ref);
    value["digest"] = digest.str();
    value["mediaType"] = image.media_type;
    value["manifest"] = *image.manifest;
    value["pushedAt"] = to_millis(image.pushed_at);
    value["size"] = image.size_in_bytes;
    mutations.push_back(put_record(kImageKind, image_key(ref, digest), std::move(value)));
    entry->add_image(std::move(image));
  }
  bool tag_moved = request.tag && previous != digest;
  if (tag_moved) {
    if (previous) std::erase(entry->images.at(*previous).tags, *request.tag);
    auto& tags = entry->images.at(digest).tags;
    tags.insert(std::upper_bound(tags.begin(), tags.end(), *request.tag), *request.tag);
    entry->tags[*request.tag] = digest;
    bj::object value = ref_fields(ref);
    value["tag"] = *request.tag;
    value["digest"] = digest.str();
    mutations.push_back(put_record(kTagKind, tag_key(ref, *request.tag), std::move(value)));
  }
  bool unchanged = !created && !tag_moved;
  PutImageResult result{entry->images.at(digest), unchanged};
  std::vector<PushHook> hooks = unchanged ? std::vector<PushHook>() : push_hooks_;
  Repository repository = entry->repository;
  // Even an unchanged push waits for the store: the image may be a concurrent push's, not yet
  // durable.
  persist(std::move(mutations),
          [done = std::move(done), result = std::move(result), hooks = std::move(hooks),
           repository = std::move(repository)](Status status) mutable {
            if (!status) return done(std::unexpected(status.error()));
            for (const PushHook& hook : hooks) hook(repository, result.image);
            done(std::move(result));
          });
}

void RegistryState::remove_image(const RepositoryRef& ref, const ImageSelector& selector,
                                 RemoveImageOptions options, Done<RemoveImageResult> done) {
  std::unique_lock lock(mutex_);
  auto refuse = [&](Error error) {
    lock.unlock();
    done(std::unexpected(std::move(error)));
  };
  RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return refuse(repository_not_found(ref));
  std::optional<oci::Digest> digest = selector.digest;
  if (selector.tag) {
    auto tagged = entry->tags.find(*selector.tag);
    if (tagged == entry->tags.end() || (digest && *digest != tagged->second)) {
      return refuse(image_not_found(ref, "tag '" + *selector.tag + "'"));
    }
    digest = tagged->second;
  }
  if (!digest) return refuse(Error{ErrorCode::kInvalidParameter, "name an image by digest or tag"});
  auto found = entry->images.find(*digest);
  if (found == entry->images.end()) {
    return refuse(image_not_found(ref, "digest '" + digest->str() + "'"));
  }
  // By digest deletes the image; by tag untags, and deletes only per the options.
  bool untag_only =
      !selector.digest && !(options.delete_when_last_tag_removed && found->second.tags.size() == 1);
  if (!untag_only && options.refuse_if_referenced && entry->listed_by_an_index(*digest)) {
    return refuse(Error{ErrorCode::kResourceInUse,
                        "image " + digest->str() + " is listed by an image index"});
  }
  RemoveImageResult result{found->second, {}, !untag_only};
  std::vector<store::Mutation> mutations;
  if (untag_only) {
    std::erase(found->second.tags, *selector.tag);
    entry->tags.erase(*selector.tag);
    mutations.push_back(delete_record(kTagKind, tag_key(ref, *selector.tag)));
    result.removed_tags.push_back(*selector.tag);
  } else {
    result.removed_tags = found->second.tags;
    mutations = entry->erase_image(*digest);
  }
  persist(std::move(mutations),
          [done = std::move(done), result = std::move(result)](Status status) mutable {
            if (!status) return done(std::unexpected(status.error()));
            done(std::move(result));
          });
}

void RegistryState::record_pull(const RepositoryRef& ref, const oci::Digest& digest) {
  TimePoint now = clock_.now();
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return;
  auto image = entry->images.find(digest);
  if (image == entry->images.end()) return;
  image->second.last_pulled_at = now;
  auto written = entry->pulls_written.find(digest);
  if (written != entry->pulls_written.end() && now - written->second < kPullWriteInterval) return;
  entry->pulls_written[digest] = now;
  bj::object value = ref_fields(ref);
  value["digest"] = digest.str();
  value["at"] = to_millis(now);
  persist({put_record(kPullKind, image_key(ref, digest), std::move(value))},
          [name = ref.name](Status status) {
            if (!status)
              spdlog::warn("registry: recording a pull of {}: {}", name, status.error().message);
          });
}

// ---- scan results ----

void RegistryState::set_scan_result(const RepositoryRef& ref, const oci::Digest& digest,
                                    std::string json, Done<void> done) {
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  std::optional<Error> error;
  if (entry == nullptr) error = repository_not_found(ref);
  if (!error && !entry->images.contains(digest)) {
    error = image_not_found(ref, "digest '" + digest.str() + "'");
  }
  if (error) {
    lock.unlock();
    return done(std::unexpected(std::move(*error)));
  }
  bj::object value = ref_fields(ref);
  value["digest"] = digest.str();
  value["result"] = json;
  entry->scans[digest] = std::move(json);
  persist({put_record(kScanKind, image_key(ref, digest), std::move(value))}, std::move(done));
}

Result<std::optional<std::string>> RegistryState::scan_result(const RepositoryRef& ref,
                                                              const oci::Digest& digest) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  if (!entry->images.contains(digest)) {
    return std::unexpected(image_not_found(ref, "digest '" + digest.str() + "'"));
  }
  auto scan = entry->scans.find(digest);
  if (scan == entry->scans.end()) return std::optional<std::string>();
  return std::optional<std::string>(scan->second);
}

// ---- blob links ----

void RegistryState::link_blob(const RepositoryRef& ref, const oci::Digest& digest, uint64_t size,
                              Done<void> done) {
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) {
    lock.unlock();
    return done(std::unexpected(repository_not_found(ref)));
  }
  std::vector<store::Mutation> mutations;
  auto linked = entry->blobs.find(digest);
  if (linked == entry->blobs.end() || linked->second != size) {
    entry->blobs[digest] = size;
    bj::object value = ref_fields(ref);
    value["digest"] = digest.str();
    value["size"] = size;
    mutations.push_back(put_record(kBlobLinkKind, image_key(ref, digest), std::move(value)));
  }
  persist(std::move(mutations), std::move(done));
}

Result<std::optional<uint64_t>> RegistryState::linked_blob(const RepositoryRef& ref,
                                                           const oci::Digest& digest) const {
  std::shared_lock lock(mutex_);
  const RepositoryEntry* entry = find_entry(ref);
  if (entry == nullptr) return std::unexpected(repository_not_found(ref));
  if (!entry->blobs.contains(digest)) return std::optional<uint64_t>();
  return blobs_.size(digest);
}

void RegistryState::unlink_blob(const RepositoryRef& ref, const oci::Digest& digest,
                                Done<void> done) {
  std::unique_lock lock(mutex_);
  RepositoryEntry* entry = find_entry(ref);
  std::optional<Error> error;
  if (entry == nullptr) error = repository_not_found(ref);
  if (!error && !entry->blobs.contains(digest)) {
    error = Error{ErrorCode::kLayersNotFound,
                  "blob " + digest.str() + " is not in repository " + ref.name};
  }
  if (error) {
    lock.unlock();
    return done(std::unexpected(std::move(*error)));
  }
  entry->blobs.erase(digest);
  persist({delete_record(kBlobLinkKind, image_key(ref, digest))}, std::move(done));
}

// ---- garbage collection ----

std::set<oci::Digest> RegistryState::referenced_blobs() const {
  std::shared_lock lock(mutex_);
  std::set<oci::Digest> referenced;
  for (const auto& [partition, repositories] : partitions_) {
    for (const auto& [name, entry] : repositories) {
      for (const auto& [digest, image] : entry->images) {
        for (const oci::Descriptor& blob : image.parsed->blobs()) referenced.insert(blob.digest);
      }
    }
  }
  return referenced;
}

void RegistryState::forget_blobs(const std::vector<oci::Digest>& removed) {
  if (removed.empty()) return;
  std::unique_lock lock(mutex_);
  std::vector<store::Mutation> mutations;
  for (const oci::Digest& digest : removed) {
    if (blobs_.size(digest)) continue;  // stored again since
    for (auto& [partition, repositories] : partitions_) {
      for (auto& [name, entry] : repositories) {
        if (entry->blobs.erase(digest) > 0) {
          mutations.push_back(
              delete_record(kBlobLinkKind, image_key(entry->repository.ref, digest)));
        }
      }
    }
  }
  if (mutations.empty()) return;
  persist(std::move(mutations), [](Status status) {
    if (!status) spdlog::warn("registry: forgetting collected blobs: {}", status.error().message);
  });
}

std::size_t RegistryState::image_count() const {
  std::shared_lock lock(mutex_);
  std::size_t count = 0;
  for (const auto& [partition, repositories] : partitions_) {
    for (const auto& [name, entry] : repositories) count += entry->images.size();
  }
  return count;
}

}  // namespace wharf::registry
