// The `wharf image` commands as library calls: import a root filesystem into a registry, pull
// an image into an OCI layout, authenticating with explicit credentials, else ECR's (from the
// AWS configuration), else anonymously.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"
#include "oci/ecr_login.hpp"
#include "oci/image_builder.hpp"
#include "oci/reference.hpp"

namespace wharf::oci {

struct RegistryAccess {
  std::optional<bool> plain_http;           // unset: http for loopback registries
  bool insecure = false;                    // https without certificate verification
  uint64_t chunk_size = kDefaultChunkSize;  // see ClientOptions::chunk_size
  // Used as given when set; otherwise ECR's GetAuthorizationToken decides (see
  // registry_login).
  std::optional<RegistryCredentials> credentials;
};

struct RegistryLogin {
  std::optional<RegistryCredentials> credentials;
  std::string how;  // for logs: "ECR credentials from http://…", "anonymous: …"
};

// The credentials to use for a reference: explicit ones; else, when AWS access keys are
// configured, ECR's GetAuthorizationToken (falling back to anonymous when the endpoint does not
// speak ECR, e.g. a plain docker-registry); else anonymous. Errors from a real ECR endpoint
// (unknown key, bad signature) are errors.
Result<RegistryLogin> registry_login(const Reference& reference, const RegistryAccess& access,
                                     const EnvLookup& env, TimePoint now);

// A client set up for `access` and logged in as registry_login decides.
Result<std::unique_ptr<RegistryClient>> connect_registry(const Reference& reference,
                                                         const RegistryAccess& access,
                                                         const EnvLookup& env, const Clock& clock,
                                                         std::string* how = nullptr);

struct ImportResult {
  Reference reference;
  Digest digest;  // of the pushed manifest
};

// Builds an image from `rootfs` (see build_image) and pushes it to `reference`.
Result<ImportResult> import_image(const std::filesystem::path& rootfs, std::string_view reference,
                                  const ImageBuildOptions& build, const RegistryAccess& access,
                                  const EnvLookup& env, const Clock& clock);

// Pulls `reference` for linux/amd64 into an OCI image layout at `layout_dir`.
Result<ResolvedImage> pull_to_layout(std::string_view reference,
                                     const std::filesystem::path& layout_dir,
                                     const RegistryAccess& access, const EnvLookup& env,
                                     const Clock& clock);

}  // namespace wharf::oci
