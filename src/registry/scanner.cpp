// The vulnerability database, matching, and scan reports.
#include "registry/scanner.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <tuple>

#include "registry/package_version.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

bool is_severity(std::string_view severity) {
  return std::find(std::begin(kSeverities), std::end(kSeverities), severity) !=
         std::end(kSeverities);
}

std::size_t severity_rank(std::string_view severity) {
  return static_cast<std::size_t>(
      std::find(std::begin(kSeverities), std::end(kSeverities), severity) -
      std::begin(kSeverities));
}

// "2024-06-01T12:00:00Z" (fractions and a +00:00 offset accepted) or epoch seconds.
std::optional<TimePoint> parse_timestamp(const bj::value& value) {
  if (value.is_number()) return from_epoch_seconds(value.to_number<double>());
  if (!value.is_string()) return std::nullopt;
  std::string text(value.as_string());
  std::tm parts{};
  char rest[32] = {};
  int matched =
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &parts.tm_year, &parts.tm_mon,
                  &parts.tm_mday, &parts.tm_hour, &parts.tm_min, &parts.tm_sec, rest);
  if (matched < 6) return std::nullopt;
  std::string_view suffix(rest);
  if (suffix.starts_with('.')) {
    suffix.remove_prefix(1);
    while (!suffix.empty() && suffix.front() >= '0' && suffix.front() <= '9')
      suffix.remove_prefix(1);
  }
  if (!suffix.empty() && suffix != "Z" && suffix != "+00:00") return std::nullopt;
  parts.tm_year -= 1900;
  parts.tm_mon -= 1;
  std::time_t seconds = timegm(&parts);
  if (seconds == -1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(seconds);
}

std::string string_member(const bj::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return {};
  return std::string(value->as_string());
}

// A string, or a number written as text ("7.5").
std::optional<std::string> scalar_text(const bj::value& value) {
  if (value.is_string()) return std::string(value.as_string());
  if (value.is_number()) {
    std::ostringstream out;
    out << value.to_number<double>();
    return out.str();
  }
  return std::nullopt;
}

Result<AffectedRange> read_range(const bj::value& value, const std::string& where) {
  if (!value.is_object()) return invalid(where + ": each affected range must be an object");
  const auto& object = value.as_object();
  AffectedRange range{string_member(object, "introduced"), string_member(object, "fixed"),
                      string_member(object, "lastAffected")};
  if (!range.fixed.empty() && !range.last_affected.empty()) {
    return invalid(where + ": a range has either \"fixed\" or \"lastAffected\", not both");
  }
  return range;
}

Result<Vulnerability> read_entry(const bj::value& value, std::size_t entry_idx) {
  std::string where = "vulnerabilities[" + std::to_string(entry_idx) + "]";
  if (!value.is_object()) return invalid(where + " must be an object");
  const auto& object = value.as_object();
  Vulnerability entry;
  entry.id = string_member(object, "id");
  entry.package = string_member(object, "package");
  if (entry.id.empty()) return invalid(where + " needs an \"id\"");
  where += " (" + entry.id + ")";
  if (entry.package.empty()) return invalid(where + " needs a \"package\"");
  entry.severity = string_member(object, "severity");
  if (entry.severity.empty()) entry.severity = "UNDEFINED";
  if (!is_severity(entry.severity)) {
    return invalid(where + ": severity \"" + entry.severity +
                   "\" is not CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNDEFINED");
  }
  entry.description = string_member(object, "description");
  entry.uri = string_member(object, "uri");
  std::string os = string_member(object, "os");
  auto colon = os.find(':');
  entry.os_id = os.substr(0, colon);
  if (colon != std::string::npos) entry.os_version = os.substr(colon + 1);
  entry.fixed_version = string_member(object, "fixedVersion");
  if (const auto* ranges = object.if_contains("affectedVersions"); ranges && !ranges->is_null()) {
    if (!ranges->is_array()) return invalid(where + ": \"affectedVersions\" must be a list");
    for (const auto& item : ranges->as_array()) {
      auto range = read_range(item, where);
      if (!range) return std::unexpected(range.error());
      entry.ranges.push_back(std::move(*range));
    }
  }
  for (auto [key, attribute] : {std::pair{"cvss2Score", "CVSS2_SCORE"},
                                {"cvss2Vector", "CVSS2_VECTOR"},
                                {"cvss3Score", "CVSS3_SCORE"},
                                {"cvss3Vector", "CVSS3_VECTOR"}}) {
    if (const auto* member = object.if_contains(key); member != nullptr) {
      if (auto text = scalar_text(*member)) entry.extra_attributes[attribute] = *text;
    }
  }
  return entry;
}

