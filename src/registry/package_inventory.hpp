// The OS packages installed in an image, read from its layer blobs: the distribution from
// os-release, Debian packages from the dpkg status database, Alpine packages from the apk
// installed database.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::registry {

struct OsRelease {
  std::string id;          // ID, e.g. "debian", "alpine"; empty when unknown
  std::string version_id;  // VERSION_ID, e.g. "12", "3.19.1"; may be empty (testing, sid)
  std::string pretty_name;

  // "debian:12", "alpine:3.19.1", "debian" without a version; empty when unknown.
  std::string key() const;
};

enum class PackageManager { kDpkg, kApk };

std::string_view package_manager_name(PackageManager manager);  // "dpkg" | "apk"

struct InstalledPackage {
  std::string name;
  std::string version;
  std::string source_name;     // dpkg Source / apk origin (o:); empty when none is given
  std::string source_version;  // dpkg "Source: name (version)"; empty otherwise
  std::string architecture;
  PackageManager manager = PackageManager::kDpkg;

  bool operator==(const InstalledPackage&) const = default;
};

struct PackageInventory {
  OsRelease os;
  std::vector<InstalledPackage> packages;  // sorted by name, then version
};

// KEY=value lines, values optionally quoted ("…" with backslash escapes, or '…').
OsRelease parse_os_release(std::string_view text);
// dpkg status paragraphs: Package, Version, Status, Source, Architecture. Only packages whose
// Status says "installed" count; with `status_optional` (the one-file-per-package
// var/lib/dpkg/status.d/ of distroless images) a paragraph without Status counts too.
std::vector<InstalledPackage> parse_dpkg_status(std::string_view text,
                                                bool status_optional = false);
// apk installed database paragraphs: P: name, V: version, o: origin, A: architecture.
std::vector<InstalledPackage> parse_apk_installed(std::string_view text);

// Reads the layers of an image, bottom layer first, each an open file of a tar archive (plain,
// gzip or zstd), and inventories what the merged file system holds: etc/os-release (else
// usr/lib/os-release, also when etc/os-release is a symlink), var/lib/dpkg/status,
// var/lib/dpkg/status.d/*, lib/apk/db/installed. Layers are read top down; OCI whiteouts
// (.wh.NAME, .wh..wh..opq) hide lower versions, and reading stops early once every file is
// settled. kInvalidParameter when a layer is not a readable archive.
Result<PackageInventory> read_package_inventory(std::span<const int> layer_fds);

}  // namespace wharf::registry
