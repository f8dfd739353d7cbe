// Builds a single-layer OCI image from a root filesystem (a directory or a tar file), as
// `docker import` does, and pushes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"
#include "oci/digest.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"
#include "oci/temp_dir.hpp"

namespace wharf::oci {

inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

// The runtime part of the image config ("config" in the OCI image config).
struct RuntimeConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;            // "KEY=value"
  std::string working_dir;                 // absolute, or empty
  std::vector<std::string> exposed_ports;  // "80/tcp", "53/udp"; "80" means "80/tcp"
  std::string user;
  std::map<std::string, std::string> labels;
};

// Checks a runtime config and normalises its ports ("80" → "80/tcp"): env entries need a
// non-empty name and '='; ports are 1-65535 with tcp, udp or sctp; the working dir is absolute.
Result<RuntimeConfig> normalize_runtime_config(RuntimeConfig config);

// An entrypoint or command as given on a command line: a JSON array of strings
// ('["/bin/sh","-c","echo hi"]'), or else words separated by white space.
Result<std::vector<std::string>> parse_command_words(std::string_view text);

struct ImageBuildOptions {
  RuntimeConfig config;
  std::string architecture = "amd64";
  std::string os = "linux";
  // "created" in the config and its history entry; unset leaves them out.
  std::optional<TimePoint> created;
  // Every entry's modification time, for layers that are byte-for-byte reproducible; unset
  // keeps the files' own.
  std::optional<TimePoint> mtime;
  std::string created_by = "wharf image import";
  int compression_level = 6;          // gzip, 1-9
  std::filesystem::path temp_parent;  // where the output directory goes; empty: $TMPDIR
};

struct BuiltBlob {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::filesystem::path path;

  Descriptor descriptor() const;
  BlobSource source() const { return BlobSource{digest, size, path}; }
};

// A built image: an OCI image layout in a temporary directory removed with this object.
struct BuiltImage {
  TempDir dir;
  BuiltBlob layer;       // gzip-compressed tar
  BuiltBlob config;      // the OCI image config JSON
  Digest diff_id;        // sha256 of the uncompressed tar
  std::string manifest;  // the OCI image manifest bytes
  Digest manifest_digest;
  std::string manifest_media_type = std::string(kOciManifest);
};

// Builds the layer, config and manifest from `rootfs`:
//  - a directory: every entry below it in byte-wise sorted order (the directory itself is not
//    an entry), with modes, uid/gid, symlinks, hardlinks, devices and fifos; sockets are
//    skipped; user/group names, atimes, ctimes and xattrs are not recorded;
//  - a tar file (any compression libarchive reads): its entries in their order, paths made
//    relative; a path with a ".." component is refused.
// With `mtime` set, the same tree always gives the same digests.
Result<BuiltImage> build_image(const std::filesystem::path& rootfs,
                               const ImageBuildOptions& options);

// Pushes layer, config and manifest (at the reference's tag) and returns the manifest digest.
Result<Digest> push_image(RegistryClient& client, const Reference& reference,
                          const BuiltImage& image);

}  // namespace wharf::oci
