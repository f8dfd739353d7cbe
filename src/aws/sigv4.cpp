// AWS Signature Version 4: builds canonical requests, derives keys, signs and verifies requests.
#include "aws/sigv4.hpp"

#include <unordered_map>

#include <algorithm>
#include <ctime>
#include <map>
#include <string>

#include "common/crypto.hpp"
#include "common/text.hpp"

namespace wharf::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::string_view kMismatchMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::string_view kUnknownKeyMessage =
    "The security token included in the request is invalid.";
constexpr std::string_view kHostNotSignedMessage =
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";
constexpr std::string_view kContentHashMismatchMessage =
    "The provided 'x-amz-content-sha256' header does not match what was computed.";

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

std::string join(const std::vector<std::string>& parts, char separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

std::optional<std::string_view> find_header(const SignableRequest& request, std::string_view name) {
  for (const auto& [header_name, value] : request.headers) {
    if (iequals(header_name, name)) return value;
  }
  return std::nullopt;
}

void erase_header(SignableRequest& request, std::string_view name) {
  std::erase_if(request.headers,
                [name](const auto& header) { return iequals(header.first, name); });
}

std::optional<std::string> first_absent_header(const SignableRequest& request,
                                               const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (!find_header(request, name)) return name;
  }
  return std::nullopt;
}

// Absolute-form targets ("https://host/path?query") carry the host in the URI; only the path and
// query take part in the canonical request.
std::string_view origin_form(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!target.starts_with(scheme)) continue;
    auto rest = target.substr(scheme.size());
    auto path_start = rest.find_first_of("/?");
    return path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  }
  return target;
}

// The path exactly as received is encoded once more: on the wire it is already percent-encoded,
// so this is the "double encoding" every service but S3 applies. The aws-sig-v4-test-suite feeds
// raw bytes (spaces, UTF-8) and expects them encoded once, which is the same rule.
std::string canonical_uri(std::string_view path) {
  std::vector<std::string_view> segments;
  for (auto segment : split(path, '/')) {
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    if (segment.empty() || segment == ".") continue;
    segments.push_back(segment);
  }
  if (segments.empty()) return "/";
  std::string out;
  for (auto segment : segments) {
    out += '/';
    out += uri_encode(segment);
  }
  if (path.ends_with('/')) out += '/';
  return out;
}

