// Container secrets and registry credentials from Secrets Manager.
#include "agent/task_secrets.hpp"

#include <boost/json.hpp>

#include <map>

#include "common/json.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace bj = boost::json;

namespace {

// ARN fields before the resource: arn:partition:service:region:account.
constexpr std::size_t kArnPrefixFields = 5;
// The resource's fields: "secret", name, json-key, version-stage, version-id.
constexpr std::size_t kMaxSecretFields = 5;

SecretValueFrom ssm_parameter(std::string_view value_from) {
  SecretValueFrom parsed;
  parsed.secret.source = SecretSource::kParameterStore;
  parsed.secret.secret_id = std::string(value_from);
  return parsed;
}

// What a failed fetch of `secret` is reported as, in ECS's words.
std::string fetch_failure(const SecretRef& secret) {
  if (secret.source == SecretSource::kParameterStore) {
    return "unable to retrieve secrets from ssm: failed to fetch parameter " + secret.secret_id +
           " from parameter store";
  }
  return "unable to retrieve secret from asm: failed to fetch secret " + secret.secret_id +
         " from secrets manager";
}

Result<bj::object> json_object(std::string_view secret_string) {
  boost::system::error_code ec;
  bj::value parsed = bj::parse(secret_string, ec);
  if (ec || !parsed.is_object()) return invalid("its SecretString is not a JSON object");
  return std::move(parsed.as_object());
}

// Each secret version fetched once, however many references name it.
class SecretCache {
 public:
  explicit SecretCache(const SecretFetcher& fetch) : fetch_(fetch) {}

  Result<std::string> get(const SecretRef& secret) {
    if (auto found = fetched_.find(secret); found != fetched_.end()) return found->second;
    auto value =
        fetch_ ? fetch_(secret) : fail(ErrorCode::kUnsupportedFeature, "this agent has no client");
    if (!value) return std::unexpected(std::move(value.error()).context(fetch_failure(secret)));
    fetched_.emplace(secret, *value);
    return value;
  }

 private:
  const SecretFetcher& fetch_;
  std::map<SecretRef, std::string> fetched_;
};

Result<std::optional<oci::RegistryCredentials>> repository_credentials(const bj::object& container,
                                                                       SecretCache& cache) {
  const bj::object* repository = json::get_object(container, "repositoryCredentials");
  if (repository == nullptr) return std::nullopt;
  std::string parameter = json::string_or(*repository, "credentialsParameter", "");
  if (parameter.empty()) return invalid("repositoryCredentials has no credentialsParameter");
  SecretRef latest;  // the credentials' secret at its default stage
  latest.secret_id = parameter;
  auto secret = cache.get(latest);
  if (!secret) return std::unexpected(secret.error());
  auto credentials = registry_credentials_from_secret(*secret);
  if (!credentials) {
    return std::unexpected(
        credentials.error().context("the repositoryCredentials secret " + parameter));
  }
  return std::move(*credentials);
}

Result<std::pair<std::string, std::string>> secret_variable(const bj::value& item,
                                                            SecretCache& cache) {
  const bj::object* entry = item.if_object();
  std::string name = entry ? json::string_or(*entry, "name", "") : "";
  std::string value_from = entry ? json::string_or(*entry, "valueFrom", "") : "";
  if (name.empty() || value_from.empty()) return invalid("a secret lacks its name or valueFrom");
  auto source = parse_value_from(value_from);
  if (!source) return std::unexpected(source.error().context("secret " + name));
  auto secret = cache.get(source->secret);
  if (!secret) return std::unexpected(secret.error());
  auto value = select_secret_value(*secret, source->json_key);
  if (!value) {
    return std::unexpected(value.error().context("unable to retrieve secret from asm: secret " +
                                                 name + " (" + source->secret.secret_id + ")"));
  }
  return std::pair{std::move(name), std::move(*value)};
}

}  // namespace

