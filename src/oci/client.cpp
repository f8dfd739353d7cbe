// The registry client: auth negotiation, manifest resolution, verified blob transfer.
#include "oci/client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"
#include "oci/http_transport.hpp"
#include "oci/layout.hpp"
#include "oci/registry_auth.hpp"
#include "oci/registry_error.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = 4 << 20;
constexpr std::size_t kMaxErrorBody = 64 << 10;
constexpr int kMaxIndexDepth = 3;

std::string manifest_accept() {
  return std::string(kOciIndex) + ", " + std::string(kDockerManifestList) + ", " +
         std::string(kOciManifest) + ", " + std::string(kDockerManifest);
}

std::string pull_scope(const Reference& reference) {
  return "repository:" + reference.repository + ":pull";
}

std::string push_scope(const Reference& reference) {
  return "repository:" + reference.repository + ":pull,push";
}

std::string strip_parameters(std::string_view content_type) {
  auto semicolon = content_type.find(';');
  std::string_view bare = content_type.substr(0, semicolon);
  while (!bare.empty() && bare.back() == ' ') bare.remove_suffix(1);
  return std::string(bare);
}

std::unexpected<Error> with_context(Error error, std::string_view doing) {
  return std::unexpected(std::move(error).context(doing));
}

std::string errno_text(std::string_view doing, const fs::path& path) {
  return std::string(doing) + " " + path.string() + ": " + std::strerror(errno);
}

Status write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return fail(ErrorCode::kInternal, errno_text("writing", path));
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

Status verify_reported_digest(const HttpResponse& response, const Digest& expected) {
  auto reported = find_header(response.headers, "Docker-Content-Digest");
  if (!reported) return {};
  auto parsed = parse_digest(*reported);
  if (parsed && parsed->algorithm == expected.algorithm && *parsed != expected) {
    return fail(ErrorCode::kImageDigestDoesNotMatch,
                "the registry reports digest " + parsed->str() + ", expected " + expected.str());
  }
  return {};
}

std::string platform_name(const Platform& platform) {
  std::string name = platform.os + "/" + platform.architecture;
  if (!platform.variant.empty()) name += "/" + platform.variant;
  return name;
}

// The index entry for a platform: os and architecture must match; a wanted variant must match,
// and with none wanted an entry without a variant is preferred.
std::optional<Descriptor> select_platform(const Manifest& index, const Platform& wanted) {
  std::optional<Descriptor> fallback;
  for (const auto& entry : index.manifests) {
    if (!entry.platform || entry.platform->os != wanted.os ||
        entry.platform->architecture != wanted.architecture) {
      continue;
    }
    if (!wanted.variant.empty() && entry.platform->variant != wanted.variant) continue;
    if (!wanted.variant.empty() || entry.platform->variant.empty()) return entry;
    if (!fallback) fallback = entry;
  }
  return fallback;
}

std::string platforms_in(const Manifest& index) {
  std::string names;
  for (const auto& entry : index.manifests) {
    if (!entry.platform) continue;
    if (!names.empty()) names += ", ";
    names += platform_name(*entry.platform);
  }
  return names.empty() ? "none with a platform" : names;
}

TransportOptions transport_options(const ClientOptions& client) {
  TransportOptions options;
  options.insecure = client.insecure;
  options.user_agent = client.user_agent;
  return options;
}

// A blob streamed into a temporary file and hashed on the way.
class BlobWriter {
 public:
  BlobWriter(const Digest& digest, std::optional<uint64_t> expected_size)
      : hasher_(digest.algorithm), expected_size_(expected_size) {}
  ~BlobWriter() {
    if (fd_) ::unlink(temp_.c_str());
  }

  Status open(const fs::path& destination) {
    temp_ = temp_path_beside(destination);
    fd_ = UniqueFd(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd_) return fail(ErrorCode::kInternal, errno_text("creating", temp_));
    return {};
  }

  Status write(std::string_view piece) {
    if (expected_size_ && received_ + piece.size() > *expected_size_) {
      return fail(
          ErrorCode::kImageDigestDoesNotMatch,
          "the registry sent more than the expected " + std::to_string(*expected_size_) + " bytes");
    }
    hasher_.update(piece);
    received_ += piece.size();
    return write_all(fd_.get(), piece, temp_);
  }

