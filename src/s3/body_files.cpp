// BodyFiles: temp files, fsync-then-rename, concatenation with copy_file_range, the sweep.
#include "s3/body_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ids.hpp"

namespace wharf::s3 {

namespace fs = std::filesystem;

namespace {

Error disk_error(std::string_view doing, const fs::path& path) {
  return Error{ErrorCode::kInternal,
               std::string(doing) + " " + path.string() + ": " + std::strerror(errno)};
}

Status fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) return std::unexpected(disk_error("syncing", dir));
  return {};
}

// Appends all of `from` to `to` with copy_file_range (falling back to read/write).
Status append_file(int from, int to, const fs::path& from_path) {
  while (true) {
    ssize_t copied = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (copied > 0) continue;
    if (copied == 0) return {};
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS) {
      return std::unexpected(disk_error("copying", from_path));
    }
    break;
  }
  char buffer[1 << 16];
  while (true) {
    ssize_t got = ::read(from, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::unexpected(disk_error("reading", from_path));
    if (got == 0) return {};
    for (ssize_t done = 0; done < got;) {
      ssize_t written = ::write(to, buffer + done, static_cast<std::size_t>(got - done));
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return std::unexpected(disk_error("writing a copy of", from_path));
      done += written;
    }
  }
}

}  // namespace

Status BodyFiles::prepare() {
  std::error_code ec;
  fs::create_directories(root_ / "data", ec);
  if (!ec) fs::create_directories(root_ / "tmp", ec);
  if (ec) return fail(ErrorCode::kInternal, "creating " + root_.string() + ": " + ec.message());
  // The entries of data/ and tmp/ in root_, and root_'s own in the data directory.
  if (auto synced = fsync_dir(root_); !synced) return synced;
  return fsync_dir(root_.parent_path());
}

Result<BodyFiles::Temp> BodyFiles::create() {
  Temp temp{new_hex_id(), {}};
  auto path = temp_path(temp.id);
  temp.fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!temp.fd) return std::unexpected(disk_error("creating", path));
  return temp;
}

Status BodyFiles::write(Temp& temp, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(temp.fd.get(), bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return std::unexpected(disk_error("writing", temp_path(temp.id)));
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

Status BodyFiles::install(Temp& temp) {
  auto from = temp_path(temp.id);
  if (::fsync(temp.fd.get()) != 0) return std::unexpected(disk_error("syncing", from));
  temp.fd.reset();
  if (::rename(from.c_str(), data_path(temp.id).c_str()) != 0) {
    return std::unexpected(disk_error("renaming", from));
  }
  return fsync_dir(root_ / "data");
}

Result<std::vector<BodyFiles::OpenBody>> BodyFiles::open_all(
    const std::vector<std::string>& ids) const {
  std::vector<OpenBody> bodies;
  for (const auto& id : ids) {
    auto fd = open(id);
    if (!fd) return std::unexpected(fd.error());
    bodies.push_back({id, std::move(*fd)});
  }
  return bodies;
}

Result<std::string> BodyFiles::concatenate(const std::vector<OpenBody>& sources) {
  auto temp = create();
  if (!temp) return std::unexpected(temp.error());
  for (const auto& source : sources) {
    if (auto appended = append_file(source.fd.get(), temp->fd.get(), data_path(source.id));
        !appended) {
      remove_temp(temp->id);
      return std::unexpected(appended.error());
    }
  }
  if (auto installed = install(*temp); !installed) {
    remove_temp(temp->id);
    return std::unexpected(installed.error());
  }
  return temp->id;
}

Result<UniqueFd> BodyFiles::open(std::string_view id) const {
  auto path = data_path(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(disk_error("opening", path));
  return fd;
}

void BodyFiles::remove(std::string_view id) {
  ::unlink(data_path(id).c_str());
}

void BodyFiles::remove_temp(std::string_view id) {
  ::unlink(temp_path(id).c_str());
}

Result<std::size_t> BodyFiles::sweep(const std::set<std::string, std::less<>>& referenced) {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "tmp", ec)) {
    removed += fs::remove(entry.path(), ec) ? 1 : 0;
  }
  for (const auto& entry : fs::directory_iterator(root_ / "data", ec)) {
    if (referenced.contains(entry.path().filename().string())) continue;
    removed += fs::remove(entry.path(), ec) ? 1 : 0;
  }
  if (ec) return fail(ErrorCode::kInternal, "sweeping " + root_.string() + ": " + ec.message());
  return removed;
}

}  // namespace wharf::s3
