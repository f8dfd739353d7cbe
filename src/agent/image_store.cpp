// The image store: pull behaviours, single-flight pulls, the persisted index, clean-up.
#include "agent/image_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "agent/files.hpp"
#include "agent/init_layer.hpp"
#include "agent/layer_unpack.hpp"
#include "agent/remove_tree.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/unique_fd.hpp"
#include "oci/temp_dir.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

// Runs a function when the scope ends, however it ends.
template <typename Function>
class ScopeExit {
 public:
  explicit ScopeExit(Function function) : function_(std::move(function)) {}
  ~ScopeExit() { function_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  Function function_;
};

std::unexpected<Error> local_failure(const std::string& doing) {
  return fail(ErrorCode::kInternal, doing + ": " + std::strerror(errno));
}

Result<std::string> read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return local_failure("reading " + path.string());
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return local_failure("reading " + path.string());
  return text.str();
}

Status make_directories(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return fail(ErrorCode::kInternal, "creating " + dir.string() + ": " + error.message());
  return {};
}

// Disk use of an unpacked layer, walked without following symbolic links; a file with several
// links counts once. Best effort: what cannot be read counts nothing.
uint64_t disk_usage(const fs::path& root) {
  uint64_t bytes = 0;
  std::set<std::pair<dev_t, ino_t>> linked;
  auto count = [&](const fs::path& path) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) return;
    if (!S_ISDIR(status.st_mode) && status.st_nlink > 1 &&
        !linked.emplace(status.st_dev, status.st_ino).second) {
      return;
    }
    bytes += static_cast<uint64_t>(status.st_blocks) * 512;
  };
  count(root);
  std::error_code error;
  for (fs::recursive_directory_iterator entry(root, error), end; !error && entry != end;
       entry.increment(error)) {
    count(entry->path());
  }
  return bytes;
}

// The digests named by the directories images/<alg>/<hex>/ or layers/<alg>/<hex>/; other
// entries (the index, layers/tmp/) are not digests and are passed over.
std::vector<oci::Digest> digest_dirs(const fs::path& root) {
  std::vector<oci::Digest> digests;
  std::error_code error;
  for (const auto& algorithm : fs::directory_iterator(root, error)) {
    if (!algorithm.is_directory(error)) continue;
    for (const auto& hex : fs::directory_iterator(algorithm.path(), error)) {
      auto digest = oci::parse_digest(algorithm.path().filename().string() + ":" +
                                      hex.path().filename().string());
      if (digest) digests.push_back(std::move(*digest));
    }
  }
  return digests;
}

Result<std::vector<std::string>> string_array(const bj::object& object, std::string_view key) {
  std::vector<std::string> strings;
  const bj::value* value = json::member(object, key);
  if (value == nullptr) return strings;
  if (!value->is_array()) return invalid(std::string(key) + " is not an array of strings");
  for (const bj::value& item : value->as_array()) {
    if (!item.is_string()) return invalid(std::string(key) + " is not an array of strings");
    strings.emplace_back(item.as_string());
  }
  return strings;
}

Result<std::string> string_member(const bj::object& object, std::string_view key) {
  const bj::value* value = json::member(object, key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) return invalid(std::string(key) + " is not a string");
  return std::string(value->as_string());
}

// ExposedPorts: {"80/tcp": {}, ...}
Result<std::vector<std::string>> object_keys(const bj::object& object, std::string_view key) {
  std::vector<std::string> keys;
  const bj::value* value = json::member(object, key);
  if (value == nullptr) return keys;
  if (!value->is_object()) return invalid(std::string(key) + " is not an object");
  for (const auto& member : value->as_object()) keys.emplace_back(member.key());
  return keys;
}

Result<std::map<std::string, std::string>> string_map(const bj::object& object,
                                                      std::string_view key) {
  std::map<std::string, std::string> strings;
  const bj::value* value = json::member(object, key);
  if (value == nullptr) return strings;
  if (!value->is_object()) return invalid(std::string(key) + " is not an object of strings");
  for (const auto& member : value->as_object()) {
    if (!member.value().is_string()) {
      return invalid(std::string(key) + " is not an object of strings");
    }
    strings.emplace(member.key(), member.value().as_string());
  }
  return strings;
}