  // Checks size and digest, syncs and renames the file into place.
  Status commit(const Digest& digest, const fs::path& destination) {
    if (expected_size_ && received_ != *expected_size_) {
      return fail(ErrorCode::kImageDigestDoesNotMatch, "received " + std::to_string(received_) +
                                                           " bytes, expected " +
                                                           std::to_string(*expected_size_));
    }
    if (auto actual = hasher_.digest(); actual != digest) {
      return fail(ErrorCode::kImageDigestDoesNotMatch,
                  "the content received has digest " + actual.str());
    }
    if (::fdatasync(fd_.get()) != 0)
      return fail(ErrorCode::kInternal, errno_text("syncing", temp_));
    fd_.reset();
    if (::rename(temp_.c_str(), destination.c_str()) != 0) {
      auto error = fail(ErrorCode::kInternal, errno_text("renaming into place", destination));
      ::unlink(temp_.c_str());
      return error;
    }
    return {};
  }

 private:
  Hasher hasher_;
  std::optional<uint64_t> expected_size_;
  uint64_t received_ = 0;
  fs::path temp_;
  UniqueFd fd_;
};

}  // namespace

struct RegistryClient::Impl {
  explicit Impl(ClientOptions client_options)
      : options(std::move(client_options)),
        transport(transport_options(options)),
        auth(transport, options.credentials, options.clock ? *options.clock : system_clock) {}

  ClientOptions options;
  HttpTransport transport;
  SystemClock system_clock;
  RegistryAuth auth;

  Result<HttpResponse> send(std::string_view registry, const std::string& scope,
                            HttpRequest request) {
    return auth.send(registry, scope, std::move(request));
  }

  std::string base_url(std::string_view registry) const {
    bool plain = options.plain_http.value_or(is_loopback_registry(registry));
    return (plain ? "http://" : "https://") + std::string(registry);
  }

  std::string url(const Reference& reference, std::string_view kind, std::string_view tail) const {
    return base_url(reference.registry) + "/v2/" + reference.repository + "/" + std::string(kind) +
           "/" + std::string(tail);
  }

  struct ManifestWithParse {
    FetchedManifest fetched;
    Manifest parsed;
  };

  Result<ManifestWithParse> get_manifest(const Reference& reference) {
    auto manifest = get_manifest_unnamed(reference);
    if (!manifest) {
      return with_context(std::move(manifest.error()), "pulling manifest " + reference.str());
    }
    return manifest;
  }

  Result<ManifestWithParse> get_manifest_unnamed(const Reference& reference) {
    HttpRequest request =
        make_request("GET", url(reference, "manifests", reference.manifest_reference()));
    request.headers.emplace_back("Accept", manifest_accept());
    request.max_body = kMaxManifestBytes;
    auto response = send(reference.registry, pull_scope(reference), std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status != 200) return std::unexpected(response_error(*response));
    std::string algorithm = reference.digest ? reference.digest->algorithm : "sha256";
    auto reported = find_header(response->headers, "Docker-Content-Digest");
    std::optional<Digest> reported_digest;
    if (reported) {
      if (auto parsed = parse_digest(*reported)) reported_digest = *parsed;
    }
    if (!reference.digest && reported_digest) algorithm = reported_digest->algorithm;
    Digest digest = digest_of(response->body, algorithm);
    if (reference.digest && digest != *reference.digest) {
      return fail(ErrorCode::kImageDigestDoesNotMatch,
                  "the manifest received has digest " + digest.str());
    }
    if (!reference.digest && reported_digest && *reported_digest != digest) {
      return fail(ErrorCode::kImageDigestDoesNotMatch,
                  "the manifest received has digest " + digest.str() + " but the registry says " +
                      reported_digest->str());
    }
    auto content_type = find_header(response->headers, "Content-Type").value_or("");
    auto parsed = parse_manifest(response->body, strip_parameters(content_type));
    if (!parsed) return std::unexpected(std::move(parsed.error()));
    std::string media_type = parsed->media_type;
    return ManifestWithParse{FetchedManifest{media_type, std::move(response->body), digest},
                             std::move(*parsed)};
  }

