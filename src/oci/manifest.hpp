// OCI image manifests and indexes, Docker schema 2 manifests and manifest lists: parsing and
// the facts a registry needs from them (what they reference, what they are about).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::oci {

// Manifest media types.
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1SignedManifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
// Config media types.
inline constexpr std::string_view kOciImageConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerImageConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";

struct Platform {
  std::string architecture;
  std::string os;
  std::string variant;  // empty when absent
  std::string os_version;
  std::vector<std::string> os_features;
};

// A reference to content: what it is, its digest and its size in bytes.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::optional<std::string> artifact_type;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // index entries only
};

enum class ManifestKind {
  kImage,  // OCI image manifest or Docker schema 2 manifest: a config and layers
  kIndex,  // OCI image index or Docker manifest list: child manifests
};

struct Manifest {
  ManifestKind kind = ManifestKind::kImage;
  std::string media_type;             // one of the four manifest media types above
  std::optional<Descriptor> config;   // kImage only (always present there)
  std::vector<Descriptor> layers;     // kImage only
  std::vector<Descriptor> manifests;  // kIndex only
  std::optional<Descriptor> subject;  // the manifest this one refers to (OCI 1.1 referrers)
  std::optional<std::string> artifact_type;
  std::map<std::string, std::string> annotations;

  bool is_index() const { return kind == ManifestKind::kIndex; }
  // The artifact type the referrers API reports: artifactType, else (for images) the config's
  // media type; empty for an index without artifactType.
  std::string effective_artifact_type() const;
  // The blobs this manifest needs in its repository: the config and the layers (an index needs
  // none; its children are manifests).
  std::vector<Descriptor> blobs() const;
  // Config plus layer sizes: what ECR reports as imageSizeInBytes for an image manifest.
  int64_t blob_bytes() const;
};

// Parses a manifest. `content_type` is the Content-Type it came with (may be empty or carry
// parameters). The media type is the body's "mediaType" when present (a Content-Type naming a
// different manifest type is then an error), else the Content-Type, else guessed from the shape
// ("manifests" → OCI index, "config" → OCI manifest).
// Errors: kUnsupportedImageType for Docker schema 1 or an unknown manifest media type;
// kInvalidParameter for anything malformed (not JSON, schemaVersion ≠ 2, bad descriptors).
Result<Manifest> parse_manifest(std::string_view bytes, std::string_view content_type);

// True for the four manifest media types Wharf stores.
bool is_manifest_media_type(std::string_view media_type);

}  // namespace wharf::oci
