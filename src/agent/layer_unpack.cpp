// Layer unpacking: libarchive reads the blob, *at() calls that never follow symlinks write it.
#include "agent/layer_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "agent/remove_tree.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxPathBytes = PATH_MAX - 1;
constexpr std::size_t kMaxNameBytes = NAME_MAX;
constexpr std::size_t kReadBlockBytes = 128 * 1024;
constexpr std::size_t kShownPathBytes = 120;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOverlayOpaqueXattr = "trusted.overlay.opaque";

using Components = std::vector<std::string>;
using Times = std::array<timespec, 2>;  // atime, mtime

Error layer_error(std::string message) {
  return Error{ErrorCode::kInvalidLayer, std::move(message)};
}

std::string archive_message(archive* reader) {
  const char* message = archive_error_string(reader);
  return message != nullptr ? message : "unknown libarchive error";
}

// How an entry is named in errors: quoted, and cut short when huge.
std::string quoted(std::string_view path) {
  if (path.size() <= kShownPathBytes) return "'" + std::string(path) + "'";
  return "'" + std::string(path.substr(0, kShownPathBytes)) + "…' (" + std::to_string(path.size()) +
         " bytes)";
}

std::string join(std::span<const std::string> components) {
  std::string path;
  for (const std::string& component : components) {
    if (!path.empty()) path += '/';
    path += component;
  }
  return path;
}

// An entry path or hard link target as components, read the way Docker reads them; see the
// header for what is refused.
Result<Components> split_entry_path(std::string_view path) {
  if (path.size() > kMaxPathBytes) {
    return std::unexpected(
        layer_error("path is longer than " + std::to_string(kMaxPathBytes) + " bytes"));
  }
  Components components;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = std::min(path.find('/', start), path.size());
    std::string_view component = path.substr(start, end - start);
    start = end + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..") return std::unexpected(layer_error("path has a '..' component"));
    if (component.size() > kMaxNameBytes) {
      return std::unexpected(layer_error("path has a component longer than " +
                                         std::to_string(kMaxNameBytes) + " bytes"));
    }
    components.emplace_back(component);
  }
  return components;
}

// libarchive keeps names as bytes, UTF-8 or both; take whichever it has.
const char* entry_pathname(archive_entry* entry) {
  const char* path = archive_entry_pathname(entry);
  return path != nullptr ? path : archive_entry_pathname_utf8(entry);
}

const char* entry_symlink(archive_entry* entry) {
  const char* target = archive_entry_symlink(entry);
  return target != nullptr ? target : archive_entry_symlink_utf8(entry);
}

const char* entry_hardlink(archive_entry* entry) {
  const char* target = archive_entry_hardlink(entry);
  return target != nullptr ? target : archive_entry_hardlink_utf8(entry);
}

Times entry_times(archive_entry* entry) {
  timespec mtime{archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  timespec atime = mtime;
  if (archive_entry_atime_is_set(entry)) {
    atime = {archive_entry_atime(entry), archive_entry_atime_nsec(entry)};
  }
  return {atime, mtime};
}

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<Owner> entry_owner(archive_entry* entry) {
  constexpr la_int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged" to chown
  la_int64_t uid = archive_entry_uid(entry);
  la_int64_t gid = archive_entry_gid(entry);
  if (uid < 0 || uid > kMaxId || gid < 0 || gid > kMaxId) {
    return std::unexpected(layer_error("uid " + std::to_string(uid) + " or gid " +
                                       std::to_string(gid) + " is out of range"));
  }
  return Owner{static_cast<uid_t>(uid), static_cast<gid_t>(gid)};
}

// Only these extended attributes reach the disk; overlayfs's own (trusted.overlay.*, or
// user.overlay.* under "userxattr") above all must not, as they would steer the mount.
bool xattr_allowed(std::string_view name) {
  if (name.starts_with("user.overlay.")) return false;
  return name.starts_with("user.") || name == "security.capability";
}

// Owner, then mode (chown clears setuid bits), then xattrs (chown clears file capabilities).
Status apply_metadata(int fd, archive_entry* entry) {
  auto owner = entry_owner(entry);
  if (!owner) return std::unexpected(std::move(owner.error()));
  if (fchown(fd, owner->uid, owner->gid) != 0) return std::unexpected(errno_error("chown"));
  if (fchmod(fd, archive_entry_perm(entry) & 07777) != 0) {
    return std::unexpected(errno_error("chmod"));
  }
  archive_entry_xattr_reset(entry);
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    if (!xattr_allowed(name)) continue;
    if (fsetxattr(fd, name, value, size, 0) != 0 && errno != ENOTSUP) {
      return std::unexpected(errno_error("setting extended attribute " + std::string(name)));
    }
  }
  return {};
}