// S3 signs the path exactly as it travels: no normalisation, no second encoding.
std::string canonical_uri(std::string_view path, std::string_view service) {
  if (service != "s3") return canonical_uri(path);
  return path.empty() ? std::string("/") : std::string(path);
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (auto param : split(query, '&')) {
    if (param.empty()) continue;
    auto equals = param.find('=');
    auto name = param.substr(0, equals);
    auto value = equals == std::string_view::npos ? std::string_view{} : param.substr(equals + 1);
    params.emplace_back(uri_encode(uri_decode(name)), uri_encode(uri_decode(value)));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

// Trims the value and collapses each inner run of blanks to one space.
std::string canonical_header_value(std::string_view value) {
  std::string out;
  bool blank_pending = false;
  for (char c : value) {
    if (is_blank(c)) {
      blank_pending = !out.empty();
      continue;
    }
    if (blank_pending) out += ' ';
    blank_pending = false;
    out += c;
  }
  return out;
}

// Repeated headers are signed as one, their values joined by commas in the order received.
std::string joined_header_values(const SignableRequest& request, std::string_view name) {
  std::string out;
  bool first = true;
  for (const auto& [header_name, value] : request.headers) {
    if (!iequals(header_name, name)) continue;
    if (!first) out += ',';
    out += canonical_header_value(value);
    first = false;
  }
  return out;
}

std::vector<std::string> sorted_header_names(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const auto& name : names) out.push_back(lower(trim(name)));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct RequestTime {
  TimePoint time;
  std::string amz_date;  // the form that goes into the string to sign
};

Result<RequestTime> request_time(const SignableRequest& request, std::string_view authorization) {
  auto header = find_header(request, "x-amz-date");
  if (!header) header = find_header(request, "date");
  if (!header) {
    return fail(ErrorCode::kIncompleteSignature,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header. Authorization=" +
                    std::string(authorization));
  }
  std::string text(trim(*header));
  TimePoint time;
  if (parse_amz_date(text, time)) return RequestTime{time, text};
  // AWS accepts the HTTP Date header when X-Amz-Date is absent.
  if (auto date = parse_http_date(text)) return RequestTime{*date, amz_date(*date)};
  return fail(ErrorCode::kIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '" +
                                                   text +
                                                   "'. See http://en.wikipedia.org/wiki/ISO_8601");
}

Status check_skew(const RequestTime& signed_at, TimePoint now, std::chrono::seconds max_skew) {
  auto now_seconds = std::chrono::floor<std::chrono::seconds>(now);
  auto minutes = std::to_string(std::chrono::duration_cast<std::chrono::minutes>(max_skew).count());
  if (signed_at.time < now_seconds - max_skew) {
    return fail(ErrorCode::kInvalidSignature,
                "Signature expired: " + signed_at.amz_date + " is now earlier than " +
                    amz_date(now_seconds - max_skew) + " (" + amz_date(now_seconds) + " - " +
                    minutes + " min.)");
  }
  if (signed_at.time > now_seconds + max_skew) {
    return fail(ErrorCode::kInvalidSignature,
                "Signature not yet current: " + signed_at.amz_date + " is still later than " +
                    amz_date(now_seconds + max_skew) + " (" + amz_date(now_seconds) + " + " +
                    minutes + " min.)");
  }
  return {};
}

// What the client declared in X-Amz-Content-Sha256, or the body's own hash. A declared hash is
// signed in place of the body, so it has to match the body or a swapped body would still verify.
Result<std::string> payload_hash(const SignableRequest& request) {
  auto declared = find_header(request, "x-amz-content-sha256");
  if (!declared) return sha256_hex(request.payload);
  std::string value(trim(*declared));
  if (value == kUnsignedPayload || request.payload_streamed) return value;
  auto computed = sha256_hex(request.payload);
  if (lower(value) != computed) {
    return fail(ErrorCode::kInvalidSignature, std::string(kContentHashMismatchMessage));
  }
  return value;
}

std::string declared_or_computed_payload_hash(const SignableRequest& request) {
  auto declared = find_header(request, "x-amz-content-sha256");
  if (declared) return std::string(trim(*declared));
  return sha256_hex(request.payload);
}

Result<Authorization> parse_credential(std::string_view credential, Authorization auth) {
  auto parts = split(credential, '/');
  bool has_empty = std::any_of(parts.begin(), parts.end(), [](auto part) { return part.empty(); });
  if (parts.size() != 5 || has_empty) {
    return fail(ErrorCode::kIncompleteSignature,
                "Credential must have the form <AccessKeyId>/<yyyymmdd>/<region>/<service>/"
                "aws4_request, not '" +
                    std::string(credential) + "'.");
  }
  if (parts[4] != kTerminator) {
    return fail(ErrorCode::kIncompleteSignature,
                "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                    std::string(parts[4]) + "'.");
  }
  auth.access_key_id = parts[0];
  auth.date = parts[1];
  auth.region = parts[2];
  auth.service = parts[3];
  return auth;
}

}  // namespace

Result<Authorization> parse_authorization(std::string_view header) {
  auto text = trim(header);
  auto space = text.find(' ');
  auto scheme = text.substr(0, space);
  auto params = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);

  // Anything but SigV4 (a SigV2 "AWS key:sig", a bearer token) lacks every SigV4 parameter,
  // which is how AWS reports it too.
  std::optional<std::string_view> credential;
  std::optional<std::string_view> signed_headers;
  std::optional<std::string_view> signature_hex;
  if (scheme == kAlgorithm) {
    for (auto param : split(params, ',')) {
      param = trim(param);
      if (param.empty()) continue;
      auto equals = param.find('=');
      if (equals == std::string_view::npos) {
        return fail(ErrorCode::kIncompleteSignature,
                    "'" + std::string(param) +
                        "' not a valid key=value pair (missing equal-sign) in Authorization "
                        "header: '" +
                        std::string(header) + "'.");
      }
      auto key = trim(param.substr(0, equals));
      auto value = trim(param.substr(equals + 1));
      if (key == "Credential") credential = value;
      if (key == "SignedHeaders") signed_headers = value;
      if (key == "Signature") signature_hex = value;
    }
  }

  std::string missing;
  if (!credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!signature_hex) missing += "Authorization header requires 'Signature' parameter. ";
  if (!signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!missing.empty()) {
    return fail(ErrorCode::kIncompleteSignature, missing + "Authorization=" + std::string(header));
  }

  Authorization auth;
  auth.signature = *signature_hex;
  if (!signed_headers->empty()) {
    for (auto name : split(*signed_headers, ';')) {
      if (name.empty()) {
        return fail(ErrorCode::kIncompleteSignature, "SignedHeaders has an empty header name: '" +
                                                         std::string(*signed_headers) + "'.");
      }
      auth.signed_headers.push_back(lower(name));
    }
  }
  return parse_credential(*credential, std::move(auth));
}

std::string canonical_request(const SignableRequest& request,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash, std::string_view service) {
  auto target = origin_form(request.target);
  auto question = target.find('?');
  auto path = target.substr(0, question);
  auto query =
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  auto names = sorted_header_names(signed_headers);

  std::string out;
  out += request.method;
  out += '\n';
  out += canonical_uri(path, service);
  out += '\n';
  out += canonical_query(query);
  out += '\n';
  for (const auto& name : names) {
    out += name;
    out += ':';
    out += joined_header_values(request, name);
    out += '\n';
  }
  out += '\n';
  out += join(names, ';');
  out += '\n';
  out += payload_hash;
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out += '\n';
  out += amz_date;
  out += '\n';
  out += scope;
  out += '\n';
  out += sha256_hex(canonical_request);
  return out;
}

std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service) {
  std::string out(date);
  out += '/';
  out += region;
  out += '/';
  out += service;
  out += '/';
  out += kTerminator;
  return out;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  auto date_key = hmac_sha256_raw("AWS4" + std::string(secret), date);
  auto region_key = hmac_sha256_raw(date_key, region);
  auto service_key = hmac_sha256_raw(region_key, service);
  return hmac_sha256_raw(service_key, kTerminator);
}

