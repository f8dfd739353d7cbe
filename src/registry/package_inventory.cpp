// Package inventory: package database parsers and the top-down walk over layer archives.
#include "registry/package_inventory.hpp"
#include "common/text.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

namespace wharf::registry {

namespace {

constexpr std::string_view kEtcOsRelease = "etc/os-release";
constexpr std::string_view kUsrOsRelease = "usr/lib/os-release";
constexpr std::string_view kDpkgStatus = "var/lib/dpkg/status";
constexpr std::string_view kDpkgStatusDir = "var/lib/dpkg/status.d/";
constexpr std::string_view kApkInstalled = "lib/apk/db/installed";
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
// A package database larger than this is not a package database.
constexpr int64_t kMaxFileBytes = 64 << 20;

// Calls `paragraph` with each blank-line separated block of "Key: value" (dpkg) or "K:value"
// (apk) fields; continuation lines (leading space or tab) are dropped, as no field read here
// spans lines.
template <typename OnParagraph>
void for_each_paragraph(std::string_view text, OnParagraph paragraph) {
  std::map<std::string, std::string, std::less<>> fields;
  auto flush = [&] {
    if (!fields.empty()) paragraph(fields);
    fields.clear();
  };
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) {
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields.emplace(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  flush();
}

std::string field(const std::map<std::string, std::string, std::less<>>& fields,
                  std::string_view key) {
  auto found = fields.find(key);
  return found == fields.end() ? std::string() : found->second;
}

// "want flag status": the package is on disk when the status word is "installed".
bool dpkg_installed(std::string_view status) {
  auto last_space = status.rfind(' ');
  return status.substr(last_space == std::string_view::npos ? 0 : last_space + 1) == "installed";
}

std::string unquote_os_release_value(std::string_view value) {
  value = trim(value);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    char quote = value.front();
    value = value.substr(1, value.size() - 2);
    if (quote == '\'') return std::string(value);
    std::string unescaped;
    for (std::size_t char_idx = 0; char_idx < value.size(); ++char_idx) {
      if (value[char_idx] == '\\' && char_idx + 1 < value.size()) ++char_idx;
      unescaped += value[char_idx];
    }
    return unescaped;
  }
  return std::string(value);
}

// ---- the merged view of the layers, settled top down ----

// "./var/lib/x" and "/var/lib/x" → "var/lib/x"; directories lose their trailing '/'.
std::string normalize_path(std::string_view path) {
  while (true) {
    if (path.starts_with("./")) {
      path.remove_prefix(2);
    } else if (path.starts_with('/')) {
      path.remove_prefix(1);
    } else {
      break;
    }
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  if (path == ".") return {};
  return std::string(path);
}

bool is_status_d_entry(std::string_view path) {
  if (!path.starts_with(kDpkgStatusDir)) return false;
  std::string_view name = path.substr(kDpkgStatusDir.size());
  return !name.empty() && name.find('/') == std::string_view::npos && !name.starts_with('.') &&
         !name.ends_with(".md5sums");
}

bool is_wanted(std::string_view path) {
  return path == kEtcOsRelease || path == kUsrOsRelease || path == kDpkgStatus ||
         path == kApkInstalled || is_status_d_entry(path);
}

struct SettledFile {
  bool regular = false;  // false: a symlink or something else that is not the file itself
  std::string content;
};

class MergedView {
 public:
  // Whether a file at `path` in the layer being read is hidden by an upper layer.
  bool hidden(std::string_view path) const {
    if (settled_.contains(path)) return true;
    return std::any_of(closed_.begin(), closed_.end(),
                       [&](const std::string& prefix) { return path.starts_with(prefix); });
  }

  // Applies what one layer held, once the whole layer is read: files it has win over its own
  // whiteouts, which hide only lower layers.
  void apply_layer(std::map<std::string, SettledFile>& found,
                   const std::vector<std::string>& whiteouts,
                   const std::vector<std::string>& opaque_dirs) {
    for (auto& [path, file] : found) settled_.emplace(path, std::move(file));
    for (const auto& path : whiteouts) {
      if (is_wanted(path)) settled_.emplace(path, std::nullopt);
      closed_.push_back(path + "/");
    }
    for (const auto& dir : opaque_dirs) closed_.push_back(dir);
  }

  // True when no lower layer can change the outcome.
  bool complete() const {
    bool os_release_done = regular(kEtcOsRelease) ||
                           (settled_.contains(kEtcOsRelease) && settled_.contains(kUsrOsRelease));
    return os_release_done && settled_.contains(kDpkgStatus) && settled_.contains(kApkInstalled) &&
           hidden(std::string(kDpkgStatusDir) + "x");
  }

  bool regular(std::string_view path) const {
    auto found = settled_.find(path);
    return found != settled_.end() && found->second && found->second->regular;
  }
  const std::string& content(std::string_view path) const {
    return settled_.find(path)->second->content;
  }
  const std::map<std::string, std::optional<SettledFile>, std::less<>>& settled() const {
    return settled_;
  }

 private:
  std::map<std::string, std::optional<SettledFile>, std::less<>> settled_;  // nullopt: deleted
  std::vector<std::string> closed_;  // "dir/" prefixes whose lower contents are hidden
};

struct ArchiveFree {
  void operator()(archive* reader) const { archive_read_free(reader); }
};

Result<std::string> read_entry_data(archive* reader, archive_entry* entry, std::string_view path) {
  if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > kMaxFileBytes) {
    return invalid(std::string(path) + " is larger than 64 MiB");
  }
  std::string content;
  char buffer[65536];
  while (true) {
    la_ssize_t read = archive_read_data(reader, buffer, sizeof buffer);
    if (read == 0) break;
    if (read < 0)
      return invalid("reading " + std::string(path) + ": " + archive_error_string(reader));
    content.append(buffer, static_cast<std::size_t>(read));
    if (static_cast<int64_t>(content.size()) > kMaxFileBytes) {
      return invalid(std::string(path) + " is larger than 64 MiB");
    }
  }
  return content;
}

// Reads one layer and applies it to the view.
Status read_layer(int fd, MergedView& view) {
  std::unique_ptr<archive, ArchiveFree> reader(archive_read_new());
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_gnutar(reader.get());
  archive_read_support_format_empty(reader.get());
  if (archive_read_open_fd(reader.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return invalid(std::string("not a tar archive: ") + archive_error_string(reader.get()));
  }
  std::map<std::string, SettledFile> found;
  std::vector<std::string> whiteouts;
  std::vector<std::string> opaque_dirs;
  archive_entry* entry = nullptr;
  while (true) {
    int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (status < ARCHIVE_WARN) {
      return invalid(std::string("not a readable tar archive: ") +
                     archive_error_string(reader.get()));
    }
    const char* raw_path = archive_entry_pathname(entry);
    if (raw_path == nullptr) continue;
    std::string path = normalize_path(raw_path);
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
    std::string_view base = std::string_view(path).substr(dir.size());
    if (base == kOpaqueWhiteout) {
      opaque_dirs.push_back(dir);
      continue;
    }
    if (base.starts_with(kWhiteoutPrefix)) {
      whiteouts.push_back(dir + std::string(base.substr(kWhiteoutPrefix.size())));
      continue;
    }
    if (!is_wanted(path) || view.hidden(path)) continue;
    if (const char* link = archive_entry_hardlink(entry); link != nullptr) {
      auto target = found.find(normalize_path(link));
      if (target != found.end()) found[path] = target->second;
      continue;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) {
      found[path] = SettledFile{};  // a symlink, directory or device: not the file itself
      continue;
    }
    auto content = read_entry_data(reader.get(), entry, path);
    if (!content) return std::unexpected(content.error());
    found[path] = SettledFile{true, std::move(*content)};
  }
  view.apply_layer(found, whiteouts, opaque_dirs);
  return {};
}

}  // namespace

std::string OsRelease::key() const {
  if (id.empty()) return {};
  if (version_id.empty()) return id;
  return id + ":" + version_id;
}

std::string_view package_manager_name(PackageManager manager) {
  return manager == PackageManager::kApk ? "apk" : "dpkg";
}

OsRelease parse_os_release(std::string_view text) {
  OsRelease release;
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = trim(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.empty() || line.front() == '#') continue;
    auto equals = line.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, equals));
    std::string value = unquote_os_release_value(line.substr(equals + 1));
    if (key == "ID") release.id = std::move(value);
    if (key == "VERSION_ID") release.version_id = std::move(value);
    if (key == "PRETTY_NAME") release.pretty_name = std::move(value);
  }
  return release;
}

