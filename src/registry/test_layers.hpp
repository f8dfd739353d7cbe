// Test helper: writes small layer archives (plain, gzip or zstd tar) for the scanner and ECR
// API tests. Only unit tests include it.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <vector>

namespace wharf::registry::test_layers {

enum class Compression { kNone, kGzip, kZstd };

struct LayerEntry {
  std::string path;
  std::string content;  // file bytes, or the target of a symlink or hard link
  enum Kind { kFile, kSymlink, kDirectory, kHardlink } kind = kFile;
};

// The archive bytes holding `entries` in order.
inline std::string layer_tar(const std::vector<LayerEntry>& entries,
                             Compression compression = Compression::kGzip) {
  std::string bytes;
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  if (compression == Compression::kGzip) archive_write_add_filter_gzip(writer);
  if (compression == Compression::kZstd) archive_write_add_filter_zstd(writer);
  archive_write_set_bytes_in_last_block(writer, 1);
  archive_write_open(
      writer, &bytes, nullptr,
      [](archive*, void* out, const void* buffer, size_t length) -> la_ssize_t {
        static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
        return static_cast<la_ssize_t>(length);
      },
      nullptr);
  for (const auto& spec : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, spec.path.c_str());
    archive_entry_set_perm(entry, 0644);
    switch (spec.kind) {
      case LayerEntry::kFile:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_size(entry, static_cast<la_int64_t>(spec.content.size()));
        break;
      case LayerEntry::kSymlink:
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_symlink(entry, spec.content.c_str());
        break;
      case LayerEntry::kDirectory:
        archive_entry_set_filetype(entry, AE_IFDIR);
        archive_entry_set_perm(entry, 0755);
        break;
      case LayerEntry::kHardlink:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_hardlink(entry, spec.content.c_str());
        break;
    }
    archive_write_header(writer, entry);
    if (spec.kind == LayerEntry::kFile && !spec.content.empty()) {
      archive_write_data(writer, spec.content.data(), spec.content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
  return bytes;
}

}  // namespace wharf::registry::test_layers
