// AWS shared config files, and the signed GetAuthorizationToken call.
#include "oci/ecr_login.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "aws/sigv4.hpp"
#include "common/crypto.hpp"
#include "common/json.hpp"
#include "oci/http_transport.hpp"

namespace wharf::oci {
namespace {

using IniFile = std::map<std::string, std::map<std::string, std::string>>;

constexpr std::string_view kGetAuthorizationTokenTarget =
    "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

std::string trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return "";
  auto last = text.find_last_not_of(" \t\r");
  return std::string(text.substr(first, last - first + 1));
}

// Sections of "key = value" lines; '#' and ';' start comment lines.
IniFile read_ini(const std::string& path) {
  IniFile sections;
  std::ifstream file(path);
  std::string section;
  for (std::string line; std::getline(file, line);) {
    std::string text = trim(line);
    if (text.empty() || text[0] == '#' || text[0] == ';') continue;
    if (text.front() == '[' && text.back() == ']') {
      section = trim(std::string_view(text).substr(1, text.size() - 2));
      continue;
    }
    auto equals = text.find('=');
    if (equals == std::string::npos) continue;
    sections[section][trim(std::string_view(text).substr(0, equals))] =
        trim(std::string_view(text).substr(equals + 1));
  }
  return sections;
}

std::optional<std::string> ini_value(const IniFile& file, const std::string& section,
                                     const std::string& key) {
  auto found = file.find(section);
  if (found == file.end()) return std::nullopt;
  auto value = found->second.find(key);
  if (value == found->second.end() || value->second.empty()) return std::nullopt;
  return value->second;
}

std::string home_file(const EnvLookup& env, std::string_view variable, std::string_view name) {
  if (auto path = env(variable)) return *path;
  return env("HOME").value_or(".") + "/.aws/" + std::string(name);
}

}  // namespace

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

std::optional<AwsCredentials> load_aws_credentials(const EnvLookup& env) {
  std::string profile = env("AWS_PROFILE").value_or("default");
  AwsCredentials credentials;
  auto key = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (key && secret) {
    credentials.access_key_id = *key;
    credentials.secret_access_key = *secret;
    credentials.session_token = env("AWS_SESSION_TOKEN").value_or("");
  } else {
    IniFile file = read_ini(home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    key = ini_value(file, profile, "aws_access_key_id");
    secret = ini_value(file, profile, "aws_secret_access_key");
    if (!key || !secret) return std::nullopt;
    credentials.access_key_id = *key;
    credentials.secret_access_key = *secret;
    credentials.session_token = ini_value(file, profile, "aws_session_token").value_or("");
  }
  auto region = env("AWS_REGION");
  if (!region) region = env("AWS_DEFAULT_REGION");
  if (!region) {
    IniFile config = read_ini(home_file(env, "AWS_CONFIG_FILE", "config"));
    region = ini_value(config, profile == "default" ? profile : "profile " + profile, "region");
  }
  credentials.region = region.value_or("us-east-1");
  return credentials;
}

std::string ecr_endpoint(const Reference& reference, const EnvLookup& env,
                         std::string_view registry_base_url) {
  if (auto endpoint = env("AWS_ENDPOINT_URL_ECR")) return *endpoint;
  if (auto endpoint = env("AWS_ENDPOINT_URL")) return *endpoint;
  // <account>.dkr.ecr.<region>.amazonaws.com
  std::string_view host = reference.registry;
  constexpr std::string_view kEcrMarker = ".dkr.ecr.";
  constexpr std::string_view kAwsSuffix = ".amazonaws.com";
  auto marker = host.find(kEcrMarker);
  if (marker != std::string_view::npos && host.ends_with(kAwsSuffix)) {
    auto region_start = marker + kEcrMarker.size();
    auto region = host.substr(region_start, host.size() - kAwsSuffix.size() - region_start);
    return "https://api.ecr." + std::string(region) + ".amazonaws.com";
  }
  return std::string(registry_base_url);
}

Result<RegistryCredentials> decode_authorization_token(std::string_view token) {
  auto decoded = base64_decode(token);
  if (!decoded) return invalid("the ECR authorization token is not base64");
  auto colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) {
    return invalid("the ECR authorization token is not user:password");
  }
  return RegistryCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

Result<EcrAuthorization> ecr_get_authorization(std::string_view endpoint,
                                               const AwsCredentials& credentials, bool insecure,
                                               TimePoint now) {
  std::string doing = "ECR GetAuthorizationToken at " + std::string(endpoint);
  auto parts = url_target(endpoint);
  if (!parts) return std::unexpected(std::move(parts.error()).context("ECR endpoint"));
  aws::SignableRequest signable{"POST", parts->path, {}, "{}"};
  signable.headers = {{"Host", parts->host},
                      {"Content-Type", "application/x-amz-json-1.1"},
                      {"X-Amz-Target", std::string(kGetAuthorizationTokenTarget)}};
  if (!credentials.session_token.empty()) {
    signable.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  aws::sign_request(signable, credentials.access_key_id, credentials.secret_access_key,
                    credentials.region, "ecr", now);
  HttpRequest request;
  request.method = "POST";
  request.url = std::string(endpoint);
  if (!request.url.ends_with('/') && parts->path == "/") request.url += "/";
  request.headers = signable.headers;
  request.body = "{}";
  request.max_body = 1 << 20;

  TransportOptions transport_options;
  transport_options.insecure = insecure;
  transport_options.connect_timeout = std::chrono::seconds(10);
  HttpTransport transport(transport_options);
  auto response = transport.perform(request);
  if (!response) return EcrAuthorization{std::nullopt, response.error().message};
  if (response->status == 404 || response->status == 405) {
    return EcrAuthorization{
        std::nullopt, "POST " + request.url + " answered HTTP " + std::to_string(response->status)};
  }
  boost::system::error_code parse_error;
  auto body = boost::json::parse(response->body, parse_error);
  const boost::json::object* object =
      !parse_error && body.is_object() ? &body.as_object() : nullptr;
  if (object == nullptr) {
    // docker-registry answers POST / with an empty 200; web servers with HTML.
    return EcrAuthorization{std::nullopt, "POST " + request.url + " answered HTTP " +
                                              std::to_string(response->status) +
                                              " without a JSON object"};
  }
  if (response->status != 200) {
    std::string type = json::string_or(*object, "__type", "");
    type = type.substr(type.find('#') == std::string::npos ? 0 : type.find('#') + 1);
    std::string message =
        json::string_or(*object, "message", json::string_or(*object, "Message", ""));
    if (type.find("UnknownOperation") != std::string::npos) {
      return EcrAuthorization{std::nullopt, "the endpoint has no ECR API (" + type + ")"};
    }
    std::string text = "HTTP " + std::to_string(response->status);
    if (!type.empty()) text += " " + type;
    if (!message.empty()) text += ": " + message;
    return fail(response->status == 400 || response->status == 403 ? ErrorCode::kAccessDenied
                                                                   : ErrorCode::kInternal,
                doing + ": " + text);
  }
  const auto* data = json::get_array(*object, "authorizationData");
  if (data == nullptr || data->empty() || !data->front().is_object()) {
    return fail(ErrorCode::kInternal, doing + ": the answer holds no authorizationData");
  }
  auto token = json::get_string(data->front().as_object(), "authorizationToken");
  if (!token) return fail(ErrorCode::kInternal, doing + ": the answer holds no authorizationToken");
  auto decoded = decode_authorization_token(*token);
  if (!decoded) return std::unexpected(std::move(decoded.error()).context(doing));
  return EcrAuthorization{std::move(*decoded), ""};
}

}  // namespace wharf::oci
