// PageTokens: base64url(payload) "." base64url(hmac(payload)).
#include "aws/paging.hpp"

#include <boost/json.hpp>

#include "common/crypto.hpp"

namespace wharf::aws {

namespace {
Error bad_token(const PageMembers& members = {}) {
  std::string name(members.next_token);
  return Error{ErrorCode::kInvalidParameter,
               "Invalid " + name + ": pass the " + name +
                   " returned by the previous call of the same operation with the same filters, "
                   "within 24 hours.",
               std::string(members.bad_token_type)};
}
}  // namespace

std::string PageTokens::issue(std::string_view scope, std::string_view last_key,
                              TimePoint now) const {
  boost::json::object payload;
  payload["s"] = scope;
  payload["k"] = last_key;
  payload["t"] = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::string body = boost::json::serialize(payload);
  return base64url_encode(body) + "." + base64url_encode(hmac_sha256_raw(secret_, body));
}

Result<std::string> PageTokens::redeem(std::string_view scope, std::string_view token,
                                       TimePoint now) const {
  auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::unexpected(bad_token());
  auto body = base64url_decode(token.substr(0, dot));
  auto mac = base64url_decode(token.substr(dot + 1));
  if (!body || !mac || !secure_equals(*mac, hmac_sha256_raw(secret_, *body))) {
    return std::unexpected(bad_token());
  }
  boost::system::error_code ec;
  auto payload = boost::json::parse(*body, ec);
  if (ec || !payload.is_object()) return std::unexpected(bad_token());
  const auto& object = payload.as_object();
  const auto* token_scope = object.if_contains("s");
  const auto* key = object.if_contains("k");
  const auto* issued = object.if_contains("t");
  if (!token_scope || !token_scope->is_string() || token_scope->as_string() != scope || !key ||
      !key->is_string() || !issued || !issued->is_int64()) {
    return std::unexpected(bad_token());
  }
  auto issued_at = TimePoint(std::chrono::seconds(issued->as_int64()));
  if (now - issued_at > lifetime_ || issued_at - now > std::chrono::minutes(15)) {
    return std::unexpected(bad_token());
  }
  return std::string(key->as_string());
}

Result<PageRequest> read_page_request(const PageTokens& tokens, TimePoint now,
                                      const boost::json::object& input, std::string_view scope,
                                      int default_max, int limit, PageMembers members) {
  PageRequest page;
  page.max_results = default_max;
  if (const auto* max = input.if_contains(members.max_results); max && !max->is_null()) {
    if (!max->is_int64() || max->as_int64() < 1 || max->as_int64() > limit) {
      return fail(ErrorCode::kInvalidParameter, std::string(members.max_results) +
                                                    " must be an integer from 1 to " +
                                                    std::to_string(limit) + ".");
    }
    page.max_results = static_cast<int>(max->as_int64());
  }
  if (const auto* token = input.if_contains(members.next_token); token && !token->is_null()) {
    if (!token->is_string()) return std::unexpected(bad_token(members));
    auto after = tokens.redeem(scope, token->as_string(), now);
    if (!after) return std::unexpected(bad_token(members));
    page.after = std::move(*after);
  }
  return page;
}

}  // namespace wharf::aws
