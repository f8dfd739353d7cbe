// Registry tokens (HMAC-signed, self-contained) and the anonymous-pull policy check.
#include "registry/auth.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crypto.hpp"

namespace wharf::registry {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

// What a token is for; a token of one kind never passes as another.
constexpr std::string_view kPasswordKind = "ecr-password";
constexpr std::string_view kBearerKind = "registry-bearer";

int64_t epoch_seconds_of(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The credentials after "<scheme> ", or nullopt when the header uses another scheme.
std::optional<std::string_view> credentials_of(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || !iequals(header.substr(0, scheme.size()), scheme) ||
      header[scheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view rest = header.substr(scheme.size() + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  return rest;
}

Error unrecognized(std::string message) {
  return Error{ErrorCode::kUnrecognizedClient, std::move(message)};
}

// Case-insensitive match with '*' (any run) and '?' (one character), as IAM actions match.
bool action_matches(std::string_view pattern, std::string_view action) {
  if (pattern.empty()) return action.empty();
  if (pattern.front() == '*') {
    for (std::size_t skip = 0; skip <= action.size(); ++skip) {
      if (action_matches(pattern.substr(1), action.substr(skip))) return true;
    }
    return false;
  }
  if (action.empty()) return false;
  bool same =
      pattern.front() == '?' || std::tolower(static_cast<unsigned char>(pattern.front())) ==
                                    std::tolower(static_cast<unsigned char>(action.front()));
  return same && action_matches(pattern.substr(1), action.substr(1));
}

std::vector<std::string_view> strings_of(const bj::value* value) {
  std::vector<std::string_view> strings;
  if (value == nullptr) return strings;
  if (value->is_string()) strings.push_back(value->as_string());
  if (value->is_array()) {
    for (const auto& item : value->as_array()) {
      if (item.is_string()) strings.push_back(item.as_string());
    }
  }
  return strings;
}

bool applies_to_everyone(const bj::value* principal) {
  if (principal == nullptr) return false;
  if (principal->is_string()) return principal->as_string() == "*";
  if (!principal->is_object()) return false;
  auto aws = strings_of(principal->as_object().if_contains("AWS"));
  return std::find(aws.begin(), aws.end(), "*") != aws.end();
}

bool covers_pull(const bj::value* actions) {
  for (std::string_view pattern : strings_of(actions)) {
    if (action_matches(pattern, "ecr:BatchGetImage") ||
        action_matches(pattern, "ecr:GetDownloadUrlForLayer")) {
      return true;
    }
  }
  return false;
}

Status write_private_file(const fs::path& path, const std::string& contents) {
  fs::path temp = path;
  temp += ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(ErrorCode::kInternal, "creating " + temp.string() + ": " + std::strerror(errno));
  }
  bool ok =
      ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(ErrorCode::kInternal, "writing " + path.string() + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

std::string RegistryAuth::sign(std::string_view kind, const Identity& identity) const {
  bj::object claims{{"a", identity.account_id},
                    {"r", identity.region},
                    {"k", identity.access_key_id},
                    {"n", identity.anonymous},
                    {"e", epoch_seconds_of(identity.expires_at)}};
  std::string payload = base64url_encode(bj::serialize(claims));
  std::string mac = hmac_sha256_raw(secret_, std::string(kind) + "." + payload);
  return payload + "." + base64url_encode(mac);
}

Result<Identity> RegistryAuth::verify(std::string_view kind, std::string_view token,
                                      TimePoint now) const {
  auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::unexpected(unrecognized("malformed token"));
  std::string_view payload = token.substr(0, dot);
  auto mac = base64url_decode(token.substr(dot + 1));
  std::string expected = hmac_sha256_raw(secret_, std::string(kind) + "." + std::string(payload));
  if (!mac || !secure_equals(*mac, expected)) {
    return std::unexpected(unrecognized("the token is not valid"));
  }
  auto json = base64url_decode(payload);
  boost::system::error_code ec;
  bj::value claims = json ? bj::parse(*json, ec) : bj::value();
  if (!json || ec || !claims.is_object()) return std::unexpected(unrecognized("malformed token"));
  const bj::object& object = claims.as_object();
  Identity identity;
  auto text = [&](std::string_view key) {
    const bj::value* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
  };
  identity.account_id = text("a");
  identity.region = text("r");
  identity.access_key_id = text("k");
  const bj::value* anonymous = object.if_contains("n");
  identity.anonymous = anonymous != nullptr && anonymous->is_bool() && anonymous->as_bool();
  const bj::value* expiry = object.if_contains("e");
  if (expiry == nullptr || !expiry->is_int64())
    return std::unexpected(unrecognized("malformed token"));
  identity.expires_at = TimePoint(std::chrono::seconds(expiry->as_int64()));
  if (identity.expires_at <= now) {
    return fail(ErrorCode::kInvalidSignature, "the token has expired");
  }
  return identity;
}

AuthorizationToken RegistryAuth::issue_authorization_token(std::string_view account_id,
                                                           std::string_view region,
                                                           std::string_view access_key_id,
                                                           TimePoint now) const {
  Identity identity{
      false, std::string(account_id), std::string(region), std::string(access_key_id),
      std::chrono::time_point_cast<std::chrono::seconds>(now + kAuthorizationTokenLifetime)};
  std::string password = sign(kPasswordKind, identity);
  return {base64_encode("AWS:" + password), identity.expires_at};
}

Result<Identity> RegistryAuth::verify_basic(std::string_view authorization_value,
                                            TimePoint now) const {
  auto credentials = credentials_of(authorization_value, "Basic");
  if (!credentials) return std::unexpected(unrecognized("expected Basic credentials"));
  auto decoded = base64_decode(*credentials);
  if (!decoded) return std::unexpected(unrecognized("malformed Basic credentials"));
  auto colon = decoded->find(':');
  if (colon == std::string::npos || decoded->substr(0, colon) != "AWS") {
    return std::unexpected(unrecognized("the user name must be AWS"));
  }
  return verify(kPasswordKind, std::string_view(*decoded).substr(colon + 1), now);
}

BearerToken RegistryAuth::issue_bearer(const Identity& identity, TimePoint now) const {
  Identity bearer = identity;
  if (bearer.anonymous) {
    bearer.region = default_region_;
    bearer.expires_at =
        std::chrono::time_point_cast<std::chrono::seconds>(now + kAnonymousTokenLifetime);
  }
  auto expires_in = std::chrono::duration_cast<std::chrono::seconds>(bearer.expires_at - now);
  return {sign(kBearerKind, bearer), expires_in, now};
}

Result<Identity> RegistryAuth::verify_bearer(std::string_view authorization_value,
                                             TimePoint now) const {
  auto credentials = credentials_of(authorization_value, "Bearer");
  if (!credentials) return std::unexpected(unrecognized("expected Bearer credentials"));
  return verify(kBearerKind, *credentials, now);
}

Result<Identity> RegistryAuth::authenticate(std::string_view authorization_value,
                                            TimePoint now) const {
  if (authorization_value.empty()) return anonymous(now);
  {
    std::lock_guard lock(verified_mutex_);
    if (auto known = verified_.find(authorization_value); known != verified_.end()) {
      if (now < known->second.expires_at) return known->second;
      verified_.erase(known);  // expired: verified again below, for the right error
    }
  }
  Result<Identity> identity = credentials_of(authorization_value, "Bearer")
                                  ? verify_bearer(authorization_value, now)
                                  : verify_basic(authorization_value, now);
  if (identity) {
    // Full: the expired entries go, else one entry; never everyone's at once.
    constexpr std::size_t kMaxVerified = 1024;
    std::lock_guard lock(verified_mutex_);
    if (verified_.size() >= kMaxVerified) {
      std::erase_if(verified_, [&](const auto& entry) { return entry.second.expires_at <= now; });
    }
    if (verified_.size() >= kMaxVerified) verified_.erase(verified_.begin());
    verified_.emplace(std::string(authorization_value), *identity);
  }
  return identity;
}

Identity RegistryAuth::anonymous(TimePoint now) const {
  return Identity{true, "", default_region_, "", now + kAnonymousTokenLifetime};
}

Result<std::string> load_or_create_secret(const std::string& data_dir) {
  fs::path path = fs::path(data_dir) / "registry.key";
  if (fs::exists(path)) {
    std::ifstream in(path);
    std::stringstream contents;
    contents << in.rdbuf();
    if (!in || contents.str().empty()) {
      return fail(ErrorCode::kInternal, "reading " + path.string() + ": " + std::strerror(errno));
    }
    return contents.str();
  }
  std::string secret = to_hex(random_bytes(32));
  if (auto status = write_private_file(path, secret); !status) {
    return std::unexpected(status.error());
  }
  return secret;
}

bool policy_allows_anonymous_pull(std::string_view policy_text) {
  boost::system::error_code ec;
  bj::value policy = bj::parse(policy_text, ec);
  if (ec || !policy.is_object()) return false;
  const bj::value* statements = policy.as_object().if_contains("Statement");
  if (statements == nullptr) return false;
  std::vector<const bj::object*> list;
  if (statements->is_object()) list.push_back(&statements->as_object());
  if (statements->is_array()) {
    for (const auto& statement : statements->as_array()) {
      if (statement.is_object()) list.push_back(&statement.as_object());
    }
  }
  bool allowed = false;
  for (const bj::object* statement : list) {
    const bj::value* effect = statement->if_contains("Effect");
    if (effect == nullptr || !effect->is_string()) continue;
    bool everyone = applies_to_everyone(statement->if_contains("Principal"));
    bool pull = covers_pull(statement->if_contains("Action"));
    if (effect->as_string() == "Deny" && (everyone || statement->contains("NotPrincipal")) &&
        (pull || statement->contains("NotAction"))) {
      return false;  // a deny that might cover anonymous pulls wins
    }
    if (effect->as_string() == "Allow" && everyone && pull && !statement->contains("Condition")) {
      allowed = true;
    }
  }
  return allowed;
}

}  // namespace wharf::registry
