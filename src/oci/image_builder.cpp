// Image building: a deterministic tar written by libarchive, gzipped by zlib and hashed on both
// sides in one pass, then the config and manifest that describe it.
#include "oci/image_builder.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <utility>

#include "common/unique_fd.hpp"
#include "oci/layout.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBufferSize = 64 << 10;

std::unexpected<Error> io_error(std::string_view doing, const fs::path& path) {
  return fail(ErrorCode::kInternal,
              std::string(doing) + " " + path.string() + ": " + std::strerror(errno));
}

// RFC 3339 in UTC, as image configs write times.
std::string rfc3339(TimePoint time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Takes the uncompressed tar stream: hashes it (the diff id), gzips it into a file and hashes
// what was written (the layer digest).
class LayerSink {
 public:
  LayerSink() = default;
  LayerSink(const LayerSink&) = delete;
  LayerSink& operator=(const LayerSink&) = delete;
  ~LayerSink() {
    if (deflating_) deflateEnd(&stream_);
  }

  Status open(const fs::path& path, int level) {
    path_ = path;
    fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd_) return io_error("creating", path);
    // windowBits 15 + 16: a gzip wrapper with mtime 0 and no name, so output is reproducible.
    if (deflateInit2(&stream_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return fail(ErrorCode::kInternal, "cannot start gzip compression");
    }
    deflating_ = true;
    return {};
  }

  Status write(std::string_view bytes) {
    diff_hasher_.update(bytes);
    tar_size_ += bytes.size();
    return deflate_some(bytes, Z_NO_FLUSH);
  }

  Status finish() {
    if (auto done = deflate_some({}, Z_FINISH); !done) return done;
    if (::fdatasync(fd_.get()) != 0) return io_error("syncing", path_);
    fd_.reset();
    return {};
  }

  Digest diff_id() const { return diff_hasher_.digest(); }
  Digest layer_digest() const { return layer_hasher_.digest(); }
  uint64_t layer_size() const { return layer_size_; }

 private:
  Status deflate_some(std::string_view input, int flush) {
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(input.size());
    char out[kBufferSize];
    int result = Z_OK;
    do {
      stream_.next_out = reinterpret_cast<Bytef*>(out);
      stream_.avail_out = sizeof out;
      result = deflate(&stream_, flush);
      if (result == Z_STREAM_ERROR) return fail(ErrorCode::kInternal, "gzip compression failed");
      std::string_view produced(out, sizeof out - stream_.avail_out);
      if (auto written = write_out(produced); !written) return written;
    } while (stream_.avail_out == 0 || (flush == Z_FINISH && result != Z_STREAM_END));
    return {};
  }

  Status write_out(std::string_view bytes) {
    layer_hasher_.update(bytes);
    layer_size_ += bytes.size();
    while (!bytes.empty()) {
      ssize_t count = ::write(fd_.get(), bytes.data(), bytes.size());
      if (count < 0 && errno == EINTR) continue;
      if (count < 0) return io_error("writing", path_);
      bytes.remove_prefix(static_cast<std::size_t>(count));
    }
    return {};
  }

  fs::path path_;
  UniqueFd fd_;
  z_stream stream_{};
  bool deflating_ = false;
  Hasher diff_hasher_;
  Hasher layer_hasher_;
  uint64_t tar_size_ = 0;
  uint64_t layer_size_ = 0;
};

struct ArchiveWriteFree {
  void operator()(archive* handle) const { archive_write_free(handle); }
};
struct ArchiveReadFree {
  void operator()(archive* handle) const { archive_read_free(handle); }
};
struct EntryFree {
  void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

// A pax (ustar where it suffices) stream into a LayerSink.
class TarWriter {
 public:
  explicit TarWriter(LayerSink& sink, std::optional<TimePoint> mtime)
      : sink_(sink), mtime_(mtime) {}

  Status open() {
    archive_.reset(archive_write_new());
    archive_write_set_format_pax_restricted(archive_.get());
    archive_write_set_bytes_in_last_block(archive_.get(), 1);
    if (archive_write_open(archive_.get(), this, nullptr, &TarWriter::on_write, nullptr) !=
        ARCHIVE_OK) {
      return failure("starting the tar stream");
    }
    return {};
  }

  // A fresh entry with the fields every entry carries; nothing host-specific beyond them.
  EntryPtr entry(const std::string& path, mode_t type, mode_t perm, int64_t uid, int64_t gid,
                 TimePoint mtime) {
    EntryPtr created(archive_entry_new());
    archive_entry_set_pathname(created.get(), path.c_str());
    archive_entry_set_filetype(created.get(), type);
    archive_entry_set_perm(created.get(), perm & 07777);
    archive_entry_set_uid(created.get(), uid);
    archive_entry_set_gid(created.get(), gid);
    auto when = std::chrono::duration_cast<std::chrono::nanoseconds>(
        (mtime_ ? *mtime_ : mtime).time_since_epoch());
    archive_entry_set_mtime(created.get(), when.count() / 1'000'000'000,
                            static_cast<long>(when.count() % 1'000'000'000));
    return created;
  }

  Status write_header(archive_entry* entry) {
    if (archive_write_header(archive_.get(), entry) != ARCHIVE_OK) {
      return failure("writing the entry for " + std::string(archive_entry_pathname(entry)));
    }
    return {};
  }

  Status write_data(std::string_view bytes, std::string_view path) {
    la_ssize_t written = archive_write_data(archive_.get(), bytes.data(), bytes.size());
    if (written != static_cast<la_ssize_t>(bytes.size())) {
      return failure("writing the content of " + std::string(path));
    }
    return {};
  }

  Status close() {
    if (archive_write_close(archive_.get()) != ARCHIVE_OK) return failure("ending the tar stream");
    return sink_.finish();
  }

 private:
  static la_ssize_t on_write(archive* handle, void* user, const void* buffer, size_t length) {
    auto* self = static_cast<TarWriter*>(user);
    auto written = self->sink_.write(std::string_view(static_cast<const char*>(buffer), length));
    if (!written) {
      self->sink_error_ = std::move(written.error());
      archive_set_error(handle, EIO, "%s", self->sink_error_->message.c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }

  std::unexpected<Error> failure(const std::string& doing) {
    if (sink_error_) return std::unexpected(sink_error_->context(doing));
    const char* detail = archive_error_string(archive_.get());
    return fail(ErrorCode::kInternal, doing + ": " + (detail ? detail : "libarchive failed"));
  }

  LayerSink& sink_;
  std::optional<TimePoint> mtime_;
  std::unique_ptr<archive, ArchiveWriteFree> archive_;
  std::optional<Error> sink_error_;
};

TimePoint mtime_of(const struct stat& info) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec)));
}

// Walks a directory tree in sorted order into the tar.
class TreeArchiver {
 public:
  TreeArchiver(TarWriter& tar, fs::path root) : tar_(tar), root_(std::move(root)) {}

  Status add_children(const std::string& relative) {
    fs::path directory = relative.empty() ? root_ : root_ / relative;
    std::vector<std::string> names;
    std::error_code error;
    for (fs::directory_iterator it(directory, error), end; !error && it != end;
         it.increment(error)) {
      names.push_back(it->path().filename().string());
    }
    if (error) {
      return fail(ErrorCode::kInternal, "listing " + directory.string() + ": " + error.message());
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string child = relative.empty() ? name : relative + "/" + name;
      if (auto added = add(child); !added) return added;
    }
    return {};
  }

 private:
  Status add(const std::string& relative) {
    fs::path path = root_ / relative;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return io_error("reading", path);
    mode_t type = info.st_mode & S_IFMT;
    if (type == S_IFSOCK) return {};
    EntryPtr entry =
        tar_.entry(relative, type, info.st_mode, info.st_uid, info.st_gid, mtime_of(info));
    bool with_data = false;
    if (type == S_IFREG && info.st_nlink > 1) {
      auto [first, inserted] = links_.try_emplace({info.st_dev, info.st_ino}, relative);
      if (!inserted) archive_entry_set_hardlink(entry.get(), first->second.c_str());
      with_data = inserted;
    } else if (type == S_IFREG) {
      with_data = true;
    }
    if (with_data) archive_entry_set_size(entry.get(), info.st_size);
    if (type == S_IFLNK) {
      std::error_code error;
      fs::path target = fs::read_symlink(path, error);
      if (error)
        return fail(ErrorCode::kInternal, "reading link " + path.string() + ": " + error.message());
      archive_entry_set_symlink(entry.get(), target.c_str());
    }
    if (type == S_IFCHR || type == S_IFBLK) archive_entry_set_rdev(entry.get(), info.st_rdev);
    if (auto written = tar_.write_header(entry.get()); !written) return written;
    if (with_data) {
      if (auto copied = copy_file(path, static_cast<uint64_t>(info.st_size), relative); !copied) {
        return copied;
      }
    }
    if (type == S_IFDIR) return add_children(relative);
    return {};
  }

  Status copy_file(const fs::path& path, uint64_t size, const std::string& relative) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return io_error("opening", path);
    char buffer[kBufferSize];
    uint64_t copied = 0;
    while (copied < size) {
      ssize_t count = ::read(fd.get(), buffer, std::min<uint64_t>(sizeof buffer, size - copied));
      if (count < 0 && errno == EINTR) continue;
      if (count < 0) return io_error("reading", path);
      if (count == 0) break;
      if (auto written = tar_.write_data(std::string_view(buffer, count), relative); !written) {
        return written;
      }
      copied += static_cast<uint64_t>(count);
    }
    if (copied != size) {
      return fail(ErrorCode::kInternal, path.string() + " changed while it was being archived");
    }
    return {};
  }

  TarWriter& tar_;
  fs::path root_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first path of each hardlinked file
};

// "./a/b", "/a/b" → "a/b"; nullopt for the root itself; an error for ".." components.
Result<std::optional<std::string>> relative_tar_path(std::string_view path) {
  std::string out;
  while (!path.empty()) {
    auto slash = path.find('/');
    std::string_view component = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    if (component.empty() || component == ".") continue;
    if (component == "..") return invalid("the tar entry path has a '..' component");
    if (!out.empty()) out += '/';
    out += component;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

Status copy_tar(TarWriter& tar, const fs::path& tar_path) {
  std::unique_ptr<archive, ArchiveReadFree> reader(archive_read_new());
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  auto failure = [&](std::string doing) {
    const char* detail = archive_error_string(reader.get());
    return fail(ErrorCode::kInvalidParameter,
                doing + ": " + (detail ? detail : "not a tar file libarchive can read"));
  };
  if (archive_read_open_filename(reader.get(), tar_path.c_str(), kBufferSize) != ARCHIVE_OK) {
    return failure("opening " + tar_path.string());
  }
  archive_entry* in = nullptr;
  while (true) {
    int next = archive_read_next_header(reader.get(), &in);
    if (next == ARCHIVE_EOF) return {};
    if (next != ARCHIVE_OK && next != ARCHIVE_WARN) return failure("reading " + tar_path.string());
    std::string original = archive_entry_pathname(in) ? archive_entry_pathname(in) : "";
    auto relative = relative_tar_path(original);
    if (!relative) return std::unexpected(relative.error().context("entry '" + original + "'"));
    mode_t type = archive_entry_filetype(in);
    if (!*relative || type == AE_IFSOCK) continue;
    TimePoint mtime = TimePoint(std::chrono::duration_cast<TimePoint::duration>(
        std::chrono::seconds(archive_entry_mtime(in)) +
        std::chrono::nanoseconds(archive_entry_mtime_nsec(in))));
    EntryPtr out = tar.entry(**relative, type, archive_entry_perm(in), archive_entry_uid(in),
                             archive_entry_gid(in), mtime);
    bool with_data = false;
    if (const char* hardlink = archive_entry_hardlink(in)) {
      auto target = relative_tar_path(hardlink);
      if (!target || !*target) {
        return invalid("entry '" + original + "' links to '" + hardlink + "', outside the tree");
      }
      archive_entry_set_hardlink(out.get(), (*target)->c_str());
    } else if (type == AE_IFREG) {
      with_data = true;
      archive_entry_set_size(out.get(), archive_entry_size(in));
    }
    if (type == AE_IFLNK && archive_entry_symlink(in)) {
      archive_entry_set_symlink(out.get(), archive_entry_symlink(in));
    }
    if (type == AE_IFCHR || type == AE_IFBLK)
      archive_entry_set_rdev(out.get(), archive_entry_rdev(in));
    if (auto written = tar.write_header(out.get()); !written) return written;
    if (!with_data) continue;
    char buffer[kBufferSize];
    while (true) {
      la_ssize_t count = archive_read_data(reader.get(), buffer, sizeof buffer);
      if (count < 0) return failure("reading the content of " + original);
      if (count == 0) break;
      if (auto written = tar.write_data(std::string_view(buffer, count), original); !written) {
        return written;
      }
    }
  }
}

std::string config_json(const ImageBuildOptions& options, const RuntimeConfig& runtime,
                        const Digest& diff_id) {
  auto strings = [](const std::vector<std::string>& values) {
    boost::json::array array;
    for (const auto& value : values) array.emplace_back(value);
    return array;
  };
  boost::json::object config;
  if (!runtime.user.empty()) config["User"] = runtime.user;
  if (!runtime.exposed_ports.empty()) {
    boost::json::object ports;
    for (const auto& port : runtime.exposed_ports) ports[port] = boost::json::object{};
    config["ExposedPorts"] = std::move(ports);
  }
  if (!runtime.env.empty()) config["Env"] = strings(runtime.env);
  if (!runtime.entrypoint.empty()) config["Entrypoint"] = strings(runtime.entrypoint);
  if (!runtime.cmd.empty()) config["Cmd"] = strings(runtime.cmd);
  if (!runtime.working_dir.empty()) config["WorkingDir"] = runtime.working_dir;
  if (!runtime.labels.empty()) {
    boost::json::object labels;
    for (const auto& [name, value] : runtime.labels) labels[name] = value;
    config["Labels"] = std::move(labels);
  }
  boost::json::object history;
  boost::json::object image;
  if (options.created) {
    image["created"] = rfc3339(*options.created);
    history["created"] = rfc3339(*options.created);
  }
  history["created_by"] = options.created_by;
  image["architecture"] = options.architecture;
  image["os"] = options.os;
  image["config"] = std::move(config);
  image["rootfs"] =
      boost::json::object{{"type", "layers"}, {"diff_ids", boost::json::array{diff_id.str()}}};
  image["history"] = boost::json::array{std::move(history)};
  return boost::json::serialize(image);
}

boost::json::object descriptor_json(const BuiltBlob& blob) {
  return boost::json::object{
      {"mediaType", blob.media_type}, {"digest", blob.digest.str()}, {"size", blob.size}};
}

std::string manifest_json(const BuiltBlob& config, const BuiltBlob& layer) {
  boost::json::object manifest{{"schemaVersion", 2},
                               {"mediaType", kOciManifest},
                               {"config", descriptor_json(config)},
                               {"layers", boost::json::array{descriptor_json(layer)}}};
  return boost::json::serialize(manifest);
}

Result<std::string> normalize_port(std::string_view text) {
  std::string_view number = text.substr(0, text.find('/'));
  std::string protocol = text.find('/') == std::string_view::npos
                             ? "tcp"
                             : std::string(text.substr(text.find('/') + 1));
  for (char& c : protocol) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool digits = !number.empty() && number.size() <= 5 &&
                number.find_first_not_of("0123456789") == std::string_view::npos;
  int port = digits ? std::stoi(std::string(number)) : 0;
  if (port < 1 || port > 65535) {
    return invalid("exposed port '" + std::string(text) + "' must be a number from 1 to 65535");
  }
  if (protocol != "tcp" && protocol != "udp" && protocol != "sctp") {
    return invalid("exposed port '" + std::string(text) + "' must use tcp, udp or sctp");
  }
  return std::to_string(port) + "/" + protocol;
}

}  // namespace

Result<RuntimeConfig> normalize_runtime_config(RuntimeConfig config) {
  for (const auto& variable : config.env) {
    auto equals = variable.find('=');
    if (equals == std::string::npos || equals == 0) {
      return invalid("environment entry '" + variable + "' must be NAME=value");
    }
  }
  if (!config.working_dir.empty() && !config.working_dir.starts_with('/')) {
    return invalid("working directory '" + config.working_dir + "' must be an absolute path");
  }
  std::vector<std::string> ports;
  for (const auto& port : config.exposed_ports) {
    auto normalized = normalize_port(port);
    if (!normalized) return std::unexpected(normalized.error());
    if (std::find(ports.begin(), ports.end(), *normalized) == ports.end()) {
      ports.push_back(*normalized);
    }
  }
  config.exposed_ports = std::move(ports);
  return config;
}

Result<std::vector<std::string>> parse_command_words(std::string_view text) {
  std::vector<std::string> words;
  auto first = text.find_first_not_of(" \t\n");
  if (first != std::string_view::npos && text[first] == '[') {
    boost::system::error_code parse_error;
    auto value = boost::json::parse(text, parse_error);
    if (parse_error || !value.is_array()) {
      return invalid("command '" + std::string(text) + "' is not a JSON array of strings");
    }
    for (const auto& word : value.as_array()) {
      if (!word.is_string()) {
        return invalid("command '" + std::string(text) + "' is not a JSON array of strings");
      }
      words.emplace_back(word.as_string());
    }
    return words;
  }
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      continue;
    }
    word += c;
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

Descriptor BuiltBlob::descriptor() const {
  Descriptor descriptor;
  descriptor.media_type = media_type;
  descriptor.digest = digest;
  descriptor.size = static_cast<int64_t>(size);
  return descriptor;
}

Result<BuiltImage> build_image(const fs::path& rootfs, const ImageBuildOptions& options) {
  std::string doing = "building an image from " + rootfs.string();
  auto context = [&](Error error) { return std::unexpected(std::move(error).context(doing)); };
  auto runtime = normalize_runtime_config(options.config);
  if (!runtime) return context(std::move(runtime.error()));
  if (options.compression_level < 1 || options.compression_level > 9) {
    return context(Error{ErrorCode::kInvalidParameter, "gzip level must be 1-9"});
  }
  std::error_code error;
  auto status = fs::status(rootfs, error);
  if (error || (!fs::is_directory(status) && !fs::is_regular_file(status))) {
    return context(Error{ErrorCode::kInvalidParameter,
                         "the root filesystem must be a directory or a tar file" +
                             (error ? ": " + error.message() : std::string())});
  }
  auto dir = TempDir::create("wharf-image-", options.temp_parent);
  if (!dir) return context(std::move(dir.error()));
  if (auto ready = init_layout(dir->path()); !ready) return context(std::move(ready.error()));

  fs::path layer_temp = dir->path() / "layer.tar.gz.partial";
  LayerSink sink;
  if (auto opened = sink.open(layer_temp, options.compression_level); !opened) {
    return context(std::move(opened.error()));
  }
  TarWriter tar(sink, options.mtime);
  Status archived = tar.open();
  if (archived) {
    archived = fs::is_directory(status) ? TreeArchiver(tar, rootfs).add_children("")
                                        : copy_tar(tar, rootfs);
  }
  if (archived) archived = tar.close();
  if (!archived) return context(std::move(archived.error()));

  BuiltImage image;
  image.dir = std::move(*dir);
  const fs::path& layout = image.dir.path();
  image.diff_id = sink.diff_id();
  image.layer = BuiltBlob{std::string(kOciLayerGzip), sink.layer_digest(), sink.layer_size(),
                          layout_blob_path(layout, sink.layer_digest())};
  fs::create_directories(image.layer.path.parent_path(), error);
  if (error) {
    return context(
        Error{ErrorCode::kInternal,
              "creating " + image.layer.path.parent_path().string() + ": " + error.message()});
  }
  if (::rename(layer_temp.c_str(), image.layer.path.c_str()) != 0) {
    return context(io_error("storing the layer as", image.layer.path).error());
  }
  std::string config = config_json(options, *runtime, image.diff_id);
  image.config = BuiltBlob{std::string(kOciImageConfig), digest_of(config), config.size(),
                           layout_blob_path(layout, digest_of(config))};
  image.manifest = manifest_json(image.config, image.layer);
  image.manifest_digest = digest_of(image.manifest);
  Descriptor manifest;
  manifest.media_type = std::string(kOciManifest);
  manifest.digest = image.manifest_digest;
  manifest.size = static_cast<int64_t>(image.manifest.size());
  Status stored = write_file_atomically(image.config.path, config);
  if (stored)
    stored = write_file_atomically(layout_blob_path(layout, manifest.digest), image.manifest);
  if (stored) stored = add_to_layout_index(layout, manifest, "");
  if (!stored) return context(std::move(stored.error()));
  return image;
}

Result<Digest> push_image(RegistryClient& client, const Reference& reference,
                          const BuiltImage& image) {
  for (const BuiltBlob* blob : {&image.layer, &image.config}) {
    auto pushed = client.push_blob(reference, blob->source());
    if (!pushed) return std::unexpected(std::move(pushed.error()));
  }
  return client.push_manifest(reference, image.manifest_media_type, image.manifest);
}

}  // namespace wharf::oci
