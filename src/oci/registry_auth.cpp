// Registry auth negotiation: WWW-Authenticate challenges, token requests and the token cache.
#include "oci/registry_auth.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <sstream>
#include <vector>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "oci/registry_error.hpp"

namespace wharf::oci {
namespace {

constexpr std::size_t kMaxTokenAnswer = 64 << 10;
constexpr auto kDefaultTokenLifetime = std::chrono::seconds(60);
constexpr auto kTokenRenewalMargin = std::chrono::seconds(10);

std::unexpected<Error> with_context(Error error, std::string_view doing) {
  return std::unexpected(std::move(error).context(doing));
}

}  // namespace

RegistryAuth::RegistryAuth(HttpTransport& transport, std::optional<RegistryCredentials> credentials,
                           const Clock& clock)
    : transport_(transport), credentials_(std::move(credentials)), clock_(clock) {}

void RegistryAuth::learn(std::string_view registry, const HttpResponse& unauthorized) {
  auto header = find_header(unauthorized.headers, "WWW-Authenticate");
  if (!header) return;
  auto challenges = parse_www_authenticate(*header);
  if (!challenges) return;
  for (const auto& challenge : *challenges) {
    if (challenge.scheme != "bearer") continue;
    std::lock_guard lock(mutex_);
    bearer_challenges_[std::string(registry)] = challenge;
  }
}

std::string RegistryAuth::basic_header() const {
  return "Basic " + base64_encode(credentials_->username + ":" + credentials_->password);
}

// The Authorization header for `scope`: Basic once the registry asked for it, a cached token,
// or a fresh token when the registry's Bearer realm is already known.
Result<std::optional<std::string>> RegistryAuth::authorization(std::string_view registry,
                                                               const std::string& scope) {
  std::optional<Challenge> challenge;
  {
    std::lock_guard lock(mutex_);
    if (credentials_ && basic_registries_.contains(registry)) return basic_header();
    std::string key = std::string(registry) + " " + scope;
    if (auto token = tokens_.find(key);
        token != tokens_.end() && token->second.expires > clock_.now() + kTokenRenewalMargin) {
      return "Bearer " + token->second.value;
    }
    if (auto found = bearer_challenges_.find(registry); found != bearer_challenges_.end()) {
      challenge = found->second;
    }
  }
  if (!challenge || scope.empty()) return std::nullopt;
  auto token = obtain_token(registry, scope, *challenge);
  if (!token) return std::unexpected(std::move(token.error()));
  return "Bearer " + *token;
}

Result<std::string> RegistryAuth::obtain_token(std::string_view registry, const std::string& scope,
                                               const Challenge& challenge) {
  auto realm = challenge.param("realm");
  if (!realm) return fail(ErrorCode::kAccessDenied, "the Bearer challenge names no realm");
  std::string token_url = *realm;
  if (auto service = challenge.param("service")) {
    auto with_service = append_query(token_url, "service", *service);
    if (!with_service) return std::unexpected(with_service.error());
    token_url = *with_service;
  }
  std::vector<std::string> scopes;
  std::istringstream words(scope + " " + challenge.param("scope").value_or(""));
  for (std::string word; words >> word;) {
    if (std::find(scopes.begin(), scopes.end(), word) == scopes.end()) scopes.push_back(word);
  }
  for (const auto& one_scope : scopes) {
    auto with_scope = append_query(token_url, "scope", one_scope);
    if (!with_scope) return std::unexpected(with_scope.error());
    token_url = *with_scope;
  }
  HttpRequest request = make_request("GET", token_url, true);
  request.max_body = kMaxTokenAnswer;
  if (credentials_) request.headers.emplace_back("Authorization", basic_header());
  auto response = transport_.perform(request);
  std::string doing = "getting a token from " + *realm;
  if (!response) return with_context(std::move(response.error()), doing);
  if (response->status != 200) {
    Error refused = response_error(*response);
    refused.code = ErrorCode::kAccessDenied;
    return with_context(std::move(refused), doing);
  }
  boost::system::error_code parse_error;
  auto body = boost::json::parse(response->body, parse_error);
  if (parse_error || !body.is_object()) {
    return fail(ErrorCode::kAccessDenied, doing + ": the answer is not a JSON object");
  }
  const auto& object = body.as_object();
  auto value = json::get_string(object, "token");
  if (!value || value->empty()) value = json::get_string(object, "access_token");
  if (!value || value->empty()) {
    return fail(ErrorCode::kAccessDenied, doing + ": the answer holds no token");
  }
  auto lifetime = kDefaultTokenLifetime;
  if (auto expires_in = json::get_int(object, "expires_in"); expires_in && *expires_in > 0) {
    lifetime = std::chrono::seconds(*expires_in);
  }
  std::lock_guard lock(mutex_);
  tokens_[std::string(registry) + " " + scope] = Token{*value, clock_.now() + lifetime};
  return *value;
}

// After a 401: learns how the registry wants to be spoken to, and gets what it takes.
Status RegistryAuth::authenticate(std::string_view registry, const std::string& scope,
                                  const HttpResponse& unauthorized) {
  auto header = find_header(unauthorized.headers, "WWW-Authenticate");
  if (!header) {
    return with_context(response_error(unauthorized), "the registry refused without a challenge");
  }
  auto challenges = parse_www_authenticate(*header);
  if (!challenges) return std::unexpected(challenges.error());
  for (const auto& challenge : *challenges) {
    if (challenge.scheme != "bearer") continue;
    {
      std::lock_guard lock(mutex_);
      bearer_challenges_[std::string(registry)] = challenge;
    }
    auto token = obtain_token(registry, scope, challenge);
    if (!token) return std::unexpected(std::move(token.error()));
    return {};
  }
  for (const auto& challenge : *challenges) {
    if (challenge.scheme != "basic") continue;
    if (!credentials_) {
      return with_context(response_error(unauthorized),
                          "the registry wants a user name and password (HTTP Basic)");
    }
    std::lock_guard lock(mutex_);
    basic_registries_[std::string(registry)] = true;
    return {};
  }
  return fail(ErrorCode::kAccessDenied,
              "the registry asks for an unsupported auth scheme: " + *header);
}

Result<HttpResponse> RegistryAuth::send(std::string_view registry, const std::string& scope,
                                        HttpRequest request) {
  auto set_authorization = [&]() -> Status {
    auto header = authorization(registry, scope);
    if (!header) return std::unexpected(std::move(header.error()));
    std::erase_if(request.headers, [](const auto& h) { return h.first == "Authorization"; });
    if (*header) request.headers.emplace_back("Authorization", **header);
    return {};
  };
  if (auto set = set_authorization(); !set) return std::unexpected(std::move(set.error()));
  auto response = transport_.perform(request);
  if (!response || response->status != 401) return response;
  if (auto done = authenticate(registry, scope, *response); !done) {
    return std::unexpected(std::move(done.error()));
  }
  if (auto set = set_authorization(); !set) return std::unexpected(std::move(set.error()));
  auto retried = transport_.perform(request);
  if (retried && retried->status == 401) {
    Error refused = response_error(*retried);
    refused.message += credentials_ ? " (the credentials were refused)"
                                    : " (anonymous access; no credentials were given)";
    return std::unexpected(std::move(refused));
  }
  return retried;
}

}  // namespace wharf::oci