Status set_opaque(int dir_fd) {
  if (fsetxattr(dir_fd, kOverlayOpaqueXattr, "y", 1, 0) != 0) {
    return std::unexpected(errno_error(std::string("setting ") + kOverlayOpaqueXattr));
  }
  return {};
}

// Makes room for a new entry called `name` in `parent_fd`: whatever is there goes, except that
// a directory stays when the new entry is one too. Says whether a directory stayed.
Result<bool> clear_for_entry(int parent_fd, const std::string& name, bool new_is_dir) {
  struct stat existing {};
  if (fstatat(parent_fd, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return std::unexpected(errno_error("inspecting the existing entry"));
  }
  if (S_ISDIR(existing.st_mode)) {
    if (new_is_dir) return true;
    if (auto removed = remove_tree_at(parent_fd, name); !removed) {
      return std::unexpected(std::move(removed.error()).context("replacing a directory"));
    }
    return false;
  }
  if (unlinkat(parent_fd, name.c_str(), 0) != 0) {
    return std::unexpected(errno_error("replacing the existing entry"));
  }
  return false;
}

Status write_all_at(int fd, const char* data, std::size_t size, off_t offset) {
  while (size > 0) {
    ssize_t written = pwrite(fd, data, size, offset);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return std::unexpected(errno_error("writing file data"));
    data += written;
    size -= static_cast<std::size_t>(written);
    offset += written;
  }
  return {};
}

// Writes one tar's entries beneath a directory that only this unpack uses.
class Extractor {
 public:
  explicit Extractor(int root_fd) : root_fd_(root_fd) {}

  Status extract_all(archive* reader);

 private:
  Status extract(archive* reader, archive_entry* entry, const Components& path);
  Status set_root(archive_entry* entry);
  Status make_directory(int parent_fd, const Components& path, archive_entry* entry);
  Status write_file(archive* reader, int parent_fd, const std::string& name, archive_entry* entry);
  Status make_symlink(int parent_fd, const std::string& name, archive_entry* entry);
  Status make_fifo(int parent_fd, const std::string& name, archive_entry* entry);
  Status hard_link(int parent_fd, const Components& path, std::string_view target);
  Status whiteout(int parent_fd, const Components& path);
  Status apply_directory_times();

  Result<int> parent_dir(const Components& path);
  Result<UniqueFd> open_dir(std::span<const std::string> path, bool create) const;
  Error not_a_directory(int dir_fd, std::span<const std::string> path) const;

  int root_fd_;
  // The last entry's parent, open: tars list a directory's files together.
  Components cached_parent_path_;
  UniqueFd cached_parent_;
  // Directories get their mtimes once nothing more is created in them.
  std::vector<std::pair<Components, Times>> directory_times_;
  // Paths this layer whited out; a directory created there later must hide lower layers.
  std::set<std::string> whiteouts_;
};

Status Extractor::extract_all(archive* reader) {
  archive_entry* entry = nullptr;
  while (true) {
    int status = archive_read_next_header(reader, &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK && status != ARCHIVE_WARN) {
      return std::unexpected(layer_error("reading the tar: " + archive_message(reader)));
    }
    const char* raw_path = entry_pathname(entry);
    if (raw_path == nullptr) return std::unexpected(layer_error("a tar entry has no path"));
    std::string context = "layer entry " + quoted(raw_path);
    auto path = split_entry_path(raw_path);
    if (!path) return std::unexpected(std::move(path.error()).context(context));
    if (auto done = extract(reader, entry, *path); !done) {
      return std::unexpected(std::move(done.error()).context(context));
    }
  }
  return apply_directory_times();
}

Status Extractor::extract(archive* reader, archive_entry* entry, const Components& path) {
  if (path.empty()) return set_root(entry);
  if (path.size() > 1 && path.front().starts_with(kWhiteoutMetaPrefix)) return {};  // aufs's
  // An entry at the cached parent or above it may replace a directory on the cached path.
  if (path.size() <= cached_parent_path_.size() &&
      std::equal(path.begin(), path.end(), cached_parent_path_.begin())) {
    cached_parent_.reset();
    cached_parent_path_.clear();
  }
  auto parent_fd = parent_dir(path);
  if (!parent_fd) return std::unexpected(std::move(parent_fd.error()));
  const std::string& name = path.back();
  if (name.starts_with(kWhiteoutPrefix)) return whiteout(*parent_fd, path);
  if (const char* target = entry_hardlink(entry)) return hard_link(*parent_fd, path, target);
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      return make_directory(*parent_fd, path, entry);
    case AE_IFREG:
      return write_file(reader, *parent_fd, name, entry);
    case AE_IFLNK:
      return make_symlink(*parent_fd, name, entry);
    case AE_IFIFO:
      return make_fifo(*parent_fd, name, entry);
    case AE_IFCHR:
      return std::unexpected(layer_error("character devices are not allowed in image layers"));
    case AE_IFBLK:
      return std::unexpected(layer_error("block devices are not allowed in image layers"));
    default:
      return std::unexpected(
          layer_error("entries of this type (sockets or unknown) are not "
                      "allowed in image layers"));
  }
}

