// Random identifiers drawn from OpenSSL's CSPRNG.
#include "common/ids.hpp"

#include "common/crypto.hpp"

namespace wharf {

std::string new_uuid() {
  std::string bytes = random_bytes(16);
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);
  std::string hex = to_hex(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string new_hex_id() {
  return to_hex(random_bytes(16));
}

std::string random_characters(std::string_view alphabet, std::size_t count) {
  std::string bytes = random_bytes(count);
  std::string out;
  out.reserve(count);
  for (unsigned char byte : bytes) out.push_back(alphabet[byte % alphabet.size()]);
  return out;
}

std::string new_access_key_id() {
  return "AKIA" + random_characters("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
}

std::string new_secret_access_key() {
  return random_characters("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);
}

}  // namespace wharf
