// OCI image layout writing.
#include "oci/layout.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/unique_fd.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;

std::unexpected<Error> io_error(std::string_view doing, const fs::path& path) {
  return fail(ErrorCode::kInternal,
              std::string(doing) + " " + path.string() + ": " + std::strerror(errno));
}

boost::json::array existing_entries(const fs::path& index_path, std::string_view skip_name) {
  boost::json::array entries;
  std::ifstream file(index_path);
  if (!file) return entries;
  std::stringstream text;
  text << file.rdbuf();
  boost::system::error_code parse_error;
  auto value = boost::json::parse(text.str(), parse_error);
  if (parse_error || !value.is_object()) return entries;
  const auto* manifests = json::get_array(value.as_object(), "manifests");
  if (manifests == nullptr) return entries;
  for (const auto& entry : *manifests) {
    const auto* annotations =
        entry.is_object() ? json::get_object(entry.as_object(), "annotations") : nullptr;
    bool same_name = !skip_name.empty() && annotations != nullptr &&
                     json::string_or(*annotations, kRefNameAnnotation, "") == skip_name;
    if (!same_name) entries.push_back(entry);
  }
  return entries;
}

}  // namespace

fs::path layout_blob_path(const fs::path& layout_dir, const Digest& digest) {
  return layout_dir / "blobs" / digest.algorithm / digest.hex;
}

fs::path temp_path_beside(const fs::path& destination) {
  return destination.parent_path() /
         ("." + destination.filename().string() + ".partial-" + new_hex_id().substr(0, 12));
}

Status write_file_atomically(const fs::path& destination, std::string_view bytes) {
  fs::path temp = temp_path_beside(destination);
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return io_error("creating", temp);
  Status written;
  while (written && !bytes.empty()) {
    ssize_t count = ::write(fd.get(), bytes.data(), bytes.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      written = io_error("writing", temp);
      break;
    }
    bytes.remove_prefix(static_cast<std::size_t>(count));
  }
  if (written && ::fdatasync(fd.get()) != 0) written = io_error("syncing", temp);
  fd.reset();
  if (written && ::rename(temp.c_str(), destination.c_str()) != 0) {
    written = io_error("renaming into place", destination);
  }
  if (!written) ::unlink(temp.c_str());
  return written;
}

Status init_layout(const fs::path& layout_dir) {
  std::error_code error;
  fs::create_directories(layout_dir / "blobs", error);
  if (error) {
    return fail(ErrorCode::kInternal, "creating " + layout_dir.string() + ": " + error.message());
  }
  if (fs::exists(layout_dir / "oci-layout", error)) return {};
  return write_file_atomically(layout_dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
}

Status add_to_layout_index(const fs::path& layout_dir, const Descriptor& manifest,
                           std::string_view name) {
  fs::path index_path = layout_dir / "index.json";
  boost::json::array entries = existing_entries(index_path, name);
  boost::json::object entry{{"mediaType", manifest.media_type},
                            {"digest", manifest.digest.str()},
                            {"size", manifest.size}};
  if (!name.empty()) entry["annotations"] = boost::json::object{{kRefNameAnnotation, name}};
  entries.push_back(std::move(entry));
  boost::json::object index{
      {"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", std::move(entries)}};
  return write_file_atomically(index_path, boost::json::serialize(index));
}

}  // namespace wharf::oci
