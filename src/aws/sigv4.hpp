// AWS Signature Version 4: canonicalisation, signing and verification of incoming requests.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::aws {

// What SigV4 needs of an HTTP request, independent of the HTTP library.
struct SignableRequest {
  std::string method;  // "POST"
  std::string target;  // raw request target: path plus optional "?query", as received
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case, may repeat
  std::string_view payload;                                  // the body bytes
  // The body is not in `payload` (it streams to disk as it arrives): verify() signs a declared
  // X-Amz-Content-Sha256 as given and leaves comparing it with the body to the caller.
  bool payload_streamed = false;
};

// The parsed "Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
struct Authorization {
  std::string access_key_id;
  std::string date;  // yyyymmdd from the credential scope
  std::string region;
  std::string service;                      // "ecs", "ecr", ...
  std::vector<std::string> signed_headers;  // lower case, in the order given
  std::string signature;                    // 64 lower-case hex characters
};

Result<Authorization> parse_authorization(std::string_view header);

// The canonical request as AWS defines it. Path segments are normalised and URI-encoded once
// more, except for `service` "s3", whose path is signed exactly as sent (as botocore's
// S3SigV4Auth does); query parameters sorted by encoded name then value, header values trimmed
// with inner runs of spaces collapsed.
std::string canonical_request(const SignableRequest& request,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash, std::string_view service = {});
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);
// "20150830/us-east-1/iam/aws4_request"
std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service);
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);
// Hex signature of a string to sign.
std::string signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// Signs a request as a client would: sets X-Amz-Date (replacing any), signs every header present
// (Host must already be among them) and adds Authorization (replacing any). An
// X-Amz-Content-Sha256 header the caller set (say UNSIGNED-PAYLOAD) is signed as the payload hash;
// without one the body is hashed. For service "s3" the path is signed as sent, and an
// X-Amz-Content-Sha256 header (the body's hash) is added when absent, as S3 requires one. Used by
// Wharf's own clients (agents, `wharf image import`) and tests.
void sign_request(SignableRequest& request, std::string_view access_key_id, std::string_view secret,
                  std::string_view region, std::string_view service, TimePoint now);

// Looks up the secret for an access key id; nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

struct VerifiedCaller {
  std::string access_key_id;
  std::string region;
  std::string service;
};

// Checks a request end to end. Errors carry AWS's codes and messages:
//  - no Authorization header → kMissingAuthentication ("Missing Authentication Token")
//  - malformed header, X-Amz-Date / Date missing or unparsable, or a signed header absent from
//    the request → kIncompleteSignature
//  - unknown key → kUnrecognizedClient ("The security token included in the request is invalid.")
//  - X-Amz-Date more than `max_skew` away from now → kInvalidSignature, as AWS words it:
//    "Signature expired: 20150830T123600Z is now earlier than 20150830T125100Z (20150830T130600Z -
//    15 min.)" or, when in the future, "Signature not yet current: 20150830T130600Z is still later
//    than 20150830T125100Z (20150830T123600Z + 15 min.)"
//  - scope date differs from X-Amz-Date's date, or signature mismatch → kInvalidSignature with
//    "The request signature we calculated does not match the signature you provided. Check your
//     AWS Secret Access Key and signing method. Consult the service documentation for details."
//  - host header not signed → kInvalidSignature
//    ("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
// The payload hash is X-Amz-Content-Sha256 when present, otherwise the SHA-256 of the payload.
// A declared hash must be UNSIGNED-PAYLOAD or the body's real hash (else kInvalidSignature), so
// a swapped body cannot ride on a signed header (unless payload_streamed). The credential scope's
// service decides the canonicalisation (see canonical_request).
Result<VerifiedCaller> verify(const SignableRequest& request, const SecretLookup& lookup,
                              TimePoint now,
                              std::chrono::seconds max_skew = std::chrono::minutes(15));

// A presigned URL's query is missing a parameter or holds a malformed one: kIncompleteSignature
// with the wire type "AuthorizationQueryParametersError", as S3 answers.
std::unexpected<Error> query_parameters_error(std::string message);

// Checks a presigned request (S3's query-string authentication, as `aws s3 presign` and boto3's
// generate_presigned_url make them): X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
// X-Amz-Expires (1 to 604800 seconds), X-Amz-SignedHeaders and X-Amz-Signature in the query.
// The canonical query is the request's without X-Amz-Signature, and the payload is
// UNSIGNED-PAYLOAD. Errors:
//  - a parameter missing or malformed, or X-Amz-Expires out of range → kIncompleteSignature with
//    the wire type "AuthorizationQueryParametersError"
//  - past X-Amz-Date + X-Amz-Expires → kAccessDenied ("Request has expired"), and more than
//    `max_skew` before X-Amz-Date → kAccessDenied ("Request is not valid yet")
//  - unknown key → kUnrecognizedClient; signature mismatch → kInvalidSignature
Result<VerifiedCaller> verify_presigned(const SignableRequest& request, const SecretLookup& lookup,
                                        TimePoint now,
                                        std::chrono::seconds max_skew = std::chrono::minutes(15));

}  // namespace wharf::aws
