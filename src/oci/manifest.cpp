// Manifest parsing: JSON into Manifest, with the checks a registry applies before storing one.
#include "oci/manifest.hpp"

#include <boost/json.hpp>

#include <array>

namespace wharf::oci {

namespace bj = boost::json;

namespace {

constexpr std::array<std::string_view, 4> kManifestTypes = {kOciManifest, kOciIndex,
                                                            kDockerManifest, kDockerManifestList};

bool is_schema1(std::string_view media_type) {
  return media_type == kDockerSchema1Manifest || media_type == kDockerSchema1SignedManifest;
}

// "application/vnd.oci.image.manifest.v1+json; charset=utf-8" → the type alone.
std::string_view bare_media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  while (!content_type.empty() && content_type.front() == ' ') content_type.remove_prefix(1);
  return content_type;
}

Result<std::map<std::string, std::string>> parse_annotations(const bj::object& object,
                                                             std::string_view where) {
  std::map<std::string, std::string> annotations;
  const bj::value* value = object.if_contains("annotations");
  if (value == nullptr || value->is_null()) return annotations;
  if (!value->is_object()) return invalid(std::string(where) + "annotations must be an object");
  for (const auto& [key, entry] : value->as_object()) {
    if (!entry.is_string()) {
      return invalid(std::string(where) + "annotation '" + std::string(key) + "' must be a string");
    }
    annotations.emplace(key, entry.as_string());
  }
  return annotations;
}

Result<std::optional<std::string>> optional_string(const bj::object& object, std::string_view key,
                                                   std::string_view where) {
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) {
    return invalid(std::string(where) + std::string(key) + " must be a string");
  }
  return std::optional<std::string>(std::string(value->as_string()));
}

Result<Platform> parse_platform(const bj::value& value, std::string_view where) {
  if (!value.is_object()) return invalid(std::string(where) + "platform must be an object");
  const bj::object& object = value.as_object();
  Platform platform;
  for (auto [key, field] :
       {std::pair{"architecture", &platform.architecture}, std::pair{"os", &platform.os},
        std::pair{"variant", &platform.variant}, std::pair{"os.version", &platform.os_version}}) {
    auto text = optional_string(object, key, std::string(where) + "platform.");
    if (!text) return std::unexpected(text.error());
    if (*text) *field = **text;
  }
  if (const bj::value* features = object.if_contains("os.features");
      features != nullptr && features->is_array()) {
    for (const auto& feature : features->as_array()) {
      if (feature.is_string()) platform.os_features.emplace_back(feature.as_string());
    }
  }
  return platform;
}

Result<Descriptor> parse_descriptor(const bj::value& value, const std::string& where) {
  if (!value.is_object()) return invalid(where + "must be an object");
  const bj::object& object = value.as_object();
  Descriptor descriptor;
  const bj::value* media_type = object.if_contains("mediaType");
  if (media_type == nullptr || !media_type->is_string() || media_type->as_string().empty()) {
    return invalid(where + "mediaType must be a non-empty string");
  }
  descriptor.media_type = media_type->as_string();
  const bj::value* digest = object.if_contains("digest");
  if (digest == nullptr || !digest->is_string()) return invalid(where + "digest must be a string");
  auto parsed = parse_digest(digest->as_string());
  if (!parsed) return std::unexpected(std::move(parsed).error().context(where + "digest"));
  descriptor.digest = std::move(*parsed);
  const bj::value* size = object.if_contains("size");
  if (size == nullptr || !(size->is_int64() || size->is_uint64()) ||
      (size->is_int64() && size->as_int64() < 0)) {
    return invalid(where + "size must be a non-negative integer");
  }
  descriptor.size = size->is_int64() ? size->as_int64() : static_cast<int64_t>(size->as_uint64());
  auto artifact_type = optional_string(object, "artifactType", where);
  if (!artifact_type) return std::unexpected(artifact_type.error());
  descriptor.artifact_type = std::move(*artifact_type);
  auto annotations = parse_annotations(object, where);
  if (!annotations) return std::unexpected(annotations.error());
  descriptor.annotations = std::move(*annotations);
  if (const bj::value* platform = object.if_contains("platform");
      platform != nullptr && !platform->is_null()) {
    auto parsed_platform = parse_platform(*platform, where);
    if (!parsed_platform) return std::unexpected(parsed_platform.error());
    descriptor.platform = std::move(*parsed_platform);
  }
  return descriptor;
}

Result<std::vector<Descriptor>> parse_descriptors(const bj::object& object, std::string_view key,
                                                  bool required) {
  std::vector<Descriptor> descriptors;
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    if (required) return invalid("manifest lacks " + std::string(key));
    return descriptors;
  }
  if (!value->is_array()) return invalid(std::string(key) + " must be an array");
  const bj::array& array = value->as_array();
  for (std::size_t descriptor_idx = 0; descriptor_idx < array.size(); ++descriptor_idx) {
    auto descriptor = parse_descriptor(
        array[descriptor_idx], std::string(key) + "[" + std::to_string(descriptor_idx) + "]: ");
    if (!descriptor) return std::unexpected(descriptor.error());
    descriptors.push_back(std::move(*descriptor));
  }
  return descriptors;
}