int compare_versions(std::string_view a, std::string_view b, PackageManager manager) {
  return manager == PackageManager::kApk ? compare_apk_versions(a, b) : compare_dpkg_versions(a, b);
}

bool os_matches(const Vulnerability& entry, const OsRelease& os) {
  if (entry.os_id.empty()) return true;
  if (entry.os_id != os.id) return false;
  if (entry.os_version.empty()) return true;
  return os.version_id == entry.os_version || os.version_id.starts_with(entry.os_version + ".");
}

bj::object attribute(std::string_view key, std::string_view value) {
  return bj::object{{"key", key}, {"value", value}};
}

bj::object to_finding(const Vulnerability& entry, const InstalledPackage& package) {
  bj::array attributes;
  attributes.push_back(attribute("package_version", package.version));
  attributes.push_back(attribute("package_name", package.name));
  attributes.push_back(attribute("package_manager", package_manager_name(package.manager)));
  if (!package.source_name.empty() && package.source_name != package.name) {
    attributes.push_back(attribute("source_package", package.source_name));
  }
  std::string fixed = entry.fixed_version;
  if (fixed.empty() && entry.ranges.size() == 1) fixed = entry.ranges.front().fixed;
  if (!fixed.empty()) attributes.push_back(attribute("fixed_version", fixed));
  for (const auto& [key, value] : entry.extra_attributes) {
    attributes.push_back(attribute(key, value));
  }
  bj::object finding{{"name", entry.id}, {"severity", entry.severity}};
  if (!entry.description.empty()) finding["description"] = entry.description;
  if (!entry.uri.empty()) finding["uri"] = entry.uri;
  finding["attributes"] = std::move(attributes);
  return finding;
}

std::string describe_inventory(const PackageInventory& inventory) {
  std::map<std::string_view, std::size_t> per_manager;
  for (const auto& package : inventory.packages)
    ++per_manager[package_manager_name(package.manager)];
  std::string text = std::to_string(inventory.packages.size()) + " OS packages";
  std::string managers;
  for (const auto& [manager, count] : per_manager) {
    managers += (managers.empty() ? "" : ", ") + std::string(manager);
  }
  if (!managers.empty()) text += " (" + managers + ")";
  text +=
      inventory.os.id.empty() ? " on an unidentified distribution" : " on " + inventory.os.key();
  return text;
}

}  // namespace

bool version_is_affected(const Vulnerability& vulnerability, std::string_view version,
                         PackageManager manager) {
  auto before = [&](const std::string& bound) {
    return compare_versions(version, bound, manager) < 0;
  };
  if (vulnerability.ranges.empty()) {
    return vulnerability.fixed_version.empty() || before(vulnerability.fixed_version);
  }
  return std::any_of(vulnerability.ranges.begin(), vulnerability.ranges.end(),
                     [&](const AffectedRange& range) {
                       if (!range.introduced.empty() && before(range.introduced)) return false;
                       if (!range.fixed.empty()) return before(range.fixed);
                       if (!range.last_affected.empty()) {
                         return compare_versions(version, range.last_affected, manager) <= 0;
                       }
                       return true;
                     });
}

Result<VulnerabilityDatabase> VulnerabilityDatabase::parse(std::string_view text,
                                                           TimePoint updated_at_fallback) {
  boost::system::error_code parse_error;
  bj::value document = bj::parse(text, parse_error);
  if (parse_error) return invalid("not JSON: " + parse_error.message());
  if (!document.is_object()) return invalid("must be a JSON object with \"vulnerabilities\"");
  const auto& root = document.as_object();
  VulnerabilityDatabase database;
  database.updated_at_ = updated_at_fallback;
  if (const auto* updated = root.if_contains("updatedAt"); updated && !updated->is_null()) {
    database.updated_at_ = parse_timestamp(*updated);
    if (!database.updated_at_) {
      return invalid("\"updatedAt\" must be an RFC 3339 UTC time or epoch seconds");
    }
  }
  const auto* entries = root.if_contains("vulnerabilities");
  if (entries == nullptr || entries->is_null()) return database;
  if (!entries->is_array()) return invalid("\"vulnerabilities\" must be a list");
  for (std::size_t entry_idx = 0; entry_idx < entries->as_array().size(); ++entry_idx) {
    auto entry = read_entry(entries->as_array()[entry_idx], entry_idx);
    if (!entry) return std::unexpected(entry.error());
    database.by_package_.emplace(entry->package, database.entries_.size());
    database.entries_.push_back(std::move(*entry));
  }
  return database;
}

