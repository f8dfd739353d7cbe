// write_file_atomically (see files.hpp).
#include "agent/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "common/unique_fd.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;

namespace {

Status failure(const std::string& doing) {
  return fail(ErrorCode::kInternal, doing + ": " + std::strerror(errno));
}

}  // namespace

Status write_file_atomically(const fs::path& path, std::string_view contents,
                             Durability durability) {
  fs::path temp = path;
  temp += ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return failure("creating " + temp.string());
  std::size_t written = 0;
  while (written < contents.size()) {
    ssize_t got = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return failure("writing " + temp.string());
    written += static_cast<std::size_t>(got);
  }
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

}  // namespace wharf::agent