Status Extractor::set_root(archive_entry* entry) {
  if (archive_entry_filetype(entry) != AE_IFDIR) {
    return std::unexpected(layer_error("names the layer root but is not a directory"));
  }
  if (auto applied = apply_metadata(root_fd_, entry); !applied) return applied;
  directory_times_.emplace_back(Components{}, entry_times(entry));
  return {};
}

Status Extractor::make_directory(int parent_fd, const Components& path, archive_entry* entry) {
  const std::string& name = path.back();
  auto kept = clear_for_entry(parent_fd, name, true);
  if (!kept) return std::unexpected(std::move(kept.error()));
  if (!*kept && mkdirat(parent_fd, name.c_str(), 0700) != 0) {
    return std::unexpected(errno_error("creating the directory"));
  }
  UniqueFd dir(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return std::unexpected(errno_error("opening the directory"));
  if (auto applied = apply_metadata(dir.get(), entry); !applied) return applied;
  if (whiteouts_.contains(join(path))) {
    if (auto opaque = set_opaque(dir.get()); !opaque) return opaque;
  }
  directory_times_.emplace_back(path, entry_times(entry));
  return {};
}

Status Extractor::write_file(archive* reader, int parent_fd, const std::string& name,
                             archive_entry* entry) {
  if (auto cleared = clear_for_entry(parent_fd, name, false); !cleared) {
    return std::unexpected(std::move(cleared.error()));
  }
  UniqueFd file(
      openat(parent_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!file) return std::unexpected(errno_error("creating the file"));
  la_int64_t written_end = 0;
  while (true) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int status = archive_read_data_block(reader, &block, &size, &offset);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK) {
      return std::unexpected(layer_error("reading its data: " + archive_message(reader)));
    }
    if (auto written = write_all_at(file.get(), static_cast<const char*>(block), size, offset);
        !written) {
      return written;
    }
    written_end = std::max(written_end, offset + static_cast<la_int64_t>(size));
  }
  // A sparse file may end in a hole that no data block covers.
  la_int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
  if (written_end < size && ftruncate(file.get(), size) != 0) {
    return std::unexpected(errno_error("setting the file size"));
  }
  if (auto applied = apply_metadata(file.get(), entry); !applied) return applied;
  Times times = entry_times(entry);
  if (futimens(file.get(), times.data()) != 0) return std::unexpected(errno_error("utimens"));
  return {};
}