Result<oci::RuntimeConfig> parse_runtime_config(const bj::object& config) {
  oci::RuntimeConfig runtime;
  auto entrypoint = string_array(config, "Entrypoint");
  if (!entrypoint) return std::unexpected(std::move(entrypoint.error()));
  runtime.entrypoint = std::move(*entrypoint);
  auto cmd = string_array(config, "Cmd");
  if (!cmd) return std::unexpected(std::move(cmd.error()));
  runtime.cmd = std::move(*cmd);
  auto env = string_array(config, "Env");
  if (!env) return std::unexpected(std::move(env.error()));
  runtime.env = std::move(*env);
  auto working_dir = string_member(config, "WorkingDir");
  if (!working_dir) return std::unexpected(std::move(working_dir.error()));
  runtime.working_dir = std::move(*working_dir);
  auto user = string_member(config, "User");
  if (!user) return std::unexpected(std::move(user.error()));
  runtime.user = std::move(*user);
  auto ports = object_keys(config, "ExposedPorts");
  if (!ports) return std::unexpected(std::move(ports.error()));
  runtime.exposed_ports = std::move(*ports);
  auto labels = string_map(config, "Labels");
  if (!labels) return std::unexpected(std::move(labels.error()));
  runtime.labels = std::move(*labels);
  return runtime;
}

Result<std::vector<oci::Digest>> parse_diff_ids(const bj::object& image) {
  const bj::object* rootfs = json::get_object(image, "rootfs");
  if (rootfs == nullptr) return invalid("rootfs is missing");
  auto type = json::get_string(*rootfs, "type");
  if (type && *type != "layers") return invalid("rootfs.type is '" + *type + "', not 'layers'");
  const bj::array* listed = json::get_array(*rootfs, "diff_ids");
  if (listed == nullptr) return invalid("rootfs.diff_ids is missing");
  std::vector<oci::Digest> diff_ids;
  for (const bj::value& item : *listed) {
    std::string label = "rootfs.diff_ids[" + std::to_string(diff_ids.size()) + "]";
    if (!item.is_string()) return invalid(label + " is not a string");
    auto digest = oci::parse_digest(item.as_string());
    if (!digest) return std::unexpected(std::move(digest.error()).context(label));
    diff_ids.push_back(std::move(*digest));
  }
  return diff_ids;
}

// How long a registry client (its login, tokens and connections) is reused between pulls. ECR
// tokens last 12 hours; a failed pull renews the login at once anyway.
constexpr std::chrono::minutes kClientReuse{10};

std::string flight_key(const oci::Reference& reference,
                       const std::optional<oci::RegistryCredentials>& credentials) {
  std::string key = reference.str();
  if (credentials) key += "\n" + credentials->username + "\n" + credentials->password;
  return key;
}

// The index, or an empty one (logged) when it is unreadable: it only holds references and
// times of use, which are worth less than an agent that starts.
bj::object read_index(const StateFile& file) {
  auto text = file.read();
  if (!text) {
    spdlog::warn("ignoring the image index: {}", text.error().message);
    return {};
  }
  if (!*text) return {};
  boost::system::error_code parse_error;
  bj::value value = bj::parse(**text, parse_error);
  if (parse_error || !value.is_object()) {
    spdlog::warn("ignoring the image index {}: not a JSON object", file.path().string());
    return {};
  }
  return std::move(value.as_object());
}

// A member object of the index, or an empty one.
const bj::object& section(const bj::object& index, std::string_view name) {
  static const bj::object kEmpty;
  const bj::object* found = json::get_object(index, name);
  return found != nullptr ? *found : kEmpty;
}

// The image's reference and last use from the index's "images"; unknown uses are now.
void recall_use(Image& image, const bj::object& uses, TimePoint now) {
  image.last_used = now;
  const bj::object* entry = json::get_object(uses, image.manifest_digest.str());
  if (entry == nullptr) return;
  const bj::value* seconds = json::member(*entry, "lastUsed");
  if (seconds != nullptr && seconds->is_number()) {
    image.last_used = from_epoch_seconds(seconds->to_number<double>());
  }
  image.reference = json::string_or(*entry, "reference", "");
}

