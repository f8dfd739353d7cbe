// S3's legacy query-string authentication (Signature Version 2): the presigned URLs boto3 and
// the aws CLI still make for us-east-1 (?AWSAccessKeyId=…&Expires=…&Signature=…).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "aws/sigv4.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::s3 {

// What is signed: the method, the path exactly as sent ("/bucket/key%20name"), the query's
// parameters (decoded) and the request's headers (lower-case names).
struct V2Request {
  std::string_view method;
  std::string_view path;
  const std::map<std::string, std::string, std::less<>>& query;
  const std::map<std::string, std::string, std::less<>>& headers;
};

// S3's string to sign: method, Content-MD5, Content-Type and Expires lines, the x-amz-*
// headers, and the path with the sub-resources S3 signs (?uploadId=…&partNumber=…).
std::string v2_string_to_sign(const V2Request& request, std::string_view expires);

// Checks a V2 presigned request: the key's HMAC-SHA1 of the string to sign, base64, must be the
// Signature, and now must not be past Expires (epoch seconds). Errors: a missing or malformed
// parameter → AuthorizationQueryParametersError; expired → AccessDenied ("Request has
// expired"); unknown key → kUnrecognizedClient; mismatch → kInvalidSignature. Returns the key id.
Result<std::string> verify_query_v2(const V2Request& request, const aws::SecretLookup& lookup,
                                    TimePoint now);

}  // namespace wharf::s3