namespace {

// The signing key changes only per secret, day, region and service, yet deriving it costs four
// HMACs; each thread keeps the few it has seen recently.
const std::string& cached_signing_key(std::string_view secret, std::string_view date,
                                      std::string_view region, std::string_view service) {
  constexpr std::size_t kMaxCached = 64;
  thread_local std::unordered_map<std::string, std::string> cache;
  std::string id;
  id.reserve(secret.size() + date.size() + region.size() + service.size() + 3);
  id.append(secret)
      .append(1, '\n')
      .append(date)
      .append(1, '\n')
      .append(region)
      .append(1, '\n')
      .append(service);
  if (auto found = cache.find(id); found != cache.end()) return found->second;
  if (cache.size() >= kMaxCached) cache.clear();
  return cache.emplace(std::move(id), signing_key(secret, date, region, service)).first->second;
}

}  // namespace

std::string signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
  return to_hex(hmac_sha256_raw(cached_signing_key(secret, date, region, service), string_to_sign));
}

void sign_request(SignableRequest& request, std::string_view access_key_id, std::string_view secret,
                  std::string_view region, std::string_view service, TimePoint now) {
  // Re-signing must not sign a stale Authorization or leave two dates behind.
  erase_header(request, "authorization");
  erase_header(request, "x-amz-date");
  auto timestamp = amz_date(now);
  request.headers.emplace_back("X-Amz-Date", timestamp);
  if (service == "s3" && !find_header(request, "x-amz-content-sha256")) {
    request.headers.emplace_back("X-Amz-Content-Sha256", sha256_hex(request.payload));
  }

  std::vector<std::string> names;
  for (const auto& header : request.headers) names.push_back(header.first);
  names = sorted_header_names(names);

  auto date = timestamp.substr(0, 8);
  auto scope = credential_scope(date, region, service);
  auto request_text =
      canonical_request(request, names, declared_or_computed_payload_hash(request), service);
  auto signature_hex =
      signature(secret, date, region, service, string_to_sign(timestamp, scope, request_text));
  request.headers.emplace_back(
      "Authorization", std::string(kAlgorithm) + " Credential=" + std::string(access_key_id) + "/" +
                           scope + ", SignedHeaders=" + join(names, ';') +
                           ", Signature=" + signature_hex);
}

