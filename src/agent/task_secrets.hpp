// The secrets a container definition names (repositoryCredentials, `secrets` from Secrets
// Manager or SSM Parameter Store) and fetching them with GetSecretValue and GetParameters. Their
// values live in the agent's memory only: never in a saved task state, a log line or a reported
// reason.
#pragma once

#include <boost/json/object.hpp>

#include <compare>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/aws_json_client.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"

namespace wharf::agent {

// Where a secret is kept.
enum class SecretSource { kSecretsManager, kParameterStore };

// One secret version, as GetSecretValue (or, for a parameter, GetParameters) is asked for it.
struct SecretRef {
  SecretSource source = SecretSource::kSecretsManager;
  std::string secret_id;      // a name or an ARN (of a secret, or of a parameter)
  std::string version_stage;  // empty: the default (AWSCURRENT); secrets only
  std::string version_id;     // empty: whichever version the stage names; secrets only

  auto operator<=>(const SecretRef&) const = default;
};

// Fetches a secret's SecretString. Must be thread-safe (task threads call it). Errors say what
// the server said and never hold a secret's value.
using SecretFetcher = std::function<Result<std::string>(const SecretRef&)>;

// A container secret's valueFrom: the secret version to fetch, and the key of its JSON whose
// value is wanted (empty: the whole SecretString).
struct SecretValueFrom {
  SecretRef secret;
  std::string json_key;

  bool operator==(const SecretValueFrom&) const = default;
};

// Parses a valueFrom in ECS's syntax. A Secrets Manager secret is
//   arn:<partition>:secretsmanager:<region>:<account>:secret:<name>[:<json-key>[:<version-stage>[:<version-id>]]]
// where <name> may end in AWS's 6-character suffix and an empty field means the default; the
// secret id is the ARN up to the name. Anything else that is not an ARN names an SSM parameter
// of the agent's Region, as does arn:<partition>:ssm:<region>:<account>:parameter/<name>; the
// secret id is then the name or ARN as given. Other ARNs are kInvalidParameter.
Result<SecretValueFrom> parse_value_from(std::string_view value_from);

// What a secret reference stands for in the SecretString: all of it, or with `json_key` the
// value of that key of the JSON object it holds (a string as it is, other JSON serialized).
// kInvalidParameter when there is no such key; the message never quotes the secret.
Result<std::string> select_secret_value(std::string_view secret_string, std::string_view json_key);

// repositoryCredentials' secret: {"username": "...", "password": "..."}. kInvalidParameter,
// saying how to store it, for anything else; the message never quotes the secret.
Result<oci::RegistryCredentials> registry_credentials_from_secret(std::string_view secret_string);

// What a container needs from Secrets Manager before it starts.
struct ContainerSecrets {
  std::optional<oci::RegistryCredentials> registry;  // from repositoryCredentials
  // From `secrets`, in their order: environment variables that win over `environment`.
  std::vector<std::pair<std::string, std::string>> environment;
};

// What ECS starts the reason of a task whose secrets could not be had with (then ": " and why).
inline constexpr std::string_view kSecretsFailure =
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed";

// Fetches what the container definition's repositoryCredentials and `secrets` name, each secret
// version once, through `fetch` (unset: none can be fetched). The error's message is the
// reason to report, in ECS's words (kSecretsFailure + ": unable to retrieve secret from asm: "
// + what the server said, ...); its code is the cause's.
Result<ContainerSecrets> fetch_container_secrets(const boost::json::object& container,
                                                 const SecretFetcher& fetch);

// GetSecretValue through a Secrets Manager client: the SecretString. A secret that holds only
// SecretBinary is kInvalidParameter: container secrets and registry credentials are strings.
Result<std::string> get_secret_value(AwsJsonClient& client, const SecretRef& secret);

// GetParameters (decrypted) through an SSM client: the parameter's value. A parameter the
// answer lists as invalid is kNotFound.
Result<std::string> get_parameter_value(AwsJsonClient& client, const SecretRef& parameter);

}  // namespace wharf::agent
