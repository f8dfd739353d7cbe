// A uniquely named directory removed with everything in it when its owner goes away.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/error.hpp"

namespace wharf::oci {

class TempDir {
 public:
  // Creates "<parent>/<prefix>XXXXXX"; parent defaults to the system temp directory.
  static Result<TempDir> create(std::string_view prefix, const std::filesystem::path& parent = {});

  TempDir() = default;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // Keeps the directory: the caller owns it from now on.
  std::filesystem::path release();

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void remove();

  std::filesystem::path path_;
};

}  // namespace wharf::oci
