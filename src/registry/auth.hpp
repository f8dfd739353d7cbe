// Registry credentials: the ECR authorization tokens (Basic "AWS:<password>"), the Bearer tokens
// of the /v2/token flow, and the repository-policy check for anonymous pulls. Tokens are
// self-contained and HMAC-signed with a secret kept in the data dir, so they are verified
// without any state and survive a restart.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::registry {

// What GetAuthorizationToken returns.
struct AuthorizationToken {
  std::string token;  // base64("AWS:" + password), for Authorization: Basic
  TimePoint expires_at;
};

// Who a /v2/ request comes from.
struct Identity {
  bool anonymous = true;
  std::string account_id;     // empty when anonymous
  std::string region;         // where the credentials were issued; the default when anonymous
  std::string access_key_id;  // empty when anonymous
  TimePoint expires_at;       // when the credentials stop working
};

struct BearerToken {
  std::string token;
  std::chrono::seconds expires_in{0};
  TimePoint issued_at;
};

class RegistryAuth {
 public:
  static constexpr std::chrono::hours kAuthorizationTokenLifetime{12};
  static constexpr std::chrono::hours kAnonymousTokenLifetime{1};

  // `secret`: the HMAC key (see load_or_create_secret); `default_region`: the region of
  // anonymous requests.
  RegistryAuth(std::string secret, std::string default_region)
      : secret_(std::move(secret)), default_region_(std::move(default_region)) {}

  // An ECR authorization token for the caller's access key, valid for 12 hours.
  AuthorizationToken issue_authorization_token(std::string_view account_id, std::string_view region,
                                               std::string_view access_key_id, TimePoint now) const;
  // Verifies "Basic base64(AWS:<password>)" credentials. kUnrecognizedClient when the user is
  // not AWS or the password is malformed or forged, kInvalidSignature when it has expired.
  Result<Identity> verify_basic(std::string_view authorization_value, TimePoint now) const;
  // A Bearer token for the identity (the /v2/token endpoint). It lives as long as the
  // identity's credentials (anonymous: 1 hour).
  BearerToken issue_bearer(const Identity& identity, TimePoint now) const;
  // Verifies "Bearer <token>", as verify_basic.
  Result<Identity> verify_bearer(std::string_view authorization_value, TimePoint now) const;
  // Either scheme, from an Authorization header value; an empty value is anonymous.
  Result<Identity> authenticate(std::string_view authorization_value, TimePoint now) const;

  const std::string& default_region() const { return default_region_; }
  Identity anonymous(TimePoint now) const;

 private:
  std::string sign(std::string_view kind, const Identity& identity) const;
  Result<Identity> verify(std::string_view kind, std::string_view token, TimePoint now) const;

  std::string secret_;
  std::string default_region_;
  struct TextHash {  // lets a string_view look up a std::string key
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  // Authorization values verified already, with whom they name: a client sends the same value
  // on every request, and verifying it (base64, HMAC) is a good part of a manifest GET. Tokens
  // cannot be revoked, so an entry stays right until its expiry, which is checked on use.
  mutable std::mutex verified_mutex_;
  mutable std::unordered_map<std::string, Identity, TextHash, std::equal_to<>> verified_;
};

// Reads DATA_DIR/registry.key, creating it (random, mode 0600, written atomically) when absent.
Result<std::string> load_or_create_secret(const std::string& data_dir);

// True when an IAM-style repository policy lets anyone pull: a Statement with Effect Allow,
// Principal "*" (or {"AWS": "*"}) and an Action covering ecr:BatchGetImage or
// ecr:GetDownloadUrlForLayer ("ecr:*", "*", wildcards), without Conditions, and no Deny for
// anyone that covers those actions. Malformed policies allow nothing.
bool policy_allows_anonymous_pull(std::string_view policy_text);

}  // namespace wharf::registry
