// Glue between the image builder, the registry client and ECR login for the CLI.
#include "oci/image_transfer.hpp"

#include <spdlog/spdlog.h>

namespace wharf::oci {

Result<RegistryLogin> registry_login(const Reference& reference, const RegistryAccess& access,
                                     const EnvLookup& env, TimePoint now) {
  if (access.credentials) return RegistryLogin{access.credentials, "the credentials given"};
  auto aws = load_aws_credentials(env);
  if (!aws) return RegistryLogin{std::nullopt, "anonymous (no AWS access keys configured)"};
  ClientOptions probe;
  probe.plain_http = access.plain_http;
  std::string endpoint =
      ecr_endpoint(reference, env, RegistryClient(probe).base_url(reference.registry));
  auto authorization = ecr_get_authorization(endpoint, *aws, access.insecure, now);
  if (!authorization) return std::unexpected(std::move(authorization.error()));
  if (!authorization->credentials) {
    return RegistryLogin{std::nullopt, "anonymous (" + endpoint + " is no ECR API: " +
                                           authorization->not_ecr_reason + ")"};
  }
  return RegistryLogin{std::move(authorization->credentials), "ECR credentials from " + endpoint};
}

Result<std::unique_ptr<RegistryClient>> connect_registry(const Reference& reference,
                                                         const RegistryAccess& access,
                                                         const EnvLookup& env, const Clock& clock,
                                                         std::string* how) {
  auto login = registry_login(reference, access, env, clock.now());
  if (!login) return std::unexpected(std::move(login.error()));
  if (how != nullptr) *how = login->how;
  ClientOptions options;
  options.plain_http = access.plain_http;
  options.insecure = access.insecure;
  options.chunk_size = access.chunk_size;
  options.credentials = std::move(login->credentials);
  options.clock = &clock;
  return std::make_unique<RegistryClient>(std::move(options));
}

Result<ImportResult> import_image(const std::filesystem::path& rootfs, std::string_view reference,
                                  const ImageBuildOptions& build, const RegistryAccess& access,
                                  const EnvLookup& env, const Clock& clock) {
  auto parsed = parse_reference(reference);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  std::string doing = "importing " + rootfs.string() + " as " + parsed->str();
  if (parsed->digest) {
    return fail(ErrorCode::kInvalidParameter,
                doing + ": name a tag to push to, not a digest (the digest is the result)");
  }
  auto image = build_image(rootfs, build);
  if (!image) return std::unexpected(std::move(image.error()).context(doing));
  std::string how;
  auto client = connect_registry(*parsed, access, env, clock, &how);
  if (!client) return std::unexpected(std::move(client.error()).context(doing));
  spdlog::info("pushing {} ({} bytes) to {} with {}", image->manifest_digest.str(),
               image->layer.size, parsed->str(), how);
  auto digest = push_image(**client, *parsed, *image);
  if (!digest) return std::unexpected(std::move(digest.error()).context(doing));
  return ImportResult{*parsed, *digest};
}

Result<ResolvedImage> pull_to_layout(std::string_view reference,
                                     const std::filesystem::path& layout_dir,
                                     const RegistryAccess& access, const EnvLookup& env,
                                     const Clock& clock) {
  auto parsed = parse_reference(reference);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  std::string how;
  auto client = connect_registry(*parsed, access, env, clock, &how);
  if (!client)
    return std::unexpected(std::move(client.error()).context("pulling " + parsed->str()));
  spdlog::info("pulling {} with {}", parsed->str(), how);
  return (*client)->pull_image(*parsed, layout_dir);
}

}  // namespace wharf::oci