  Result<ResolvedImage> resolve(const Reference& reference) {
    auto top = get_manifest(reference);
    if (!top) return std::unexpected(std::move(top.error()));
    std::optional<FetchedManifest> index;
    Reference current = reference;
    for (int depth = 0; top->parsed.is_index(); ++depth) {
      std::string doing = "resolving " + reference.str();
      if (depth == kMaxIndexDepth) {
        return fail(ErrorCode::kUnsupportedImageType,
                    doing + ": indexes nest deeper than 3 levels");
      }
      auto entry = select_platform(top->parsed, options.platform);
      if (!entry) {
        return fail(ErrorCode::kImageNotFound,
                    doing + ": the index has no " + platform_name(options.platform) +
                        " image (it has " + platforms_in(top->parsed) + ")");
      }
      if (!index) index = top->fetched;
      current = reference.with_digest(entry->digest);
      auto child = get_manifest(current);
      if (!child) return std::unexpected(std::move(child.error()));
      if (static_cast<int64_t>(child->fetched.bytes.size()) != entry->size) {
        return fail(ErrorCode::kImageDigestDoesNotMatch,
                    doing + ": the " + platform_name(options.platform) + " manifest has " +
                        std::to_string(child->fetched.bytes.size()) + " bytes, the index says " +
                        std::to_string(entry->size));
      }
      top = std::move(child);
    }
    return ResolvedImage{reference.with_digest(top->fetched.digest), std::move(top->fetched),
                         std::move(top->parsed), std::move(index)};
  }

  Status fetch_blob(const Reference& reference, const Digest& digest, const fs::path& destination,
                    std::optional<uint64_t> expected_size) {
    std::error_code dir_error;
    fs::create_directories(destination.parent_path(), dir_error);
    if (dir_error) {
      return fail(ErrorCode::kInternal,
                  "creating " + destination.parent_path().string() + ": " + dir_error.message());
    }
    BlobWriter writer(digest, expected_size);
    if (auto opened = writer.open(destination); !opened) return opened;
    BodySink sink = [&writer](std::string_view piece) { return writer.write(piece); };
    HttpRequest request = make_request("GET", url(reference, "blobs", digest.str()), true);
    request.sink = &sink;
    request.max_body = kMaxErrorBody;
    auto response = send(reference.registry, pull_scope(reference), std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status != 200) return std::unexpected(response_error(*response));
    return writer.commit(digest, destination);
  }

  Result<std::string> fetch_blob_bytes(const Reference& reference, const Digest& digest,
                                       uint64_t max_size) {
    HttpRequest request = make_request("GET", url(reference, "blobs", digest.str()), true);
    request.max_body = static_cast<std::size_t>(max_size);
    auto response = send(reference.registry, pull_scope(reference), std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status != 200) return std::unexpected(response_error(*response));
    if (auto actual = digest_of(response->body, digest.algorithm); actual != digest) {
      return fail(ErrorCode::kImageDigestDoesNotMatch,
                  "the content received has digest " + actual.str());
    }
    return std::move(response->body);
  }

  Result<bool> blob_exists(const Reference& reference, const Digest& digest,
                           const std::string& scope) {
    HttpRequest request = make_request("HEAD", url(reference, "blobs", digest.str()), true);
    auto response = send(reference.registry, scope, std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status == 200) return true;
    if (response->status == 404) return false;
    return std::unexpected(response_error(*response));
  }