std::map<std::string, oci::Digest> parse_references(const bj::object& references) {
  std::map<std::string, oci::Digest> parsed;
  for (const auto& [reference, target] : references) {
    if (!target.is_string()) continue;
    if (auto digest = oci::parse_digest(target.as_string())) parsed.emplace(reference, *digest);
  }
  return parsed;
}

std::map<oci::Digest, uint64_t> parse_layer_bytes(const bj::object& layers) {
  std::map<oci::Digest, uint64_t> parsed;
  for (const auto& entry : layers) {
    auto digest = oci::parse_digest(entry.key());
    auto bytes = json::get_int(layers, entry.key());
    if (digest && bytes && *bytes >= 0) parsed.emplace(*digest, static_cast<uint64_t>(*bytes));
  }
  return parsed;
}

Image image_of(const oci::Digest& manifest_digest, ParsedImageConfig parsed) {
  Image image;
  image.manifest_digest = manifest_digest;
  image.diff_ids = std::move(parsed.diff_ids);
  image.config = std::move(parsed.config);
  return image;
}

ImageStoreOptions with_defaults(ImageStoreOptions options) {
  if (!options.env) options.env = [](std::string_view) { return std::optional<std::string>(); };
  options.access.credentials.reset();  // a pull's own credentials, or none, decide
  if (options.parallel_layers == 0) options.parallel_layers = 1;
  return options;
}

}  // namespace

Result<PullBehavior> parse_pull_behavior(std::string_view text) {
  for (PullBehavior behavior : {PullBehavior::kDefault, PullBehavior::kAlways, PullBehavior::kOnce,
                                PullBehavior::kPreferCached}) {
    if (text == to_string(behavior)) return behavior;
  }
  return invalid("image pull behavior '" + std::string(text) +
                 "' is not one of default, always, once, prefer-cached");
}

std::string_view to_string(PullBehavior behavior) {
  switch (behavior) {
    case PullBehavior::kDefault:
      return "default";
    case PullBehavior::kAlways:
      return "always";
    case PullBehavior::kOnce:
      return "once";
    case PullBehavior::kPreferCached:
      return "prefer-cached";
  }
  return "default";
}

Result<ParsedImageConfig> parse_image_config(std::string_view text) {
  boost::system::error_code parse_error;
  bj::value value = bj::parse(text, parse_error);
  if (parse_error) return invalid("image config is not JSON: " + parse_error.message());
  if (!value.is_object()) return invalid("image config is not a JSON object");
  const bj::object& image = value.as_object();
  ParsedImageConfig parsed;
  const bj::value* config = json::member(image, "config");
  if (config != nullptr && !config->is_object())
    return invalid("image config: config is not an object");
  if (config != nullptr) {
    auto runtime = parse_runtime_config(config->as_object());
    if (!runtime) return std::unexpected(std::move(runtime.error()).context("image config"));
    parsed.config = std::move(*runtime);
  }
  auto diff_ids = parse_diff_ids(image);
  if (!diff_ids) return std::unexpected(std::move(diff_ids.error()).context("image config"));
  parsed.diff_ids = std::move(*diff_ids);
  return parsed;
}

template <typename T>
struct ImageStore::Flight {
  std::mutex mutex;
  std::condition_variable finished;
  std::optional<T> result;
};

// The first caller for `key` runs `work`; callers arriving before it finishes wait for its
// result instead of repeating the work.
template <typename Key, typename T, typename Work>
T ImageStore::single_flight(std::map<Key, std::shared_ptr<Flight<T>>>& flights, const Key& key,
                            Work work) {
  std::shared_ptr<Flight<T>> flight;
  bool leader = false;
  {
    std::lock_guard lock(mutex_);
    auto& slot = flights[key];
    leader = slot == nullptr;
    if (leader) slot = std::make_shared<Flight<T>>();
    flight = slot;
  }
  if (!leader) {
    std::unique_lock lock(flight->mutex);
    flight->finished.wait(lock, [&] { return flight->result.has_value(); });
    return *flight->result;
  }
  T result = work();
  {
    std::lock_guard lock(mutex_);
    flights.erase(key);
  }
  {
    std::lock_guard lock(flight->mutex);
    flight->result = result;
  }
  flight->finished.notify_all();
  return result;
}

