// Signature Version 2 presigned URLs.
#include "s3/query_auth_v2.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/crypto.hpp"
#include "common/text.hpp"

namespace wharf::s3 {

namespace {

// The sub-resources and response overrides that S3 (and botocore's HmacV1 signer) sign.
constexpr std::string_view kSignedParams[] = {"accelerate",
                                              "acl",
                                              "analytics",
                                              "cors",
                                              "delete",
                                              "inventory",
                                              "lifecycle",
                                              "location",
                                              "logging",
                                              "metrics",
                                              "notification",
                                              "object-lock",
                                              "partNumber",
                                              "policy",
                                              "replication",
                                              "requestPayment",
                                              "restore",
                                              "select",
                                              "select-type",
                                              "storageClass",
                                              "tagging",
                                              "torrent",
                                              "uploadId",
                                              "uploads",
                                              "versionId",
                                              "versioning",
                                              "versions",
                                              "website",
                                              "response-cache-control",
                                              "response-content-disposition",
                                              "response-content-encoding",
                                              "response-content-language",
                                              "response-content-type",
                                              "response-expires"};

std::string header_or_empty(const V2Request& request, std::string_view name) {
  auto found = request.headers.find(name);
  return found == request.headers.end() ? std::string() : found->second;
}

}  // namespace

std::string v2_string_to_sign(const V2Request& request, std::string_view expires) {
  std::string out(request.method);
  out += '\n';
  out += header_or_empty(request, "content-md5") + '\n';
  out += header_or_empty(request, "content-type") + '\n';
  out += std::string(expires) + '\n';
  for (const auto& [name, value] : request.headers) {  // the map keeps names sorted
    if (name.starts_with("x-amz-")) out += name + ':' + value + '\n';
  }
  out += request.path;
  std::vector<std::string> signed_params;
  for (const auto& [name, value] : request.query) {
    if (std::ranges::find(kSignedParams, name) == std::end(kSignedParams)) continue;
    signed_params.push_back(value.empty() ? name : name + '=' + value);
  }
  std::ranges::sort(signed_params);
  for (std::size_t param_idx = 0; param_idx < signed_params.size(); ++param_idx) {
    out += param_idx == 0 ? '?' : '&';
    out += signed_params[param_idx];
  }
  return out;
}

Result<std::string> verify_query_v2(const V2Request& request, const aws::SecretLookup& lookup,
                                    TimePoint now) {
  auto param = [&](std::string_view name) -> const std::string* {
    auto found = request.query.find(name);
    return found == request.query.end() ? nullptr : &found->second;
  };
  const std::string* key_id = param("AWSAccessKeyId");
  const std::string* expires = param("Expires");
  const std::string* signature = param("Signature");
  if (key_id == nullptr || expires == nullptr || signature == nullptr) {
    return aws::query_parameters_error(
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
        "parameters");
  }
  auto expires_at = parse_decimal<std::int64_t>(*expires);
  if (!expires_at) {
    return aws::query_parameters_error(
        "Expires must be a number of seconds since the epoch, not '" + *expires + "'.");
  }
  auto now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  if (now_seconds.count() > *expires_at) {
    return fail_as(ErrorCode::kAccessDenied, "AccessDenied", "Request has expired");
  }
  auto secret = lookup(*key_id);
  if (!secret) {
    return fail(ErrorCode::kUnrecognizedClient,
                "The AWS Access Key Id you provided does not exist in our records.");
  }
  std::string expected =
      base64_encode(hmac_sha1_raw(*secret, v2_string_to_sign(request, *expires)));
  if (!secure_equals(expected, *signature)) {
    return fail(ErrorCode::kInvalidSignature,
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.");
  }
  return *key_id;
}

}  // namespace wharf::s3