// The manifest's media type from its body, its Content-Type and its shape.
Result<std::string> media_type_of(const bj::object& object, std::string_view content_type) {
  std::string_view declared = bare_media_type(content_type);
  auto body_type = optional_string(object, "mediaType", "");
  if (!body_type) return std::unexpected(body_type.error());
  const bj::value* version = object.if_contains("schemaVersion");
  bool version1 = version != nullptr && version->is_number() && version->to_number<double>() == 1;
  if (version1 || is_schema1(declared) || (*body_type && is_schema1(**body_type))) {
    return fail(ErrorCode::kUnsupportedImageType,
                "Docker schema 1 manifests are not supported: push schema 2 or OCI");
  }
  if (*body_type) {
    if (is_manifest_media_type(declared) && declared != **body_type) {
      return invalid("the manifest's mediaType " + **body_type +
                     " does not match its Content-Type " + std::string(declared));
    }
    return **body_type;
  }
  if (is_manifest_media_type(declared)) return std::string(declared);
  if (object.contains("manifests")) return std::string(kOciIndex);
  if (object.contains("config")) return std::string(kOciManifest);
  return invalid("cannot tell the manifest's type: it has no mediaType, config or manifests");
}

}  // namespace

bool is_manifest_media_type(std::string_view media_type) {
  for (std::string_view known : kManifestTypes) {
    if (media_type == known) return true;
  }
  return false;
}

std::string Manifest::effective_artifact_type() const {
  if (artifact_type) return *artifact_type;
  if (config) return config->media_type;
  return "";
}

std::vector<Descriptor> Manifest::blobs() const {
  std::vector<Descriptor> blobs;
  if (config) blobs.push_back(*config);
  blobs.insert(blobs.end(), layers.begin(), layers.end());
  return blobs;
}

int64_t Manifest::blob_bytes() const {
  int64_t total = config ? config->size : 0;
  for (const Descriptor& layer : layers) total += layer.size;
  return total;
}

Result<Manifest> parse_manifest(std::string_view bytes, std::string_view content_type) {
  boost::system::error_code ec;
  bj::value value = bj::parse(bytes, ec);
  if (ec) return invalid("the manifest is not JSON: " + ec.message());
  if (!value.is_object()) return invalid("the manifest is not a JSON object");
  const bj::object& object = value.as_object();

  auto media_type = media_type_of(object, content_type);
  if (!media_type) return std::unexpected(media_type.error());
  if (!is_manifest_media_type(*media_type)) {
    return fail(ErrorCode::kUnsupportedImageType,
                "manifest media type " + *media_type + " is not supported");
  }
  const bj::value* version = object.if_contains("schemaVersion");
  if (version == nullptr || !version->is_number() || version->to_number<double>() != 2) {
    return invalid("schemaVersion must be 2");
  }

  Manifest manifest;
  manifest.media_type = std::move(*media_type);
  manifest.kind = manifest.media_type == kOciIndex || manifest.media_type == kDockerManifestList
                      ? ManifestKind::kIndex
                      : ManifestKind::kImage;
  if (manifest.is_index()) {
    auto children = parse_descriptors(object, "manifests", true);
    if (!children) return std::unexpected(children.error());
    manifest.manifests = std::move(*children);
  } else {
    const bj::value* config = object.if_contains("config");
    if (config == nullptr) return invalid("an image manifest must have a config");
    auto parsed_config = parse_descriptor(*config, "config: ");
    if (!parsed_config) return std::unexpected(parsed_config.error());
    manifest.config = std::move(*parsed_config);
    auto layers = parse_descriptors(object, "layers", manifest.media_type == kDockerManifest);
    if (!layers) return std::unexpected(layers.error());
    manifest.layers = std::move(*layers);
  }
  if (const bj::value* subject = object.if_contains("subject");
      subject != nullptr && !subject->is_null()) {
    auto parsed_subject = parse_descriptor(*subject, "subject: ");
    if (!parsed_subject) return std::unexpected(parsed_subject.error());
    manifest.subject = std::move(*parsed_subject);
  }
  auto artifact_type = optional_string(object, "artifactType", "");
  if (!artifact_type) return std::unexpected(artifact_type.error());
  manifest.artifact_type = std::move(*artifact_type);
  auto annotations = parse_annotations(object, "");
  if (!annotations) return std::unexpected(annotations.error());
  manifest.annotations = std::move(*annotations);
  return manifest;
}

}  // namespace wharf::oci
