// Hashes of an object body computed as it streams in: MD5 (the ETag, Content-MD5), SHA-256
// (x-amz-content-sha256) and the flexible checksum a client may declare (x-amz-checksum-*).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::s3 {

uint32_t crc32(std::string_view bytes, uint32_t crc = 0);
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kSha1, kSha256 };

// A checksum the request declared, e.g. header "x-amz-checksum-crc32" with base64 "NSRBwg==".
struct DeclaredChecksum {
  ChecksumAlgorithm algorithm;
  std::string header;
  std::string base64;
};

// The x-amz-checksum-* header of a request, by (lower-case) header name; nullopt when the name
// is not a supported checksum.
std::optional<ChecksumAlgorithm> checksum_algorithm(std::string_view header_name);

class BodyHasher {
 public:
  // `extra`, when given, is computed beside MD5; SHA-256 only when `want_sha256`.
  BodyHasher(bool want_sha256, std::optional<ChecksumAlgorithm> extra);
  ~BodyHasher();
  BodyHasher(BodyHasher&&) noexcept;
  BodyHasher& operator=(BodyHasher&&) noexcept;

  void update(std::string_view bytes);
  // Finishes the hashes; call once, after the last update().
  void finish();
  const std::string& md5_raw() const { return md5_; }
  const std::string& sha256_raw() const { return sha256_; }
  // The extra checksum's raw bytes (big-endian for the CRCs).
  const std::string& extra_raw() const { return extra_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string md5_;
  std::string sha256_;
  std::string extra_;
};

// Checks a finished body's hashes against what the request declared: the x-amz-content-sha256
// hex value (unless UNSIGNED-PAYLOAD), Content-MD5 and an x-amz-checksum-* header, with S3's
// errors (XAmzContentSHA256Mismatch, BadDigest, InvalidDigest).
struct DeclaredHashes {
  std::optional<std::string> content_sha256_hex;
  std::optional<std::string> content_md5_base64;
  std::optional<DeclaredChecksum> checksum;
};
Status check_body(const BodyHasher& hasher, const DeclaredHashes& declared);

}  // namespace wharf::s3
