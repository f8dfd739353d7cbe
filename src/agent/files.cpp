// write_file_atomically and StateFile (see files.hpp).
#include "agent/files.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "common/unique_fd.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;

namespace {

Status failure(const std::string& doing) {
  return std::unexpected(errno_error(doing));
}

constexpr std::string_view kStateMagic = "wharf-state ";

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// The next space-separated number of `text` (in `base`), advancing past it.
std::optional<std::uint64_t> take_number(std::string_view& text, int base) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return value;
}

}  // namespace

fs::path StateFile::slot_path(int slot) const {
  fs::path path = path_;
  path += slot == 0 ? ".0" : ".1";
  return path;
}

std::optional<StateFile::Slot> StateFile::read_slot(int slot) const {
  auto text = read_text_file(slot_path(slot));
  if (!text) return std::nullopt;
  std::string_view rest(*text);
  if (!rest.starts_with(kStateMagic)) return std::nullopt;
  rest.remove_prefix(kStateMagic.size());
  std::size_t line_end = rest.find('\n');
  if (line_end == std::string_view::npos) return std::nullopt;
  std::string_view header = rest.substr(0, line_end);
  auto sequence = take_number(header, 10);
  auto length = take_number(header, 10);
  auto hash = take_number(header, 16);
  if (!sequence || !length || !hash || !header.empty()) return std::nullopt;
  std::string_view contents = rest.substr(line_end + 1);
  if (contents.size() < *length) return std::nullopt;
  contents = contents.substr(0, *length);  // what follows is an older, longer write's tail
  if (fnv1a(contents) != *hash) return std::nullopt;
  return Slot{*sequence, std::string(contents)};
}

Result<std::optional<std::string>> StateFile::read() const {
  std::optional<Slot> latest;
  bool any = false;
  for (int slot = 0; slot < 2; ++slot) {
    // An empty slot was never written (made ahead, or cut before its first write's bytes).
    std::error_code error;
    auto size = fs::file_size(slot_path(slot), error);
    if (error || size == 0) continue;
    any = true;
    auto found = read_slot(slot);
    if (found && (!latest || found->sequence > latest->sequence)) latest = std::move(found);
  }
  if (latest) return std::optional<std::string>(std::move(latest->contents));
  if (any) {
    return fail(ErrorCode::kInternal, "reading " + path_.string() + ": neither " +
                                          slot_path(0).string() + " nor " + slot_path(1).string() +
                                          " holds a whole state");
  }
  auto plain = read_text_file(path_);
  if (!plain) return std::optional<std::string>();
  return std::optional<std::string>(std::move(*plain));
}

Status StateFile::write(std::string_view contents, Durability durability) {
  if (!scanned_) {
    for (int slot = 0; slot < 2; ++slot) {
      std::error_code error;
      auto size = fs::file_size(slot_path(slot), error);
      sizes_[slot] = error ? -1 : static_cast<std::int64_t>(size);
      if (auto found = read_slot(slot)) sequence_ = std::max(sequence_, found->sequence);
    }
    std::error_code error;
    plain_ = fs::exists(path_, error);
    scanned_ = true;
  }
  std::uint64_t sequence = sequence_ + 1;
  int slot = static_cast<int>(sequence % 2);
  fs::path path = slot_path(slot);
  std::string bytes =
      fmt::format("{}{} {} {:016x}\n", kStateMagic, sequence, contents.size(), fnv1a(contents));
  bytes += contents;
  bool created = sizes_[slot] < 0;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return failure("opening " + path.string());
  std::size_t total = bytes.size();
  for (std::size_t written = 0; written < total;) {
    ssize_t got =
        ::pwrite(fd.get(), bytes.data() + written, total - written, static_cast<off_t>(written));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return failure("writing " + path.string());
    written += static_cast<std::size_t>(got);
  }
  // A longer old write's tail is harmless (the header's length ends the contents) but would
  // make the file grow to the longest state ever written: cut it.
  if (sizes_[slot] > static_cast<std::int64_t>(total) &&
      ::ftruncate(fd.get(), static_cast<off_t>(total)) != 0) {
    return failure("truncating " + path.string());
  }
  sizes_[slot] = static_cast<std::int64_t>(total);
  bool sync = durability == Durability::kSynced;
  if (sync && ::fdatasync(fd.get()) != 0) return failure("writing " + path.string());
  fd.reset();
  if (sync && created) {
    UniqueFd dir(::open(path_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
  }
  sequence_ = sequence;
  if (plain_) {  // a plain file from an older agent is superseded
    std::error_code error;
    fs::remove(path_, error);
    plain_ = static_cast<bool>(error);  // tried again at the next write
  }
  return {};
}

Status StateFile::remove() {
  std::string problems;
  for (const fs::path& path : {slot_path(0), slot_path(1), path_}) {
    std::error_code error;
    fs::remove(path, error);
    if (!error) continue;
    if (!problems.empty()) problems += "; ";
    problems += "removing " + path.string() + ": " + error.message();
  }
  scanned_ = false;
  sequence_ = 0;
  if (problems.empty()) return {};
  return fail(ErrorCode::kInternal, problems);
}

// Creates (or truncates) `path` and writes `contents` to it; the open file on success.
Result<UniqueFd> create_with(const fs::path& path, std::string_view contents, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return std::unexpected(errno_error("creating " + path.string()));
  // The mode as asked for, whatever the umask, and for a file that was there before.
  if (::fchmod(fd.get(), mode) != 0) return std::unexpected(errno_error("chmod " + path.string()));
  std::size_t written = 0;
  while (written < contents.size()) {
    ssize_t got = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::unexpected(errno_error("writing " + path.string()));
    written += static_cast<std::size_t>(got);
  }
  return fd;
}

Status write_file(const fs::path& path, std::string_view contents, mode_t mode) {
  auto created = create_with(path, contents, mode);
  if (!created) return std::unexpected(created.error());
  return {};
}

Status write_file_atomically(const fs::path& path, std::string_view contents,
                             Durability durability) {
  fs::path temp = path;
  temp += ".tmp";
  auto created = create_with(temp, contents, 0600);
  if (!created) return std::unexpected(created.error());
  UniqueFd fd = std::move(*created);
  bool sync = durability == Durability::kSynced;
  if (sync && ::fsync(fd.get()) != 0) return failure("writing " + temp.string());
  fd.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) return failure("renaming " + temp.string());
  if (sync) {
    UniqueFd dir(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
  }
  return {};
}

std::optional<std::string> read_text_file(const fs::path& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

Result<bool> mark_top_directory(const fs::path& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return std::unexpected(errno_error("opening " + dir.string()));
  auto unsupported = [] { return errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL; };
  int flags = 0;
  if (ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    if (unsupported()) return false;
    return std::unexpected(errno_error("reading the flags of " + dir.string()));
  }
  if ((flags & FS_TOPDIR_FL) != 0) return true;
  flags |= FS_TOPDIR_FL;
  if (ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
    if (unsupported()) return false;
    return std::unexpected(errno_error("marking " + dir.string() + " as a top directory"));
  }
  return true;
}

}  // namespace wharf::agent