std::vector<InstalledPackage> parse_dpkg_status(std::string_view text, bool status_optional) {
  std::vector<InstalledPackage> packages;
  for_each_paragraph(text, [&](const auto& fields) {
    std::string name = field(fields, "Package");
    std::string version = field(fields, "Version");
    if (name.empty() || version.empty()) return;
    auto status = fields.find("Status");
    bool installed = status == fields.end() ? status_optional : dpkg_installed(status->second);
    if (!installed) return;
    InstalledPackage package{
        name, version, {}, {}, field(fields, "Architecture"), PackageManager::kDpkg};
    // "Source: glibc" or "Source: glibc (2.36-9)"
    std::string source_field = field(fields, "Source");
    std::string_view source = source_field;
    auto paren = source.find('(');
    package.source_name = std::string(trim(source.substr(0, paren)));
    if (paren != std::string_view::npos) {
      std::string_view version_part = source.substr(paren + 1);
      package.source_version = std::string(trim(version_part.substr(0, version_part.find(')'))));
    }
    packages.push_back(std::move(package));
  });
  return packages;
}

std::vector<InstalledPackage> parse_apk_installed(std::string_view text) {
  std::vector<InstalledPackage> packages;
  for_each_paragraph(text, [&](const auto& fields) {
    std::string name = field(fields, "P");
    std::string version = field(fields, "V");
    if (name.empty() || version.empty()) return;
    packages.push_back(
        {name, version, field(fields, "o"), {}, field(fields, "A"), PackageManager::kApk});
  });
  return packages;
}

