// Image references ("127.0.0.1:5000/web:latest", "busybox", "host/repo@sha256:…"), parsed and
// normalised the way Docker does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::oci {

inline constexpr std::string_view kDockerHubRegistry = "registry-1.docker.io";

struct Reference {
  std::string registry;    // API host[:port]: "127.0.0.1:5000", "registry-1.docker.io"
  std::string repository;  // "web", "library/busybox"
  std::string tag;         // "latest"; empty when only a digest was given
  std::optional<Digest> digest;

  // What the manifests endpoint is asked for: the digest when there is one, else the tag.
  std::string manifest_reference() const;
  // "registry/repository[:tag][@digest]"
  std::string str() const;
  // The same repository at another tag or digest.
  Reference with_tag(std::string_view new_tag) const;
  Reference with_digest(const Digest& new_digest) const;

  bool operator==(const Reference&) const = default;
};

// Parses "[registry/]repository[:tag][@digest]". A first path component is a registry when it
// has a '.' or ':', is "localhost", or has upper-case letters; otherwise the image is on Docker
// Hub (registry-1.docker.io), where single-component names live under "library/". Without a tag
// or digest the tag is "latest". kInvalidParameter, saying what is wrong, when malformed.
Result<Reference> parse_reference(std::string_view text);

// Registries that are spoken to over plain http by default: localhost, 127.0.0.0/8 and [::1].
bool is_loopback_registry(std::string_view registry);

}  // namespace wharf::oci