Status Extractor::make_symlink(int parent_fd, const std::string& name, archive_entry* entry) {
  const char* target = entry_symlink(entry);
  if (target == nullptr || *target == '\0') {
    return std::unexpected(layer_error("symbolic link without a target"));
  }
  auto owner = entry_owner(entry);
  if (!owner) return std::unexpected(std::move(owner.error()));
  if (auto cleared = clear_for_entry(parent_fd, name, false); !cleared) {
    return std::unexpected(std::move(cleared.error()));
  }
  // The target is stored, never resolved here: the runtime resolves it inside the rootfs.
  if (symlinkat(target, parent_fd, name.c_str()) != 0) {
    return std::unexpected(errno_error("creating the symbolic link"));
  }
  Times times = entry_times(entry);
  if (fchownat(parent_fd, name.c_str(), owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) != 0 ||
      utimensat(parent_fd, name.c_str(), times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
    return std::unexpected(errno_error("setting the symbolic link's owner and times"));
  }
  return {};
}

Status Extractor::make_fifo(int parent_fd, const std::string& name, archive_entry* entry) {
  auto owner = entry_owner(entry);
  if (!owner) return std::unexpected(std::move(owner.error()));
  if (auto cleared = clear_for_entry(parent_fd, name, false); !cleared) {
    return std::unexpected(std::move(cleared.error()));
  }
  if (mknodat(parent_fd, name.c_str(), S_IFIFO | 0600, 0) != 0) {
    return std::unexpected(errno_error("creating the FIFO"));
  }
  // Opening a FIFO would block; it was just made here, so the *at() calls reach it.
  Times times = entry_times(entry);
  if (fchownat(parent_fd, name.c_str(), owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) != 0 ||
      fchmodat(parent_fd, name.c_str(), archive_entry_perm(entry) & 07777, 0) != 0 ||
      utimensat(parent_fd, name.c_str(), times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
    return std::unexpected(errno_error("setting the FIFO's owner, mode and times"));
  }
  return {};
}

Status Extractor::hard_link(int parent_fd, const Components& path, std::string_view target) {
  std::string context = "hard link target " + quoted(target);
  auto target_path = split_entry_path(target);
  if (!target_path) return std::unexpected(std::move(target_path.error()).context(context));
  if (target_path->empty()) {
    return std::unexpected(layer_error(context + " is the layer root"));
  }
  if (*target_path == path) return {};  // a link to itself: the file is already there
  std::span<const std::string> target_parent(target_path->begin(), target_path->size() - 1);
  auto target_dir = open_dir(target_parent, false);
  if (!target_dir) return std::unexpected(std::move(target_dir.error()).context(context));
  const std::string& target_name = target_path->back();
  struct stat existing {};
  if (fstatat(target_dir->get(), target_name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::unexpected(layer_error(context + " is not in the layer"));
    return std::unexpected(errno_error("inspecting " + context));
  }
  if (S_ISDIR(existing.st_mode)) {
    return std::unexpected(layer_error(context + " is a directory"));
  }
  const std::string& name = path.back();
  if (auto cleared = clear_for_entry(parent_fd, name, false); !cleared) {
    return std::unexpected(std::move(cleared.error()));
  }
  // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
  if (linkat(target_dir->get(), target_name.c_str(), parent_fd, name.c_str(), 0) != 0) {
    return std::unexpected(errno_error("creating the hard link"));
  }
  return {};
}

Status Extractor::whiteout(int parent_fd, const Components& path) {
  const std::string& name = path.back();
  if (name == kOpaqueMarker) {
    UniqueFd dir(openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return std::unexpected(errno_error("opening the opaque directory"));
    return set_opaque(dir.get());
  }
  if (name.starts_with(kWhiteoutMetaPrefix)) return {};  // aufs bookkeeping, meaningless here
  std::string hidden = name.substr(kWhiteoutPrefix.size());
  if (hidden.empty() || hidden == "." || hidden == "..") {
    return std::unexpected(layer_error("whiteout names no file"));
  }
  struct stat existing {};
  if (fstatat(parent_fd, hidden.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    // This layer has the path too: it stays, and only lower layers' copy is hidden.
    if (!S_ISDIR(existing.st_mode)) return {};
    UniqueFd dir(
        openat(parent_fd, hidden.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return std::unexpected(errno_error("opening the whited-out directory"));
    return set_opaque(dir.get());
  }
  if (errno != ENOENT) return std::unexpected(errno_error("inspecting the whited-out path"));
  if (mknodat(parent_fd, hidden.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
    return std::unexpected(errno_error("creating the overlay whiteout"));
  }
  Components hidden_path(path.begin(), path.end() - 1);
  hidden_path.push_back(std::move(hidden));
  whiteouts_.insert(join(hidden_path));
  return {};
}

Status Extractor::apply_directory_times() {
  for (const auto& [path, times] : directory_times_) {
    UniqueFd dir;
    if (path.empty()) {
      dir.reset(fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
    } else {
      auto parent = open_dir(std::span(path.begin(), path.size() - 1), false);
      if (!parent) continue;  // a later entry replaced it
      dir.reset(openat(parent->get(), path.back().c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!dir) continue;
    if (futimens(dir.get(), times.data()) != 0) {
      return std::unexpected(errno_error("setting the times of '" + join(path) + "'"));
    }
  }
  return {};
}

Result<int> Extractor::parent_dir(const Components& path) {
  std::span<const std::string> parent(path.begin(), path.size() - 1);
  if (cached_parent_ && std::ranges::equal(parent, cached_parent_path_)) {
    return cached_parent_.get();
  }
  auto opened = open_dir(parent, true);
  if (!opened) return std::unexpected(std::move(opened.error()));
  cached_parent_ = std::move(*opened);
  cached_parent_path_.assign(parent.begin(), parent.end());
  return cached_parent_.get();
}

// Walks `path` down from the root one component at a time with O_NOFOLLOW, so a symbolic link
// anywhere on it is refused rather than followed; missing directories are created when asked
// (0755, root-owned, as Docker does).
Result<UniqueFd> Extractor::open_dir(std::span<const std::string> path, bool create) const {
  UniqueFd dir(fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
  if (!dir) return std::unexpected(errno_error("duplicating the layer root descriptor"));
  for (std::size_t depth = 0; depth < path.size(); ++depth) {
    const char* name = path[depth].c_str();
    constexpr int kFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dir.get(), name, kFlags);
    if (fd < 0 && errno == ENOENT && create) {
      if (mkdirat(dir.get(), name, 0755) != 0 || fchmodat(dir.get(), name, 0755, 0) != 0) {
        return std::unexpected(
            errno_error("creating parent directory '" + join(path.first(depth + 1)) + "'"));
      }
      fd = openat(dir.get(), name, kFlags);
    }
    if (fd < 0) return std::unexpected(not_a_directory(dir.get(), path.first(depth + 1)));
    dir.reset(fd);
  }
  return dir;
}

// Why `path` (whose last component is in `dir_fd`) could not be opened as a directory.
Error Extractor::not_a_directory(int dir_fd, std::span<const std::string> path) const {
  Error failure = errno_error("opening '" + join(path) + "'");
  struct stat existing {};
  if (fstatat(dir_fd, path.back().c_str(), &existing, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return layer_error("'" + join(path) + "' is not in the layer");
    return failure;
  }
  if (S_ISLNK(existing.st_mode)) {
    return layer_error("'" + join(path) +
                       "' on its path is a symbolic link, which unpacking never follows");
  }
  if (!S_ISDIR(existing.st_mode)) {
    return layer_error("'" + join(path) + "' on its path is not a directory");
  }
  return failure;
}

struct ArchiveFree {
  void operator()(archive* reader) const { archive_read_free(reader); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveFree>;

// Hands the tar reader the decompressed stream and hashes every byte on the way, so the
// diff_id covers exactly the tar that was unpacked.
struct HashingSource {
  archive* decompressed = nullptr;
  oci::Hasher hasher;
};

la_ssize_t read_hashed(archive* tar, void* client, const void** buffer) {
  auto* source = static_cast<HashingSource*>(client);
  std::size_t size = 0;
  la_int64_t offset = 0;
  int status = archive_read_data_block(source->decompressed, buffer, &size, &offset);
  if (status == ARCHIVE_EOF) return 0;
  if (status != ARCHIVE_OK) {
    archive_set_error(tar, EIO, "decompressing: %s", archive_message(source->decompressed).c_str());
    return -1;
  }
  source->hasher.update(std::string_view(static_cast<const char*>(*buffer), size));
  return static_cast<la_ssize_t>(size);
}

// The blob as a byte stream with its compression undone (libarchive's "raw" format).
Result<ArchiveReader> open_decompressed(const fs::path& blob, LayerCompression compression) {
  ArchiveReader reader(archive_read_new());
  archive_read_support_format_raw(reader.get());
  int filter = ARCHIVE_OK;
  if (compression == LayerCompression::kGzip)
    filter = archive_read_support_filter_gzip(reader.get());
  if (compression == LayerCompression::kZstd)
    filter = archive_read_support_filter_zstd(reader.get());
  if (filter != ARCHIVE_OK) {
    return std::unexpected(Error{ErrorCode::kInternal, "libarchive cannot decompress " +
                                                           std::string(to_string(compression)) +
                                                           ": " + archive_message(reader.get())});
  }
  archive_entry* stream = nullptr;
  if (archive_read_open_filename(reader.get(), blob.c_str(), kReadBlockBytes) != ARCHIVE_OK ||
      archive_read_next_header(reader.get(), &stream) != ARCHIVE_OK) {
    return std::unexpected(layer_error("reading the " + std::string(to_string(compression)) +
                                       " stream: " + archive_message(reader.get())));
  }
  return reader;
}

// Unpacks the blob beneath `root_fd`; returns the digest of its uncompressed tar.
Result<oci::Digest> extract_blob(const fs::path& blob, LayerCompression compression, int root_fd,
                                 std::string_view algorithm) {
  auto decompressed = open_decompressed(blob, compression);
  if (!decompressed) return std::unexpected(std::move(decompressed.error()));
  HashingSource source{decompressed->get(), oci::Hasher(algorithm)};
  ArchiveReader tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  if (archive_read_open(tar.get(), &source, nullptr, read_hashed, nullptr) != ARCHIVE_OK) {
    return std::unexpected(layer_error("not a tar archive: " + archive_message(tar.get())));
  }
  Extractor extractor(root_fd);
  if (auto extracted = extractor.extract_all(tar.get()); !extracted) {
    return std::unexpected(std::move(extracted.error()));
  }
  // The diff_id covers the whole stream, including padding after the end-of-archive blocks.
  const void* rest = nullptr;
  la_ssize_t read = 0;
  while ((read = read_hashed(tar.get(), &source, &rest)) > 0) {
  }
  if (read < 0) {
    return std::unexpected(
        layer_error("reading past the tar's end: " + archive_message(tar.get())));
  }
  return source.hasher.digest();
}

Result<LayerCompression> read_compression(const fs::path& blob) {
  UniqueFd file(open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return std::unexpected(errno_error("opening the layer blob"));
  std::array<char, 16> head{};
  std::size_t filled = 0;
  while (filled < head.size()) {
    ssize_t got = read(file.get(), head.data() + filled, head.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::unexpected(errno_error("reading the layer blob"));
    if (got == 0) break;
    filled += static_cast<std::size_t>(got);
  }
  return detect_layer_compression(std::string_view(head.data(), filled));
}

// Removes a directory on destruction unless released: a failed unpack leaves nothing behind
// (or, after a crash, only something in layers/tmp/).
class TempTree {
 public:
  explicit TempTree(fs::path path) : path_(std::move(path)) {}
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  ~TempTree() {
    if (!path_.empty()) (void)remove_tree(path_);  // leftovers go at the next start-up
  }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

Result<fs::path> make_temp_dir(const Layout& layout, std::string_view prefix) {
  std::error_code error;
  fs::create_directories(layout.layer_temp_dir(), error);
  if (error) {
    return std::unexpected(
        Error{ErrorCode::kInternal,
              "creating " + layout.layer_temp_dir().string() + ": " + error.message()});
  }
  std::string name = (layout.layer_temp_dir() / prefix).string() + "XXXXXX";
  if (mkdtemp(name.data()) == nullptr) return std::unexpected(errno_error("creating " + name));
  return fs::path(name);
}

Status sync_dir(const fs::path& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || fsync(fd.get()) != 0) return std::unexpected(errno_error("syncing " + dir.string()));
  return {};
}

Result<UnpackedLayer> unpack_into_cache(const Layout& layout, const fs::path& blob,
                                        const std::optional<oci::Digest>& expected_diff_id) {
  if (expected_diff_id && layer_unpacked(layout, *expected_diff_id)) {
    return UnpackedLayer{*expected_diff_id, layout.layer_dir(*expected_diff_id)};
  }
  auto compression = read_compression(blob);
  if (!compression) return std::unexpected(std::move(compression.error()));
  auto temp_path = make_temp_dir(layout, "unpack-");
  if (!temp_path) return std::unexpected(std::move(temp_path.error()));
  TempTree temp(*temp_path);
  UniqueFd root(open(temp_path->c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root || fchmod(root.get(), 0755) != 0) {
    return std::unexpected(errno_error("preparing " + temp_path->string()));
  }
  std::string algorithm = expected_diff_id ? expected_diff_id->algorithm : "sha256";
  auto diff_id = extract_blob(blob, *compression, root.get(), algorithm);
  if (!diff_id) return std::unexpected(std::move(diff_id.error()));
  if (expected_diff_id && *diff_id != *expected_diff_id) {
    return fail(ErrorCode::kImageDigestDoesNotMatch,
                "the uncompressed layer is " + diff_id->str() + ", not the diff_id " +
                    expected_diff_id->str() + " the image config lists");
  }
  // The tree reaches the disk before its name does: after a power loss, a cached layer is whole.
  if (syncfs(root.get()) != 0) return std::unexpected(errno_error("syncing the unpacked layer"));

  UnpackedLayer unpacked{*diff_id, layout.layer_dir(*diff_id), *compression, false};
  std::error_code error;
  fs::create_directories(unpacked.dir.parent_path(), error);
  if (error) {
    return std::unexpected(
        Error{ErrorCode::kInternal,
              "creating " + unpacked.dir.parent_path().string() + ": " + error.message()});
  }
  if (renameat2(AT_FDCWD, temp_path->c_str(), AT_FDCWD, unpacked.dir.c_str(), RENAME_NOREPLACE) !=
      0) {
    if (errno == EEXIST) return unpacked;  // another unpacker was first; ours is removed
    return std::unexpected(errno_error("renaming the unpacked layer into the cache"));
  }
  temp.release();
  unpacked.unpacked = true;
  if (auto synced = sync_dir(unpacked.dir.parent_path()); !synced) {
    return std::unexpected(std::move(synced.error()));
  }
  return unpacked;
}

}  // namespace

std::string_view to_string(LayerCompression compression) {
  switch (compression) {
    case LayerCompression::kNone:
      return "uncompressed";
    case LayerCompression::kGzip:
      return "gzip";
    case LayerCompression::kZstd:
      return "zstd";
  }
  return "unknown";
}

Result<LayerCompression> detect_layer_compression(std::string_view head) {
  using namespace std::string_view_literals;
  if (head.empty()) return std::unexpected(layer_error("the layer blob is empty"));
  if (head.starts_with("\x1f\x8b"sv)) return LayerCompression::kGzip;
  if (head.starts_with("\x28\xb5\x2f\xfd"sv)) return LayerCompression::kZstd;
  std::string_view refused;
  if (head.starts_with("\xfd"
                       "7zXZ\0"sv))
    refused = "xz";
  if (head.starts_with("\x04\x22\x4d\x18"sv)) refused = "lz4";
  // "BZh" could begin a plain tar's first file name; the block magic after it cannot.
  if (head.size() >= 10 && head.starts_with("BZh"sv) && head[3] >= '1' && head[3] <= '9' &&
      head.substr(4, 6) == "\x31\x41\x59\x26\x53\x59"sv) {
    refused = "bzip2";
  }
  if (!refused.empty()) {
    return std::unexpected(layer_error("the layer blob is " + std::string(refused) +
                                       "-compressed; image layers are gzip, zstd or plain tar"));
  }
  return LayerCompression::kNone;
}

Result<UnpackedLayer> unpack_layer(const Layout& layout, const fs::path& blob,
                                   const std::optional<oci::Digest>& expected_diff_id) {
  auto unpacked = unpack_into_cache(layout, blob, expected_diff_id);
  if (!unpacked) {
    return std::unexpected(std::move(unpacked.error()).context("unpacking " + blob.string()));
  }
  return unpacked;
}

bool layer_unpacked(const Layout& layout, const oci::Digest& diff_id) {
  struct stat existing {};
  return lstat(layout.layer_dir(diff_id).c_str(), &existing) == 0 && S_ISDIR(existing.st_mode);
}

Status remove_layer(const Layout& layout, const oci::Digest& diff_id) {
  auto holder = make_temp_dir(layout, "remove-");
  if (!holder) return std::unexpected(std::move(holder.error()));
  TempTree removal(*holder);
  fs::path doomed = *holder / "layer";
  if (rename(layout.layer_dir(diff_id).c_str(), doomed.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected(errno_error("removing layer " + diff_id.str()));
  }
  removal.release();
  if (auto removed = remove_tree(*holder); !removed) {
    return std::unexpected(std::move(removed.error()).context("removing layer " + diff_id.str()));
  }
  return {};
}

Status remove_layer_temp_dirs(const Layout& layout) {
  UniqueFd temp(open(layout.layer_temp_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!temp) {
    if (errno == ENOENT) return {};
    return std::unexpected(errno_error("opening " + layout.layer_temp_dir().string()));
  }
  std::vector<std::string> leftovers;
  std::error_code error;
  for (const fs::directory_entry& leftover :
       fs::directory_iterator(layout.layer_temp_dir(), error)) {
    leftovers.push_back(leftover.path().filename());
  }
  if (error) {
    return std::unexpected(
        Error{ErrorCode::kInternal,
              "listing " + layout.layer_temp_dir().string() + ": " + error.message()});
  }
  for (const std::string& leftover : leftovers) {
    if (auto removed = remove_tree_at(temp.get(), leftover); !removed) {
      return std::unexpected(std::move(removed.error()).context("cleaning layer temp dirs"));
    }
  }
  return {};
}

}  // namespace wharf::agent
