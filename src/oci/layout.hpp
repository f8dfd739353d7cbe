// OCI image layout directories (oci-layout, index.json, blobs/<alg>/<hex>) and atomic file
// writes, shared by pulls and image builds.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "oci/digest.hpp"
#include "oci/manifest.hpp"

namespace wharf::oci {

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

// <layout_dir>/blobs/<algorithm>/<hex>
std::filesystem::path layout_blob_path(const std::filesystem::path& layout_dir,
                                       const Digest& digest);

// Creates the directory, its blobs/ and its oci-layout file.
Status init_layout(const std::filesystem::path& layout_dir);

// Adds `manifest` to index.json, named `name` (org.opencontainers.image.ref.name) when not
// empty, replacing an entry of the same name.
Status add_to_layout_index(const std::filesystem::path& layout_dir, const Descriptor& manifest,
                           std::string_view name);

// Writes a file whole through a temporary file beside it, synced and renamed into place.
Status write_file_atomically(const std::filesystem::path& destination, std::string_view bytes);

// A fresh name beside `destination` for a temporary file that is renamed onto it.
std::filesystem::path temp_path_beside(const std::filesystem::path& destination);

}  // namespace wharf::oci