  // Starts an upload (or mounts): the upload URL, or nullopt when the blob was mounted.
  Result<std::optional<std::string>> start_upload(const Reference& reference, const Digest& digest,
                                                  const std::optional<std::string>& mount_from,
                                                  const std::string& scope) {
    std::string post_url = url(reference, "blobs", "uploads/");
    if (mount_from) {
      auto with_mount = append_query(post_url, "mount", digest.str());
      if (with_mount) with_mount = append_query(*with_mount, "from", *mount_from);
      if (!with_mount) return std::unexpected(with_mount.error());
      post_url = *with_mount;
    }
    HttpRequest request = make_request("POST", post_url);
    auto response = send(reference.registry, scope, std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (mount_from && response->status == 201) return std::nullopt;
    if (response->status != 202) return std::unexpected(response_error(*response));
    return location_of(*response, post_url);
  }

  Result<std::string> location_of(const HttpResponse& response, const std::string& request_url) {
    auto location = find_header(response.headers, "Location");
    if (!location || location->empty()) {
      return fail(ErrorCode::kInternal, "the registry answered HTTP " +
                                            std::to_string(response.status) +
                                            " without a Location for the upload");
    }
    return resolve_url(request_url, *location);
  }

  Status upload(const Reference& reference, const BlobSource& blob, std::string location, int fd,
                const std::string& scope) {
    uint64_t chunk = options.chunk_size;
    uint64_t offset = 0;
    if (chunk != 0 && blob.size > chunk) {
      while (offset < blob.size) {
        uint64_t length = std::min(chunk, blob.size - offset);
        HttpRequest patch = make_request("PATCH", location);
        patch.headers = {
            {"Content-Type", "application/octet-stream"},
            {"Content-Range", std::to_string(offset) + "-" + std::to_string(offset + length - 1)}};
        patch.file = FileBody{fd, offset, length};
        auto response = send(reference.registry, scope, std::move(patch));
        if (!response) return std::unexpected(std::move(response.error()));
        if (response->status != 202) {
          return with_context(response_error(*response), "sending bytes " + std::to_string(offset) +
                                                             "-" +
                                                             std::to_string(offset + length - 1));
        }
        auto next = location_of(*response, location);
        if (!next) return std::unexpected(std::move(next.error()));
        location = std::move(*next);
        offset += length;
      }
    }
    auto put_url = append_query(location, "digest", blob.digest.str());
    if (!put_url) return std::unexpected(std::move(put_url.error()));
    HttpRequest put = make_request("PUT", *put_url);
    put.headers.emplace_back("Content-Type", "application/octet-stream");
    put.file = FileBody{fd, offset, blob.size - offset};
    auto response = send(reference.registry, scope, std::move(put));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status != 201) return std::unexpected(response_error(*response));
    return verify_reported_digest(*response, blob.digest);
  }

  Result<BlobPush> push_blob(const Reference& reference, const BlobSource& blob,
                             const std::optional<std::string>& mount_from) {
    std::string scope = push_scope(reference);
    if (mount_from) scope += " repository:" + *mount_from + ":pull";
    auto exists = blob_exists(reference, blob.digest, scope);
    if (!exists) return std::unexpected(std::move(exists.error()));
    if (*exists) return BlobPush::kExisted;
    UniqueFd fd(::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail(ErrorCode::kInternal, errno_text("opening", blob.path));
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0 || static_cast<uint64_t>(info.st_size) != blob.size) {
      return fail(ErrorCode::kInternal, blob.path.string() + " does not have the " +
                                            std::to_string(blob.size) + " bytes expected");
    }
    auto location = start_upload(reference, blob.digest, mount_from, scope);
    if (!location) return std::unexpected(std::move(location.error()));
    if (!*location) return BlobPush::kMounted;
    auto sent = upload(reference, blob, std::move(**location), fd.get(), scope);
    if (!sent) return std::unexpected(std::move(sent.error()));
    return BlobPush::kUploaded;
  }

  Result<Digest> push_manifest(const Reference& reference, std::string_view media_type,
                               std::string_view bytes) {
    Digest digest = digest_of(bytes, reference.digest ? reference.digest->algorithm : "sha256");
    if (reference.digest && digest != *reference.digest) {
      return fail(ErrorCode::kImageDigestDoesNotMatch,
                  "the manifest has digest " + digest.str() + ", not the one in the reference");
    }
    HttpRequest request =
        make_request("PUT", url(reference, "manifests", reference.manifest_reference()));
    request.headers.emplace_back("Content-Type", std::string(media_type));
    request.body = std::string(bytes);
    auto response = send(reference.registry, push_scope(reference), std::move(request));
    if (!response) return std::unexpected(std::move(response.error()));
    if (response->status != 201) return std::unexpected(response_error(*response));
    if (auto checked = verify_reported_digest(*response, digest); !checked) {
      return std::unexpected(std::move(checked.error()));
    }
    return digest;
  }
};

