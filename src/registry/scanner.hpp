// Image scanning (ECR "basic scanning"): inventory an image's OS packages and match them
// against a vulnerability database the operator supplies (format: docs/scanning.md). Without a
// database, or with an empty one, a scan reports no findings: nothing is ever guessed.
#pragma once

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "registry/package_inventory.hpp"

namespace wharf::registry {

// ECR finding severities, most severe first.
inline constexpr std::string_view kSeverities[] = {"CRITICAL", "HIGH",          "MEDIUM",
                                                   "LOW",      "INFORMATIONAL", "UNDEFINED"};

// An affected version range: introduced ≤ version < fixed (or ≤ last_affected); an absent
// bound is open.
struct AffectedRange {
  std::string introduced;
  std::string fixed;
  std::string last_affected;
};

struct Vulnerability {
  std::string id;  // "CVE-2023-1234": the finding's name
  std::string severity;
  std::string description;
  std::string uri;
  std::string package;     // binary or source package name
  std::string os_id;       // "debian"; empty: any distribution
  std::string os_version;  // "12", "3.19"; empty: any version of os_id
  std::string fixed_version;
  std::vector<AffectedRange> ranges;  // when non-empty, these decide (fixed_version is shown)
  std::map<std::string, std::string> extra_attributes;  // CVSS2_SCORE, CVSS2_VECTOR, …
};

class VulnerabilityDatabase {
 public:
  // Parses the JSON format of docs/scanning.md. `updated_at_fallback` stands for a missing
  // "updatedAt". kInvalidParameter naming the bad entry.
  static Result<VulnerabilityDatabase> parse(std::string_view text, TimePoint updated_at_fallback);
  // Reads and parses a file; its modification time is the fallback "updatedAt".
  static Result<VulnerabilityDatabase> load(const std::filesystem::path& path);

  std::size_t size() const { return entries_.size(); }
  std::optional<TimePoint> updated_at() const { return updated_at_; }
  // The entries that apply to an installed package on a distribution: the package or its
  // source package is named, the os matches ("alpine:3.19" covers VERSION_ID 3.19.1), and the
  // installed version falls in an affected range by its package manager's ordering.
  std::vector<const Vulnerability*> affecting(const InstalledPackage& package,
                                              const OsRelease& os) const;

 private:
  std::vector<Vulnerability> entries_;
  std::multimap<std::string, std::size_t, std::less<>> by_package_;
  std::optional<TimePoint> updated_at_;
};

// Whether `version` is affected by `vulnerability` under `manager`'s version ordering.
bool version_is_affected(const Vulnerability& vulnerability, std::string_view version,
                         PackageManager manager);

// A finished scan in ECR's terms.
struct ScanReport {
  std::string status;  // "COMPLETE" | "UNSUPPORTED_IMAGE"
  std::string description;
  // ECR imageScanFindings: imageScanCompletedAt, vulnerabilitySourceUpdatedAt (when a database
  // is loaded), findingSeverityCounts and every finding (callers page them).
  boost::json::object findings;
};

// Builds the report: one finding per (vulnerability, installed package), most severe first,
// with attributes package_name, package_version, package_manager, source_package (when
// different), fixed_version (when known) and the entry's own (CVSS2_SCORE, …). The description
// says how many packages were inventoried on which distribution, so the inventory is visible
// even when nothing is vulnerable. No package database at all → UNSUPPORTED_IMAGE.
ScanReport build_scan_report(const PackageInventory& inventory,
                             const VulnerabilityDatabase* database, TimePoint completed_at);

// Scans images against the operator's database file, re-reading it when it changes on disk.
// Thread-safe; scan() blocks on disk I/O, so call it off the event loops.
class ImageScanner {
 public:
  // No path: scans inventory packages only and report no findings.
  explicit ImageScanner(std::optional<std::filesystem::path> database_path)
      : database_path_(std::move(database_path)) {}

  // Loads the database (if any) now, so a bad file is reported at start-up.
  Status check_database();
  // Scans the layers (bottom first, open files of tar archives). Errors (unreadable layer,
  // broken database) mean the scan FAILED; the message says why.
  Result<ScanReport> scan(std::span<const int> layer_fds, TimePoint now);

 private:
  Result<std::shared_ptr<const VulnerabilityDatabase>> database();

  std::optional<std::filesystem::path> database_path_;
  std::mutex mutex_;  // guards the cache below
  std::shared_ptr<const VulnerabilityDatabase> cached_;
  std::filesystem::file_time_type cached_mtime_;
  std::uintmax_t cached_size_ = 0;
};

}  // namespace wharf::registry