ImageStore::ImageStore(const Layout& layout, ImageStoreOptions options, const Clock& clock)
    : layout_(layout),
      options_(with_defaults(std::move(options))),
      clock_(clock),
      index_file_(layout_.image_index_file()) {}

ImageStore::~ImageStore() = default;

Status ImageStore::load() {
  if (auto cleared = remove_layer_temp_dirs(layout_); !cleared) {
    return std::unexpected(std::move(cleared.error()).context("loading the image store"));
  }
  bj::object index = read_index(index_file_);
  std::map<oci::Digest, Image> images;
  for (const oci::Digest& digest : digest_dirs(layout_.images_dir())) {
    auto image = load_image(digest);
    if (image) {
      recall_use(*image, section(index, "images"), clock_.now());
      images.emplace(digest, std::move(*image));
      continue;
    }
    spdlog::warn("removing image {}: {}", digest.str(), image.error().message);
    if (auto removed = remove_tree(layout_.image_dir(digest)); !removed) {
      return std::unexpected(std::move(removed.error()).context("loading the image store"));
    }
  }
  std::vector<oci::Digest> diff_ids;
  {
    std::lock_guard lock(mutex_);
    images_ = std::move(images);
    references_ = parse_references(section(index, "references"));
    std::erase_if(references_, [&](const auto& entry) { return !images_.contains(entry.second); });
    layer_bytes_ = parse_layer_bytes(section(index, "layers"));
    for (const auto& [digest, image] : images_) {
      diff_ids.insert(diff_ids.end(), image.diff_ids.begin(), image.diff_ids.end());
    }
  }
  measure_layers(diff_ids);  // layers the index has no size for
  std::lock_guard lock(mutex_);
  return save_index_locked();
}

// An image from its directory, if its files parse and its layers are all in the cache.
Result<Image> ImageStore::load_image(const oci::Digest& manifest_digest) const {
  auto manifest_text = read_text(layout_.image_manifest_file(manifest_digest));
  if (!manifest_text) return std::unexpected(std::move(manifest_text.error()));
  if (oci::digest_of(*manifest_text, manifest_digest.algorithm) != manifest_digest) {
    return fail(ErrorCode::kImageDigestDoesNotMatch, "manifest.json does not match its digest");
  }
  auto manifest = oci::parse_manifest(*manifest_text, "");
  if (!manifest) return std::unexpected(std::move(manifest.error()));
  if (manifest->is_index()) return invalid("manifest.json is an index");
  auto config_text = read_text(layout_.image_config_file(manifest_digest));
  if (!config_text) return std::unexpected(std::move(config_text.error()));
  auto parsed = parse_image_config(*config_text);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  Image image = image_of(manifest_digest, std::move(*parsed));
  for (const oci::Digest& diff_id : image.diff_ids) {
    if (!layer_unpacked(layout_, diff_id)) {
      return fail(ErrorCode::kLayersNotFound, "layer " + diff_id.str() + " is not in the cache");
    }
  }
  return image;
}

Result<Image> ImageStore::ensure(std::string_view reference,
                                 const std::optional<oci::RegistryCredentials>& credentials) {
  auto parsed = oci::parse_reference(reference);  // its errors quote the reference
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  auto image = ensure_parsed(*parsed, credentials);
  if (image) image->reference = reference;
  return image;
}

