// Registry credentials from the AWS configuration: ECR's GetAuthorizationToken, SigV4-signed
// with the caller's access keys, as `aws ecr get-login-password` does.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"
#include "oci/reference.hpp"

namespace wharf::oci {

// Reads an environment variable; nullopt when unset or empty. Injected so tests need no
// process environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup process_environment();

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  std::string region;
};

// The caller's AWS identity: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else
// the profile AWS_PROFILE (or "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials). Region: AWS_REGION, AWS_DEFAULT_REGION, the
// profile's region in AWS_CONFIG_FILE or ~/.aws/config, else us-east-1. nullopt when no access keys
// are configured.
std::optional<AwsCredentials> load_aws_credentials(const EnvLookup& env);

// Where the ECR API for a registry is: AWS_ENDPOINT_URL_ECR, else AWS_ENDPOINT_URL, else
// https://api.ecr.<region>.amazonaws.com for <account>.dkr.ecr.<region>.amazonaws.com, else the
// registry itself (`registry_base_url`, as Wharf serves both on one listener).
std::string ecr_endpoint(const Reference& reference, const EnvLookup& env,
                         std::string_view registry_base_url);

// "AWS:<password>" from authorizationData[].authorizationToken (base64).
Result<RegistryCredentials> decode_authorization_token(std::string_view token);

struct EcrAuthorization {
  std::optional<RegistryCredentials> credentials;
  // Why there are none: the endpoint is not an ECR API (unreachable, 404/405, an answer that is
  // not a JSON object, or UnknownOperationException), as with a plain docker-registry.
  std::string not_ecr_reason;
};

// POSTs GetAuthorizationToken to `endpoint`, signed for service "ecr". An endpoint that does
// not speak ECR is not an error (see EcrAuthorization); every other failure is, with ECR's
// error name and message.
Result<EcrAuthorization> ecr_get_authorization(std::string_view endpoint,
                                               const AwsCredentials& credentials, bool insecure,
                                               TimePoint now);

}  // namespace wharf::oci
