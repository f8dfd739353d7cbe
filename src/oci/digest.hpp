// OCI content digests ("sha256:<hex>", "sha512:<hex>") and incremental hashing.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::oci {

struct Digest {
  std::string algorithm;  // "sha256" | "sha512"
  std::string hex;        // lower-case, 64 or 128 characters

  std::string str() const { return algorithm + ":" + hex; }
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;
};

// Parses and validates "algorithm:hex"; kInvalidParameter when malformed or unsupported.
Result<Digest> parse_digest(std::string_view text);

// Hashes a stream of bytes with the algorithm of a digest.
class Hasher {
 public:
  explicit Hasher(std::string_view algorithm = "sha256");  // "sha256" or "sha512"
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(std::string_view bytes);
  // The digest of everything so far; the hasher can go on after it.
  Digest digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string algorithm_;
};

Digest digest_of(std::string_view bytes, std::string_view algorithm = "sha256");

}  // namespace wharf::oci
