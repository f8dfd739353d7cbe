// GetRandomPassword's generator: a pure function of its options and a source of random bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/error.hpp"

namespace wharf::secrets {

struct PasswordOptions {
  std::int64_t length = 32;
  std::string exclude_characters;
  bool exclude_numbers = false;
  bool exclude_punctuation = false;
  bool exclude_uppercase = false;
  bool exclude_lowercase = false;
  bool include_space = false;
  bool require_each_included_type = true;
};

// `random_bytes(n)` returns n random bytes (common/crypto.hpp's in production). Characters are
// drawn uniformly (rejection sampling) from the included classes; with
// require_each_included_type, every class with a character left after the exclusions appears
// at least once. Options that leave no character, or fewer characters than required classes,
// are kInvalidParameter.
Result<std::string> random_password(const PasswordOptions& options,
                                    const std::function<std::string(std::size_t)>& random_bytes);

}  // namespace wharf::secrets
