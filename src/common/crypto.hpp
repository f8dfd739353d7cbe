// Hashes, HMACs, hex and base64 used by SigV4, paging tokens and content digests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wharf {

std::string sha256_raw(std::string_view data);
std::string sha256_hex(std::string_view data);
std::string hmac_sha256_raw(std::string_view key, std::string_view data);
// Only for S3's legacy (Signature Version 2) presigned URLs.
std::string hmac_sha1_raw(std::string_view key, std::string_view data);
std::string to_hex(std::string_view bytes);
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);
// URL-safe base64 without padding, for tokens that travel in JSON and query strings.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);
// Constant-time comparison for secrets and signatures.
bool secure_equals(std::string_view a, std::string_view b);
// Cryptographically random bytes.
std::string random_bytes(std::size_t count);

}  // namespace wharf