Result<Image> ImageStore::ensure_parsed(
    const oci::Reference& reference, const std::optional<oci::RegistryCredentials>& credentials) {
  PullBehavior behavior = options_.behavior;
  bool cache_first = behavior == PullBehavior::kOnce || behavior == PullBehavior::kPreferCached ||
                     (reference.digest && behavior != PullBehavior::kAlways);
  if (cache_first) {
    std::lock_guard lock(mutex_);
    if (auto cached = use_cached_locked(reference)) return *cached;
  }
  auto pulled = single_flight(pulls_, flight_key(reference, credentials),
                              [&] { return pull(reference, credentials); });
  if (pulled || behavior != PullBehavior::kDefault) return pulled;
  std::lock_guard lock(mutex_);
  auto cached = use_cached_locked(reference);
  if (!cached) return pulled;
  spdlog::warn("using the cached {} ({}): {}", reference.str(), cached->manifest_digest.str(),
               pulled.error().message);
  return *cached;
}

// The cached image for a reference, or null when there is none or its layers are gone.
Image* ImageStore::find_cached_locked(const oci::Reference& reference) {
  std::optional<oci::Digest> digest = reference.digest;
  if (!digest) {
    auto named = references_.find(reference.str());
    if (named == references_.end()) return nullptr;
    digest = named->second;
  }
  auto found = images_.find(*digest);
  if (found == images_.end() || !layers_present_locked(found->second)) return nullptr;
  return &found->second;
}

// The cached image for a reference, marked used.
std::optional<Image> ImageStore::use_cached_locked(const oci::Reference& reference) {
  Image* found = find_cached_locked(reference);
  if (found == nullptr) return std::nullopt;
  found->last_used = clock_.now();
  save_use_locked();
  return *found;
}

std::optional<Image> ImageStore::acquire_cached(std::string_view reference) {
  auto parsed = oci::parse_reference(reference);
  if (!parsed) return std::nullopt;
  std::lock_guard lock(mutex_);
  Image* found = find_cached_locked(*parsed);
  if (found == nullptr) return std::nullopt;
  ++in_use_[found->manifest_digest];
  return *found;
}

bool ImageStore::layers_present_locked(const Image& image) const {
  return std::ranges::all_of(
      image.diff_ids, [&](const oci::Digest& diff_id) { return layer_unpacked(layout_, diff_id); });
}

Result<std::shared_ptr<oci::RegistryClient>> ImageStore::client_for(
    const oci::Reference& reference, const std::optional<oci::RegistryCredentials>& credentials,
    bool fresh, bool* reused) {
  std::string key = reference.registry;
  if (credentials) key += "\n" + credentials->username + "\n" + credentials->password;
  TimePoint now = clock_.now();
  {
    std::lock_guard lock(clients_mutex_);
    auto kept = clients_.find(key);
    if (!fresh && kept != clients_.end() && now - kept->second.made < kClientReuse) {
      if (reused != nullptr) *reused = true;
      return kept->second.client;
    }
  }
  oci::RegistryAccess access = options_.access;
  access.credentials = credentials;
  auto client = oci::connect_registry(reference, access, options_.env, clock_);
  if (!client) return std::unexpected(client.error());
  std::shared_ptr<oci::RegistryClient> shared = std::move(*client);
  std::lock_guard lock(clients_mutex_);
  clients_[key] = KeptClient{shared, now};
  return shared;
}

Result<Image> ImageStore::pull(const oci::Reference& reference,
                               const std::optional<oci::RegistryCredentials>& credentials) {
  std::string doing = "pulling image " + reference.str();
  bool reused = false;
  auto client = client_for(reference, credentials, false, &reused);
  if (!client) return std::unexpected(std::move(client.error()).context(doing));
  auto pulled = pull_with(**client, reference);
  if (pulled) return pulled;
  // A kept client's login may have gone stale (a token revoked, keys rotated) or its connection
  // broken: once more with a new one before giving up. What the registry said plainly (no such
  // image) stands.
  bool stale = pulled.error().code == ErrorCode::kAccessDenied ||
               pulled.error().code == ErrorCode::kInternal;
  if (!reused || !stale) return std::unexpected(std::move(pulled.error()).context(doing));
  auto renewed = client_for(reference, credentials, true);
  if (!renewed) return std::unexpected(std::move(renewed.error()).context(doing));
  pulled = pull_with(**renewed, reference);
  if (!pulled) return std::unexpected(std::move(pulled.error()).context(doing));
  return pulled;
}