Result<VulnerabilityDatabase> VulnerabilityDatabase::load(const std::filesystem::path& path) {
  std::error_code error;
  auto modified = std::filesystem::last_write_time(path, error);
  if (error) return invalid("vulnerability database " + path.string() + ": " + error.message());
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return invalid("vulnerability database " + path.string() + ": cannot read it");
  auto updated = std::chrono::file_clock::to_sys(modified);
  auto database = parse(text.str(), std::chrono::time_point_cast<TimePoint::duration>(updated));
  if (!database)
    return std::unexpected(database.error().context("vulnerability database " + path.string()));
  return database;
}

std::vector<const Vulnerability*> VulnerabilityDatabase::affecting(const InstalledPackage& package,
                                                                   const OsRelease& os) const {
  std::vector<const Vulnerability*> found;
  auto collect = [&](std::string_view name, std::string_view version) {
    auto [begin, end] = by_package_.equal_range(name);
    for (auto entry = begin; entry != end; ++entry) {
      const Vulnerability& vulnerability = entries_[entry->second];
      if (!os_matches(vulnerability, os)) continue;
      if (!version_is_affected(vulnerability, version, package.manager)) continue;
      if (std::find(found.begin(), found.end(), &vulnerability) == found.end()) {
        found.push_back(&vulnerability);
      }
    }
  };
  collect(package.name, package.version);
  if (!package.source_name.empty() && package.source_name != package.name) {
    // Advisories name source packages; a source version, when recorded, is the one they mean.
    collect(package.source_name,
            package.source_version.empty() ? package.version : package.source_version);
  }
  return found;
}

ScanReport build_scan_report(const PackageInventory& inventory,
                             const VulnerabilityDatabase* database, TimePoint completed_at) {
  ScanReport report;
  report.findings["imageScanCompletedAt"] = epoch_seconds(completed_at);
  if (database != nullptr && database->updated_at()) {
    report.findings["vulnerabilitySourceUpdatedAt"] = epoch_seconds(*database->updated_at());
  }
  std::string inventory_text = describe_inventory(inventory);
  if (inventory.packages.empty()) {
    report.status = "UNSUPPORTED_IMAGE";
    report.description =
        "The operating system and/or package manager are not supported: no dpkg or apk "
        "package database was found in the image (" +
        inventory_text + ").";
    report.findings["findingSeverityCounts"] = bj::object{};
    report.findings["findings"] = bj::array{};
    return report;
  }

  std::vector<std::pair<const Vulnerability*, const InstalledPackage*>> matches;
  if (database != nullptr) {
    for (const auto& package : inventory.packages) {
      for (const Vulnerability* vulnerability : database->affecting(package, inventory.os)) {
        matches.emplace_back(vulnerability, &package);
      }
    }
  }
  std::sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) {
    return std::tuple(severity_rank(a.first->severity), a.first->id, a.second->name) <
           std::tuple(severity_rank(b.first->severity), b.first->id, b.second->name);
  });
  bj::object counts;
  bj::array findings;
  for (const auto& [vulnerability, package] : matches) {
    auto& count = counts[vulnerability->severity];
    count = count.is_int64() ? count.as_int64() + 1 : 1;
    findings.push_back(to_finding(*vulnerability, *package));
  }
  report.status = "COMPLETE";
  report.description = "The scan was completed successfully. " + inventory_text + "; ";
  report.description += database == nullptr
                            ? "no vulnerability database is configured."
                            : std::to_string(findings.size()) + " findings from a database of " +
                                  std::to_string(database->size()) + " entries.";
  report.findings["findingSeverityCounts"] = std::move(counts);
  report.findings["findings"] = std::move(findings);
  return report;
}

Result<std::shared_ptr<const VulnerabilityDatabase>> ImageScanner::database() {
  if (!database_path_) return std::shared_ptr<const VulnerabilityDatabase>();
  std::error_code error;
  auto modified = std::filesystem::last_write_time(*database_path_, error);
  auto size = error ? 0 : std::filesystem::file_size(*database_path_, error);
  std::lock_guard lock(mutex_);
  if (!error && cached_ && modified == cached_mtime_ && size == cached_size_) return cached_;
  auto loaded = VulnerabilityDatabase::load(*database_path_);
  if (!loaded) return std::unexpected(loaded.error());
  cached_ = std::make_shared<const VulnerabilityDatabase>(std::move(*loaded));
  cached_mtime_ = modified;
  cached_size_ = size;
  return cached_;
}

Status ImageScanner::check_database() {
  auto loaded = database();
  if (!loaded) return std::unexpected(loaded.error());
  return {};
}

Result<ScanReport> ImageScanner::scan(std::span<const int> layer_fds, TimePoint now) {
  auto loaded = database();
  if (!loaded) return std::unexpected(loaded.error());
  auto inventory = read_package_inventory(layer_fds);
  if (!inventory) return std::unexpected(inventory.error());
  return build_scan_report(*inventory, loaded->get(), now);
}

}  // namespace wharf::registry