Result<SecretValueFrom> parse_value_from(std::string_view value_from) {
  if (value_from.empty()) return invalid("valueFrom is empty");
  // ECS reads a name that is not an ARN as a parameter of the task's own Region.
  if (!value_from.starts_with("arn:")) return ssm_parameter(value_from);
  std::vector<std::string_view> fields = split(value_from, ':');
  if (fields.size() == kArnPrefixFields + 1 && fields[2] == "ssm" &&
      fields[5].starts_with("parameter/") &&
      fields[5].size() > std::string_view("parameter/").size()) {
    return ssm_parameter(value_from);
  }
  std::string syntax = "valueFrom '" + std::string(value_from) +
                       "' is not arn:<partition>:secretsmanager:<region>:<account>:secret:<name>"
                       "[:<json-key>[:<version-stage>[:<version-id>]]], "
                       "arn:<partition>:ssm:<region>:<account>:parameter/<name> or a parameter "
                       "name";
  if (fields.size() <= kArnPrefixFields + 1 || fields[2] != "secretsmanager" ||
      fields[5] != "secret" || fields[6].empty() ||
      fields.size() > kArnPrefixFields + kMaxSecretFields) {
    return invalid(syntax);
  }
  for (std::size_t index = 1; index < kArnPrefixFields; ++index) {
    if (fields[index].empty()) return invalid(syntax);
  }
  auto field = [&](std::size_t index) {
    return index < fields.size() ? std::string(fields[index]) : std::string();
  };
  std::size_t id_length = fields[6].data() + fields[6].size() - value_from.data();
  SecretValueFrom parsed;
  parsed.secret.secret_id = std::string(value_from.substr(0, id_length));
  parsed.json_key = field(7);
  parsed.secret.version_stage = field(8);
  parsed.secret.version_id = field(9);
  return parsed;
}

Result<std::string> select_secret_value(std::string_view secret_string, std::string_view json_key) {
  if (json_key.empty()) return std::string(secret_string);
  std::string no_key = "the secret has no JSON key '" + std::string(json_key) + "'";
  auto object = json_object(secret_string);
  if (!object) return invalid(no_key + ": " + object.error().message);
  const bj::value* value = object->if_contains(json_key);
  if (value == nullptr) return invalid(no_key);
  if (value->is_string()) return std::string(value->as_string());
  return bj::serialize(*value);
}

Result<oci::RegistryCredentials> registry_credentials_from_secret(std::string_view secret_string) {
  auto object = json_object(secret_string);
  auto username = object ? json::get_string(*object, "username") : std::nullopt;
  auto password = object ? json::get_string(*object, "password") : std::nullopt;
  if (!username || !password) {
    return invalid(
        "its SecretString is not JSON with string \"username\" and \"password\" members; store "
        "the registry login as {\"username\": \"...\", \"password\": \"...\"}");
  }
  return oci::RegistryCredentials{std::move(*username), std::move(*password)};
}

Result<ContainerSecrets> fetch_container_secrets(const bj::object& container,
                                                 const SecretFetcher& fetch) {
  SecretCache cache(fetch);
  ContainerSecrets fetched;
  auto registry = repository_credentials(container, cache);
  if (!registry) return std::unexpected(registry.error().context(kSecretsFailure));
  fetched.registry = std::move(*registry);
  if (const bj::array* secrets = json::get_array(container, "secrets")) {
    for (const bj::value& item : *secrets) {
      auto variable = secret_variable(item, cache);
      if (!variable) return std::unexpected(variable.error().context(kSecretsFailure));
      fetched.environment.push_back(std::move(*variable));
    }
  }
  return fetched;
}

Result<std::string> get_secret_value(AwsJsonClient& client, const SecretRef& secret) {
  bj::object input{{"SecretId", secret.secret_id}};
  if (!secret.version_id.empty()) input["VersionId"] = secret.version_id;
  if (!secret.version_stage.empty()) input["VersionStage"] = secret.version_stage;
  auto output = client.call("GetSecretValue", input);
  if (!output) return std::unexpected(output.error());
  if (auto text = json::get_string(*output, "SecretString")) return std::move(*text);
  if (json::member(*output, "SecretBinary") != nullptr) {
    return invalid("the secret holds SecretBinary, not the SecretString ECS reads");
  }
  return fail(ErrorCode::kInternal, "GetSecretValue answered without a SecretString");
}

Result<std::string> get_parameter_value(AwsJsonClient& client, const SecretRef& parameter) {
  bj::object input{{"Names", bj::array{bj::value(parameter.secret_id)}}, {"WithDecryption", true}};
  auto output = client.call("GetParameters", input);
  if (!output) return std::unexpected(output.error());
  if (const bj::array* parameters = json::get_array(*output, "Parameters")) {
    for (const bj::value& item : *parameters) {
      if (!item.is_object()) continue;
      if (auto value = json::get_string(item.as_object(), "Value")) return std::move(*value);
    }
  }
  return fail(ErrorCode::kNotFound, "GetParameters: InvalidParameters: " + parameter.secret_id);
}

}  // namespace wharf::agent
