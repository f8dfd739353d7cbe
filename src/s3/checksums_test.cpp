// CRCs against their check values, and body checks against declared hashes.
#include "s3/checksums.hpp"

#include <gtest/gtest.h>

#include "common/crypto.hpp"

namespace wharf::s3 {
namespace {

TEST(Checksums, CrcCheckValues) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32("56789", crc32("1234")), 0xCBF43926u);
}

BodyHasher hashed(std::string_view body, std::optional<ChecksumAlgorithm> extra) {
  BodyHasher hasher(true, extra);
  hasher.update(body.substr(0, 3));
  hasher.update(body.substr(3));
  hasher.finish();
  return hasher;
}

TEST(Checksums, AMatchingBodyPasses) {
  auto hasher = hashed("hello world", ChecksumAlgorithm::kCrc32);
  DeclaredHashes declared{
      sha256_hex("hello world"), "XrY7u+Ae7tCTyyK7j1rNww==",
      DeclaredChecksum{ChecksumAlgorithm::kCrc32, "x-amz-checksum-crc32", "DUoRhQ=="}};
  EXPECT_TRUE(check_body(hasher, declared).has_value());
}

TEST(Checksums, EachMismatchHasItsS3Code) {
  auto hasher = hashed("hello world", ChecksumAlgorithm::kSha256);
  EXPECT_EQ(check_body(hasher, {sha256_hex("other"), {}, {}}).error().wire_type,
            "XAmzContentSHA256Mismatch");
  EXPECT_EQ(check_body(hasher, {{}, "1B2M2Y8AsgTpgAmY7PhCfg==", {}}).error().wire_type,
            "BadDigest");
  EXPECT_EQ(check_body(hasher, {{}, "not-md5", {}}).error().wire_type, "InvalidDigest");
  DeclaredChecksum wrong{ChecksumAlgorithm::kSha256, "x-amz-checksum-sha256",
                         base64_encode(sha256_raw("other"))};
  EXPECT_EQ(check_body(hasher, {{}, {}, wrong}).error().wire_type, "BadDigest");
  DeclaredChecksum right{ChecksumAlgorithm::kSha256, "x-amz-checksum-sha256",
                         base64_encode(sha256_raw("hello world"))};
  EXPECT_TRUE(check_body(hasher, {{}, {}, right}).has_value());
}

}  // namespace
}  // namespace wharf::s3
