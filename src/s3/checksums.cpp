// CRC32 and CRC32C tables, the incremental BodyHasher (OpenSSL EVP) and check_body.
#include "s3/checksums.hpp"

#include <openssl/evp.h>

#include <array>

#include "common/crypto.hpp"
#include "common/text.hpp"

namespace wharf::s3 {

namespace {

using CrcTable = std::array<uint32_t, 256>;

constexpr CrcTable make_table(uint32_t reflected_polynomial) {
  CrcTable table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t value = byte;
    for (int bit = 0; bit < 8; ++bit) {
      value = (value & 1) ? (value >> 1) ^ reflected_polynomial : value >> 1;
    }
    table[byte] = value;
  }
  return table;
}

constexpr CrcTable kCrc32Table = make_table(0xEDB88320u);
constexpr CrcTable kCrc32cTable = make_table(0x82F63B78u);

uint32_t crc_update(const CrcTable& table, std::string_view bytes, uint32_t crc) {
  crc = ~crc;
  for (char c : bytes) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string big_endian(uint32_t value) {
  std::string out(4, '\0');
  for (int byte_idx = 0; byte_idx < 4; ++byte_idx) {
    out[byte_idx] = static_cast<char>((value >> (24 - 8 * byte_idx)) & 0xff);
  }
  return out;
}

struct EvpContext {
  explicit EvpContext(const EVP_MD* md) : context(EVP_MD_CTX_new()) {
    if (context == nullptr || EVP_DigestInit_ex(context, md, nullptr) != 1) {
      throw std::runtime_error("initialising a digest failed");
    }
  }
  ~EvpContext() { EVP_MD_CTX_free(context); }
  EvpContext(const EvpContext&) = delete;
  EvpContext& operator=(const EvpContext&) = delete;

  void update(std::string_view bytes) { EVP_DigestUpdate(context, bytes.data(), bytes.size()); }
  std::string finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, digest, &length);
    return std::string(reinterpret_cast<char*>(digest), length);
  }

  EVP_MD_CTX* context;
};

std::unexpected<Error> bad_digest(std::string message) {
  return fail_as(ErrorCode::kInvalidParameter, "BadDigest", std::move(message));
}

std::string_view algorithm_name(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "CRC32";
    case ChecksumAlgorithm::kCrc32c:
      return "CRC32C";
    case ChecksumAlgorithm::kSha1:
      return "SHA1";
    case ChecksumAlgorithm::kSha256:
      return "SHA256";
  }
  return "";
}

}  // namespace

uint32_t crc32(std::string_view bytes, uint32_t crc) {
  return crc_update(kCrc32Table, bytes, crc);
}

uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  return crc_update(kCrc32cTable, bytes, crc);
}

std::optional<ChecksumAlgorithm> checksum_algorithm(std::string_view header_name) {
  if (header_name == "x-amz-checksum-crc32") return ChecksumAlgorithm::kCrc32;
  if (header_name == "x-amz-checksum-crc32c") return ChecksumAlgorithm::kCrc32c;
  if (header_name == "x-amz-checksum-sha1") return ChecksumAlgorithm::kSha1;
  if (header_name == "x-amz-checksum-sha256") return ChecksumAlgorithm::kSha256;
  return std::nullopt;
}

struct BodyHasher::State {
  EvpContext md5{EVP_md5()};
  std::optional<EvpContext> sha256;
  std::optional<EvpContext> sha1;
  std::optional<ChecksumAlgorithm> extra;
  uint32_t crc = 0;
};

BodyHasher::BodyHasher(bool want_sha256, std::optional<ChecksumAlgorithm> extra)
    : state_(std::make_unique<State>()) {
  state_->extra = extra;
  if (want_sha256 || extra == ChecksumAlgorithm::kSha256) state_->sha256.emplace(EVP_sha256());
  if (extra == ChecksumAlgorithm::kSha1) state_->sha1.emplace(EVP_sha1());
}

BodyHasher::~BodyHasher() = default;
BodyHasher::BodyHasher(BodyHasher&&) noexcept = default;
BodyHasher& BodyHasher::operator=(BodyHasher&&) noexcept = default;

void BodyHasher::update(std::string_view bytes) {
  state_->md5.update(bytes);
  if (state_->sha256) state_->sha256->update(bytes);
  if (state_->sha1) state_->sha1->update(bytes);
  if (state_->extra == ChecksumAlgorithm::kCrc32) state_->crc = crc32(bytes, state_->crc);
  if (state_->extra == ChecksumAlgorithm::kCrc32c) state_->crc = crc32c(bytes, state_->crc);
}

void BodyHasher::finish() {
  md5_ = state_->md5.finish();
  if (state_->sha256) sha256_ = state_->sha256->finish();
  if (state_->sha1) extra_ = state_->sha1->finish();
  if (state_->extra == ChecksumAlgorithm::kSha256) extra_ = sha256_;
  if (state_->extra == ChecksumAlgorithm::kCrc32 || state_->extra == ChecksumAlgorithm::kCrc32c) {
    extra_ = big_endian(state_->crc);
  }
}

Status check_body(const BodyHasher& hasher, const DeclaredHashes& declared) {
  if (declared.content_sha256_hex &&
      lower(*declared.content_sha256_hex) != to_hex(hasher.sha256_raw())) {
    return fail_as(ErrorCode::kInvalidParameter, "XAmzContentSHA256Mismatch",
                   "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  if (declared.content_md5_base64) {
    auto md5 = base64_decode(*declared.content_md5_base64);
    if (!md5 || md5->size() != 16) {
      return fail_as(ErrorCode::kInvalidParameter, "InvalidDigest",
                     "The Content-MD5 you specified was invalid.");
    }
    if (*md5 != hasher.md5_raw()) {
      return bad_digest("The Content-MD5 you specified did not match what we received.");
    }
  }
  if (declared.checksum && base64_encode(hasher.extra_raw()) != declared.checksum->base64) {
    return bad_digest("The " + std::string(algorithm_name(declared.checksum->algorithm)) +
                      " you specified did not match the calculated checksum.");
  }
  return {};
}

}  // namespace wharf::s3