RegistryClient::RegistryClient(ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RegistryClient::~RegistryClient() = default;

const ClientOptions& RegistryClient::options() const {
  return impl_->options;
}

std::string RegistryClient::base_url(std::string_view registry) const {
  return impl_->base_url(registry);
}

Status RegistryClient::ping(std::string_view registry) {
  std::string doing = "pinging registry " + std::string(registry);
  HttpRequest request = make_request("GET", impl_->base_url(registry) + "/v2/");
  request.max_body = kMaxErrorBody;
  auto response = impl_->transport.perform(request);
  if (!response) return with_context(std::move(response.error()), doing);
  if (response->status == 200) return {};
  if (response->status == 401 && find_header(response->headers, "WWW-Authenticate")) {
    impl_->auth.learn(registry, *response);
    return {};
  }
  return with_context(response_error(*response), doing);
}

Result<FetchedManifest> RegistryClient::fetch_manifest(const Reference& reference) {
  auto manifest = impl_->get_manifest(reference);
  if (!manifest) return std::unexpected(std::move(manifest.error()));
  return std::move(manifest->fetched);
}

Result<ResolvedImage> RegistryClient::resolve(const Reference& reference) {
  return impl_->resolve(reference);  // errors name the manifest or the index they concern
}

Status RegistryClient::fetch_blob(const Reference& reference, const Digest& digest,
                                  const fs::path& destination,
                                  std::optional<uint64_t> expected_size) {
  auto fetched = impl_->fetch_blob(reference, digest, destination, expected_size);
  if (!fetched) {
    return with_context(std::move(fetched.error()),
                        "pulling blob " + digest.str() + " of " + reference.str());
  }
  return {};
}

Result<std::string> RegistryClient::fetch_blob_bytes(const Reference& reference,
                                                     const Digest& digest, uint64_t max_size) {
  auto fetched = impl_->fetch_blob_bytes(reference, digest, max_size);
  if (!fetched) {
    return with_context(std::move(fetched.error()),
                        "pulling blob " + digest.str() + " of " + reference.str());
  }
  return fetched;
}

Result<bool> RegistryClient::blob_exists(const Reference& reference, const Digest& digest) {
  auto exists = impl_->blob_exists(reference, digest, pull_scope(reference));
  if (!exists) {
    return with_context(std::move(exists.error()),
                        "looking for blob " + digest.str() + " in " + reference.str());
  }
  return exists;
}

Result<BlobPush> RegistryClient::push_blob(const Reference& reference, const BlobSource& blob,
                                           std::optional<std::string> mount_from) {
  auto pushed = impl_->push_blob(reference, blob, mount_from);
  if (!pushed) {
    return with_context(std::move(pushed.error()),
                        "pushing blob " + blob.digest.str() + " to " + reference.str());
  }
  return pushed;
}

Result<Digest> RegistryClient::push_manifest(const Reference& reference,
                                             std::string_view media_type, std::string_view bytes) {
  auto pushed = impl_->push_manifest(reference, media_type, bytes);
  if (!pushed)
    return with_context(std::move(pushed.error()), "pushing manifest to " + reference.str());
  return pushed;
}

namespace {

bool has_blob(const fs::path& path, int64_t size) {
  std::error_code error;
  return fs::is_regular_file(path, error) &&
         static_cast<int64_t>(fs::file_size(path, error)) == size && !error;
}

}  // namespace

Result<ResolvedImage> RegistryClient::pull_image(const Reference& reference,
                                                 const fs::path& layout_dir) {
  auto resolved = resolve(reference);
  if (!resolved) return resolved;
  std::string doing = "pulling " + reference.str() + " into " + layout_dir.string();
  if (auto ready = init_layout(layout_dir); !ready) return with_context(ready.error(), doing);
  std::vector<std::pair<std::string, Descriptor>> blobs;
  blobs.emplace_back("config", *resolved->parsed.config);
  for (const auto& layer : resolved->parsed.layers) blobs.emplace_back("layer", layer);
  for (const auto& [kind, blob] : blobs) {
    fs::path path = layout_blob_path(layout_dir, blob.digest);
    if (has_blob(path, blob.size)) continue;  // written only after verification, so trusted
    auto fetched =
        impl_->fetch_blob(reference, blob.digest, path, static_cast<uint64_t>(blob.size));
    if (!fetched) {
      return with_context(std::move(fetched.error()),
                          "pulling " + kind + " " + blob.digest.str() + " of " + reference.str());
    }
  }
  const auto& manifest = resolved->manifest;
  fs::path manifest_path = layout_blob_path(layout_dir, manifest.digest);
  Descriptor entry;
  entry.media_type = manifest.media_type;
  entry.digest = manifest.digest;
  entry.size = static_cast<int64_t>(manifest.bytes.size());
  std::error_code dir_error;
  fs::create_directories(manifest_path.parent_path(), dir_error);
  Status written = write_file_atomically(manifest_path, manifest.bytes);
  if (written) written = add_to_layout_index(layout_dir, entry, reference.tag);
  if (!written) return with_context(std::move(written.error()), doing);
  return resolved;
}

}  // namespace wharf::oci