namespace {

// The last step of both forms: `auth`'s signature must be the one `secret` makes for `request`.
Result<VerifiedCaller> signed_by(std::string_view secret, const SignableRequest& request,
                                 const Authorization& auth, std::string_view amz_date,
                                 std::string_view payload_hash) {
  auto scope = credential_scope(auth.date, auth.region, auth.service);
  auto expected = signature(
      secret, auth.date, auth.region, auth.service,
      string_to_sign(amz_date, scope,
                     canonical_request(request, auth.signed_headers, payload_hash, auth.service)));
  if (!secure_equals(expected, auth.signature)) {
    return fail(ErrorCode::kInvalidSignature, std::string(kMismatchMessage));
  }
  return VerifiedCaller{auth.access_key_id, auth.region, auth.service};
}

}  // namespace

Result<VerifiedCaller> verify(const SignableRequest& request, const SecretLookup& lookup,
                              TimePoint now, std::chrono::seconds max_skew) {
  auto header = find_header(request, "authorization");
  if (!header) return fail(ErrorCode::kMissingAuthentication, "Missing Authentication Token");
  auto auth = parse_authorization(*header);
  if (!auth) return std::unexpected(auth.error());
  auto signed_at = request_time(request, *header);
  if (!signed_at) return std::unexpected(signed_at.error());
  if (std::find(auth->signed_headers.begin(), auth->signed_headers.end(), "host") ==
      auth->signed_headers.end()) {
    return fail(ErrorCode::kInvalidSignature, std::string(kHostNotSignedMessage));
  }
  // Stale or replayed requests are turned away before the secret store is consulted.
  if (auto fresh = check_skew(*signed_at, now, max_skew); !fresh) {
    return std::unexpected(fresh.error());
  }

  auto secret = lookup(auth->access_key_id);
  if (!secret) return fail(ErrorCode::kUnrecognizedClient, std::string(kUnknownKeyMessage));
  if (auth->date != std::string_view(signed_at->amz_date).substr(0, 8)) {
    return fail(ErrorCode::kInvalidSignature, std::string(kMismatchMessage));
  }
  if (auto absent = first_absent_header(request, auth->signed_headers)) {
    return fail(ErrorCode::kIncompleteSignature,
                "Signed header '" + *absent + "' is not present in the request.");
  }
  auto body_hash = payload_hash(request);
  if (!body_hash) return std::unexpected(body_hash.error());
  return signed_by(*secret, request, *auth, signed_at->amz_date, *body_hash);
}

