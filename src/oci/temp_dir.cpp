// Temporary directories with mkdtemp.
#include "oci/temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace wharf::oci {

namespace fs = std::filesystem;

Result<TempDir> TempDir::create(std::string_view prefix, const fs::path& parent) {
  std::error_code error;
  fs::path base = parent.empty() ? fs::temp_directory_path(error) : parent;
  if (error) return fail(ErrorCode::kInternal, "finding the temp directory: " + error.message());
  std::string pattern = (base / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return fail(ErrorCode::kInternal,
                "creating a directory in " + base.string() + ": " + std::strerror(errno));
  }
  return TempDir(fs::path(pattern));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDir::~TempDir() {
  remove();
}

fs::path TempDir::release() {
  return std::exchange(path_, {});
}

void TempDir::remove() {
  if (path_.empty()) return;
  std::error_code ignored;  // best effort: a leftover temp dir is not worth failing over
  fs::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace wharf::oci