Result<Image> ImageStore::pull_with(oci::RegistryClient& client, const oci::Reference& reference) {
  auto resolved = client.resolve(reference);
  if (!resolved) return std::unexpected(resolved.error());
  const oci::Digest digest = resolved->manifest.digest;

  std::vector<oci::Digest> pinned_layers;  // by fetch_image()
  std::optional<Image> image;
  {
    std::lock_guard lock(mutex_);
    pulling_images_.insert(digest);
    auto known = images_.find(digest);
    if (known != images_.end() && layers_present_locked(known->second)) image = known->second;
  }
  ScopeExit unpin([&] {
    std::lock_guard lock(mutex_);
    pulling_images_.erase(pulling_images_.find(digest));
    for (const auto& diff_id : pinned_layers) pulling_layers_.erase(pulling_layers_.find(diff_id));
  });
  if (!image) {
    auto fetched = fetch_image(client, reference, *resolved, pinned_layers);
    if (!fetched) return std::unexpected(fetched.error());
    image = std::move(*fetched);
  }
  return remember(reference, std::move(*image));
}

// Fetches the config and the missing layers of a resolved image, and saves its files. The
// layers are added to `pinned_layers` (and pulling_layers_) before any is fetched.
Result<Image> ImageStore::fetch_image(oci::RegistryClient& client, const oci::Reference& reference,
                                      const oci::ResolvedImage& resolved,
                                      std::vector<oci::Digest>& pinned_layers) {
  const oci::Digest& digest = resolved.manifest.digest;
  auto config_text = client.fetch_blob_bytes(reference, resolved.parsed.config->digest);
  if (!config_text) return std::unexpected(std::move(config_text.error()));
  auto config = parse_image_config(*config_text);
  if (!config) return std::unexpected(std::move(config.error()));
  if (config->diff_ids.size() != resolved.parsed.layers.size()) {
    return invalid("the image config lists " + std::to_string(config->diff_ids.size()) +
                   " layers and the manifest " + std::to_string(resolved.parsed.layers.size()));
  }
  {
    std::lock_guard lock(mutex_);
    pulling_layers_.insert(config->diff_ids.begin(), config->diff_ids.end());
    pinned_layers = config->diff_ids;
  }
  if (auto fetched = fetch_layers(client, reference, resolved.parsed, config->diff_ids); !fetched) {
    return std::unexpected(std::move(fetched.error()));
  }
  measure_layers(config->diff_ids);

  Status saved = make_directories(layout_.image_dir(digest));
  if (saved) {
    saved = write_file_atomically(layout_.image_manifest_file(digest), resolved.manifest.bytes);
  }
  if (saved) saved = write_file_atomically(layout_.image_config_file(digest), *config_text);
  if (!saved) return std::unexpected(std::move(saved.error()));
  return image_of(digest, std::move(*config));
}

// Records a pulled image as used now and, by tag, as what `reference` names.
Image ImageStore::remember(const oci::Reference& reference, Image image) {
  image.last_used = clock_.now();
  image.reference = reference.str();
  std::lock_guard lock(mutex_);
  if (!reference.digest) references_[reference.str()] = image.manifest_digest;
  images_[image.manifest_digest] = image;
  if (auto saved = save_index_locked(); !saved) {
    spdlog::warn("saving the image index: {}", saved.error().message);
  }
  return image;
}

// Fetches and unpacks the layers the cache lacks, up to options_.parallel_layers at once.
Status ImageStore::fetch_layers(oci::RegistryClient& client, const oci::Reference& reference,
                                const oci::Manifest& manifest,
                                const std::vector<oci::Digest>& diff_ids) {
  std::vector<std::size_t> missing;
  for (std::size_t layer_idx = 0; layer_idx < diff_ids.size(); ++layer_idx) {
    if (!layer_unpacked(layout_, diff_ids[layer_idx])) missing.push_back(layer_idx);
  }
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  std::optional<Error> failure;
  auto work = [&] {
    for (std::size_t missing_idx = next++; missing_idx < missing.size(); missing_idx = next++) {
      std::size_t layer_idx = missing[missing_idx];
      const oci::Digest& diff_id = diff_ids[layer_idx];
      Status done = single_flight(unpacks_, diff_id, [&] {
        return fetch_layer(client, reference, manifest.layers[layer_idx], diff_id);
      });
      if (done) continue;
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::move(done.error());
      return;
    }
  };
  {
    std::vector<std::jthread> helpers;
    std::size_t workers = std::min(options_.parallel_layers, missing.size());
    for (std::size_t helper_idx = 1; helper_idx < workers; ++helper_idx) helpers.emplace_back(work);
    work();
  }
  if (failure) return std::unexpected(std::move(*failure));
  return {};
}