Result<PackageInventory> read_package_inventory(std::span<const int> layer_fds) {
  MergedView view;
  for (std::size_t layer_idx = layer_fds.size(); layer_idx-- > 0 && !view.complete();) {
    if (auto status = read_layer(layer_fds[layer_idx], view); !status) {
      return std::unexpected(status.error().context("layer " + std::to_string(layer_idx)));
    }
  }

  PackageInventory inventory;
  if (view.regular(kEtcOsRelease)) {
    inventory.os = parse_os_release(view.content(kEtcOsRelease));
  } else if (view.regular(kUsrOsRelease)) {
    inventory.os = parse_os_release(view.content(kUsrOsRelease));
  }
  auto add = [&](std::vector<InstalledPackage> packages) {
    std::move(packages.begin(), packages.end(), std::back_inserter(inventory.packages));
  };
  if (view.regular(kDpkgStatus)) add(parse_dpkg_status(view.content(kDpkgStatus)));
  for (const auto& [path, file] : view.settled()) {
    if (is_status_d_entry(path) && file && file->regular) {
      add(parse_dpkg_status(file->content, /*status_optional=*/true));
    }
  }
  if (view.regular(kApkInstalled)) add(parse_apk_installed(view.content(kApkInstalled)));
  auto by_name = [](const InstalledPackage& a, const InstalledPackage& b) {
    return std::tie(a.name, a.version, a.architecture) <
           std::tie(b.name, b.version, b.architecture);
  };
  std::sort(inventory.packages.begin(), inventory.packages.end(), by_name);
  inventory.packages.erase(std::unique(inventory.packages.begin(), inventory.packages.end()),
                           inventory.packages.end());
  return inventory;
}

}  // namespace wharf::registry