namespace {

constexpr std::int64_t kMaxPresignedExpiry = 604800;  // a week, S3's limit

// The query's parameters, decoded, and the query without X-Amz-Signature (still encoded).
struct PresignedQuery {
  std::map<std::string, std::string, std::less<>> params;
  std::string unsigned_query;
};

PresignedQuery read_presigned_query(std::string_view query) {
  PresignedQuery out;
  for (auto param : split(query, '&')) {
    if (param.empty()) continue;
    auto equals = param.find('=');
    std::string name = uri_decode(param.substr(0, equals));
    std::string value =
        equals == std::string_view::npos ? std::string() : uri_decode(param.substr(equals + 1));
    if (name == "X-Amz-Signature") {
      out.params.emplace(std::move(name), std::move(value));
      continue;
    }
    if (!out.unsigned_query.empty()) out.unsigned_query += '&';
    out.unsigned_query += param;
    out.params.emplace(std::move(name), std::move(value));
  }
  return out;
}

}  // namespace

std::unexpected<Error> query_parameters_error(std::string message) {
  return fail_as(ErrorCode::kIncompleteSignature, "AuthorizationQueryParametersError",
                 std::move(message));
}

Result<VerifiedCaller> verify_presigned(const SignableRequest& request, const SecretLookup& lookup,
                                        TimePoint now, std::chrono::seconds max_skew) {
  auto target = origin_form(request.target);
  auto question = target.find('?');
  auto path = target.substr(0, question);
  auto query = read_presigned_query(
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1));
  auto param = [&](std::string_view name) -> std::optional<std::string> {
    auto found = query.params.find(name);
    if (found == query.params.end()) return std::nullopt;
    return found->second;
  };
  std::string missing;
  for (std::string_view name : {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}) {
    if (!param(name)) missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  if (!missing.empty()) {
    return query_parameters_error("Query-string authentication requires the " + missing +
                                  " parameters.");
  }
  if (*param("X-Amz-Algorithm") != kAlgorithm) {
    return query_parameters_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  }
  std::string expires_text = *param("X-Amz-Expires");
  auto expires = parse_decimal<std::int64_t>(expires_text);
  if (!expires || *expires < 1 || *expires > kMaxPresignedExpiry) {
    return query_parameters_error(
        "X-Amz-Expires must be a number of seconds from 1 to 604800 (a week), not '" +
        expires_text + "'.");
  }
  std::string amz = *param("X-Amz-Date");
  TimePoint signed_at;
  if (!parse_amz_date(amz, signed_at)) {
    return query_parameters_error(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  }
  Authorization auth;
  auth.signature = *param("X-Amz-Signature");
  std::string signed_headers = *param("X-Amz-SignedHeaders");
  for (auto name : split(signed_headers, ';')) {
    if (!name.empty()) auth.signed_headers.push_back(lower(name));
  }
  std::string credential = *param("X-Amz-Credential");
  auto parsed = parse_credential(credential, std::move(auth));
  if (!parsed) return query_parameters_error(parsed.error().message);
  if (std::find(parsed->signed_headers.begin(), parsed->signed_headers.end(), "host") ==
      parsed->signed_headers.end()) {
    return query_parameters_error("X-Amz-SignedHeaders must include host.");
  }
  if (now > signed_at + std::chrono::seconds(*expires)) {
    return fail_as(ErrorCode::kAccessDenied, "AccessDenied", "Request has expired");
  }
  if (signed_at > now + max_skew) {
    return fail_as(ErrorCode::kAccessDenied, "AccessDenied", "Request is not valid yet");
  }
  auto secret = lookup(parsed->access_key_id);
  if (!secret) return fail(ErrorCode::kUnrecognizedClient, std::string(kUnknownKeyMessage));
  if (parsed->date != std::string_view(amz).substr(0, 8)) {
    return fail(ErrorCode::kInvalidSignature, std::string(kMismatchMessage));
  }
  if (auto absent = first_absent_header(request, parsed->signed_headers)) {
    return query_parameters_error("Signed header '" + *absent + "' is not present in the request.");
  }
  SignableRequest unsigned_request{request.method, std::string(path), request.headers, {}};
  if (!query.unsigned_query.empty()) unsigned_request.target += "?" + query.unsigned_query;
  return signed_by(*secret, unsigned_request, *parsed, amz, kUnsignedPayload);
}

}  // namespace wharf::aws
