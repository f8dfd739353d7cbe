// Digest parsing and OpenSSL EVP hashing.
#include "oci/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "common/crypto.hpp"

namespace wharf::oci {

Result<Digest> parse_digest(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return invalid("digest '" + std::string(text) + "' must be algorithm:hex, e.g. sha256:…");
  }
  Digest digest{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  std::size_t length = 0;
  if (digest.algorithm == "sha256") length = 64;
  if (digest.algorithm == "sha512") length = 128;
  if (length == 0) {
    return invalid("digest algorithm '" + digest.algorithm +
                   "' is not supported: use sha256 or sha512");
  }
  bool hex = digest.hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (digest.hex.size() != length || !hex) {
    return invalid("digest '" + std::string(text) + "' must have " + std::to_string(length) +
                   " lower-case hex characters");
  }
  return digest;
}

struct Hasher::State {
  EVP_MD_CTX* context = nullptr;
  ~State() { EVP_MD_CTX_free(context); }
};

Hasher::Hasher(std::string_view algorithm)
    : state_(std::make_unique<State>()), algorithm_(algorithm) {
  const EVP_MD* md = algorithm == "sha512" ? EVP_sha512() : EVP_sha256();
  if (algorithm != "sha256" && algorithm != "sha512") {
    throw std::invalid_argument("unsupported digest algorithm");  // callers parse digests first
  }
  state_->context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(state_->context, md, nullptr);
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(std::string_view bytes) {
  EVP_DigestUpdate(state_->context, bytes.data(), bytes.size());
}

Digest Hasher::digest() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, state_->context);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(copy, out, &length);
  EVP_MD_CTX_free(copy);
  return Digest{algorithm_, to_hex(std::string_view(reinterpret_cast<char*>(out), length))};
}

Digest digest_of(std::string_view bytes, std::string_view algorithm) {
  Hasher hasher(algorithm);
  hasher.update(bytes);
  return hasher.digest();
}

}  // namespace wharf::oci
