// Signature Version 2 presigned URLs: the string to sign and the checks (the signature below was
// computed independently, with Python's hmac module, over the documented string to sign).
#include "s3/query_auth_v2.hpp"

#include <gtest/gtest.h>

namespace wharf::s3 {
namespace {

using Params = std::map<std::string, std::string, std::less<>>;

constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::optional<std::string> known_key(std::string_view key_id) {
  if (key_id != "AKIAIOSFODNN7EXAMPLE") return std::nullopt;
  return std::string(kSecret);
}

TimePoint at(std::int64_t epoch_seconds) {
  return TimePoint{} + std::chrono::seconds(epoch_seconds);
}

TEST(QueryAuthV2, StringToSignHasTheSignedSubresourcesOnly) {
  Params query{{"uploadId", "abc"},
               {"partNumber", "2"},
               {"Signature", "x"},
               {"prefix", "p"},
               {"uploads", ""}};
  Params headers{
      {"content-type", "text/plain"}, {"x-amz-meta-b", "2"}, {"x-amz-meta-a", "1"}, {"host", "h"}};
  EXPECT_EQ(v2_string_to_sign({"PUT", "/b/a%20key", query, headers}, "1700000000"),
            "PUT\n\ntext/plain\n1700000000\nx-amz-meta-a:1\nx-amz-meta-b:2\n"
            "/b/a%20key?partNumber=2&uploadId=abc&uploads");
}

TEST(QueryAuthV2, AcceptsAValidSignatureUntilItExpires) {
  Params query{{"AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"},
               {"Expires", "1141889120"},
               {"Signature", "fScKGHCDI0NY5E7CYp9Vc8VKMbY="}};
  Params headers;
  V2Request request{"GET", "/johnsmith/photos/puppy.jpg", query, headers};
  auto caller = verify_query_v2(request, known_key, at(1141889000));
  ASSERT_TRUE(caller) << caller.error().message;
  EXPECT_EQ(*caller, "AKIAIOSFODNN7EXAMPLE");

  auto expired = verify_query_v2(request, known_key, at(1141889121));
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().wire_type, "AccessDenied");
  EXPECT_EQ(expired.error().message, "Request has expired");

  V2Request other_path{"GET", "/johnsmith/photos/kitten.jpg", query, headers};
  auto mismatch = verify_query_v2(other_path, known_key, at(1141889000));
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidSignature);
}

TEST(QueryAuthV2, RefusesMissingParametersAndUnknownKeys) {
  Params headers;
  Params no_signature{{"AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"}, {"Expires", "1141889120"}};
  auto missing = verify_query_v2({"GET", "/b/k", no_signature, headers}, known_key, at(0));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().wire_type, "AuthorizationQueryParametersError");

  Params bad_expiry{
      {"AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"}, {"Expires", "soon"}, {"Signature", "x"}};
  auto malformed = verify_query_v2({"GET", "/b/k", bad_expiry, headers}, known_key, at(0));
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().wire_type, "AuthorizationQueryParametersError");

  Params stranger{{"AWSAccessKeyId", "AKIANOBODY"}, {"Expires", "1141889120"}, {"Signature", "x"}};
  auto unknown = verify_query_v2({"GET", "/b/k", stranger, headers}, known_key, at(0));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnrecognizedClient);
}

}  // namespace
}  // namespace wharf::s3