Status ImageStore::fetch_layer(oci::RegistryClient& client, const oci::Reference& reference,
                               const oci::Descriptor& blob, const oci::Digest& diff_id) {
  if (layer_unpacked(layout_, diff_id)) return {};  // another pull just unpacked it
  if (auto created = make_directories(layout_.layer_temp_dir()); !created) return created;
  auto download = oci::TempDir::create("pull-", layout_.layer_temp_dir());
  if (!download) return std::unexpected(std::move(download.error()));
  fs::path blob_file = download->path() / "blob";
  std::optional<uint64_t> size;
  if (blob.size >= 0) size = static_cast<uint64_t>(blob.size);
  if (auto fetched = client.fetch_blob(reference, blob.digest, blob_file, size); !fetched) {
    return fetched;
  }
  auto unpacked = unpack_layer(layout_, blob_file, diff_id);
  if (!unpacked) {
    return std::unexpected(
        std::move(unpacked.error()).context("unpacking layer " + blob.digest.str()));
  }
  return {};
}

// Records the disk use of layers not measured yet.
void ImageStore::measure_layers(const std::vector<oci::Digest>& diff_ids) {
  for (const oci::Digest& diff_id : diff_ids) {
    {
      std::lock_guard lock(mutex_);
      if (layer_bytes_.contains(diff_id)) continue;
    }
    uint64_t bytes = disk_usage(layout_.layer_dir(diff_id));
    std::lock_guard lock(mutex_);
    layer_bytes_[diff_id] = bytes;
  }
}

void ImageStore::acquire(const oci::Digest& manifest_digest) {
  std::lock_guard lock(mutex_);
  ++in_use_[manifest_digest];
  auto found = images_.find(manifest_digest);
  if (found != images_.end()) found->second.last_used = clock_.now();
}

void ImageStore::release(const oci::Digest& manifest_digest) {
  std::lock_guard lock(mutex_);
  auto user = in_use_.find(manifest_digest);
  if (user == in_use_.end()) return;
  if (--user->second == 0) in_use_.erase(user);
  auto found = images_.find(manifest_digest);
  if (found == images_.end()) return;
  found->second.last_used = clock_.now();
  save_use_locked();
}

Result<std::size_t> ImageStore::clean_up() {
  std::lock_guard lock(mutex_);
  std::size_t removed = 0;
  Status status;
  if (options_.behavior != PullBehavior::kPreferCached) {
    for (const oci::Digest& digest : removable_images_locked(clock_.now())) {
      status = remove_image_locked(digest);
      if (!status) break;
      ++removed;
    }
  }
  if (status) status = remove_unneeded_layers_locked();
  Status saved = save_index_locked();
  if (!status) return std::unexpected(std::move(status.error()).context("cleaning up images"));
  if (!saved) return std::unexpected(std::move(saved.error()).context("cleaning up images"));
  return removed;
}

// Unused images too old to keep, then (oldest first) as many more as the size cap needs gone.
std::vector<oci::Digest> ImageStore::removable_images_locked(TimePoint now) const {
  std::vector<std::pair<TimePoint, oci::Digest>> unused;
  for (const auto& [digest, image] : images_) {
    if (in_use_.contains(digest) || pulling_images_.contains(digest)) continue;
    if (now - image.last_used < options_.min_unused_age) continue;
    unused.emplace_back(image.last_used, digest);
  }
  std::ranges::sort(unused);
  std::vector<oci::Digest> doomed;
  std::set<oci::Digest> doomed_set;
  auto kept_bytes = [&] {  // what the images not doomed take, shared layers counted once
    uint64_t bytes = 0;
    std::set<oci::Digest> counted;
    for (const auto& [digest, image] : images_) {
      if (doomed_set.contains(digest)) continue;
      for (const auto& diff_id : image.diff_ids) {
        auto size = layer_bytes_.find(diff_id);
        if (counted.insert(diff_id).second && size != layer_bytes_.end()) bytes += size->second;
      }
    }
    return bytes;
  };
  for (const auto& [last_used, digest] : unused) {
    bool too_old = now - last_used > options_.max_unused_age;
    bool too_big = options_.max_cache_bytes > 0 && kept_bytes() > options_.max_cache_bytes;
    if (!too_old && !too_big) break;
    doomed.push_back(digest);
    doomed_set.insert(digest);
  }
  return doomed;
}

Status ImageStore::remove_image_locked(const oci::Digest& manifest_digest) {
  std::erase_if(references_, [&](const auto& entry) { return entry.second == manifest_digest; });
  std::vector<oci::Digest> diff_ids;
  if (auto found = images_.find(manifest_digest); found != images_.end()) {
    diff_ids = found->second.diff_ids;
  }
  images_.erase(manifest_digest);
  spdlog::info("removing image {}", manifest_digest.str());
  // Its init layer too, unless another image stacks the same layers.
  bool shared = std::any_of(images_.begin(), images_.end(),
                            [&](const auto& entry) { return entry.second.diff_ids == diff_ids; });
  if (!diff_ids.empty() && !shared) {
    if (auto removed = remove_tree(init_layer_path(layout_, diff_ids)); !removed) return removed;
  }
  return remove_tree(layout_.image_dir(manifest_digest));
}

// Removes every cached layer that no image, and no pull in progress, needs.
Status ImageStore::remove_unneeded_layers_locked() {
  std::set<oci::Digest> needed(pulling_layers_.begin(), pulling_layers_.end());
  for (const auto& [digest, image] : images_)
    needed.insert(image.diff_ids.begin(), image.diff_ids.end());
  for (const oci::Digest& diff_id : digest_dirs(layout_.layers_dir())) {
    if (needed.contains(diff_id)) continue;
    if (auto removed = remove_layer(layout_, diff_id); !removed) return removed;
    layer_bytes_.erase(diff_id);
  }
  return {};
}

Status ImageStore::save_index_locked() const {
  bj::object references;
  for (const auto& [reference, digest] : references_) references[reference] = digest.str();
  bj::object images;
  for (const auto& [digest, image] : images_) {
    images[digest.str()] =
        bj::object{{"lastUsed", epoch_seconds(image.last_used)}, {"reference", image.reference}};
  }
  bj::object layers;
  for (const auto& [diff_id, bytes] : layer_bytes_) layers[diff_id.str()] = bytes;
  bj::object index{{"references", std::move(references)},
                   {"images", std::move(images)},
                   {"layers", std::move(layers)}};
  if (auto created = make_directories(layout_.images_dir()); !created) return created;
  // Without fsync: it is rewritten on uses of an image, under the store's lock, and after a
  // host crash load() rebuilds what it lost (only last-use times and references).
  Status written = index_file_.write(bj::serialize(index), Durability::kProcess);
  if (written) index_saved_ = clock_.now();
  return written;
}

void ImageStore::save_use_locked() const {
  // Last-use times only decide clean-ups, whose ages are minutes or more: one saved up to a
  // minute late changes nothing, and a launch does not wait for a write of the whole index
  // (on a journal-less ext4 each costs about a millisecond).
  constexpr std::chrono::minutes kUseSaveInterval{1};
  if (index_saved_ && clock_.now() - *index_saved_ < kUseSaveInterval) return;
  if (auto saved = save_index_locked(); !saved) {
    spdlog::warn("saving the image index: {}", saved.error().message);
  }
}

std::vector<Image> ImageStore::images() const {
  std::lock_guard lock(mutex_);
  std::vector<Image> images;
  for (const auto& [digest, image] : images_) images.push_back(image);
  return images;
}

}  // namespace wharf::agent
