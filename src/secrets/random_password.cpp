// random_password: character classes, exclusions and uniform draws.
#include "secrets/random_password.hpp"

#include <string_view>
#include <vector>

namespace wharf::secrets {

namespace {

constexpr std::string_view kLowercase = "abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kUppercase = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kNumbers = "0123456789";
// AWS's punctuation set: the printable ASCII characters that are neither letters nor digits.
constexpr std::string_view kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
constexpr std::int64_t kMaxLength = 4096;

std::string without(std::string_view characters, std::string_view excluded) {
  std::string out;
  for (char character : characters) {
    if (excluded.find(character) == std::string_view::npos) out.push_back(character);
  }
  return out;
}

// Uniformly drawn indexes below a bound of at most 65536, from two random bytes each; draws that
// would bias the result are rejected.
class Draw {
 public:
  explicit Draw(const std::function<std::string(std::size_t)>& random_bytes)
      : random_bytes_(random_bytes) {}

  std::size_t below(std::size_t bound) {
    constexpr std::size_t kRange = 65536;
    std::size_t limit = kRange - kRange % bound;
    for (;;) {
      std::size_t value = byte() << 8 | byte();
      if (value < limit) return value % bound;
    }
  }

 private:
  std::size_t byte() {
    if (next_ == pool_.size()) {
      pool_ = random_bytes_(128);
      next_ = 0;
    }
    return static_cast<unsigned char>(pool_[next_++]);
  }

  const std::function<std::string(std::size_t)>& random_bytes_;
  std::string pool_;
  std::size_t next_ = 0;
};

}  // namespace

Result<std::string> random_password(const PasswordOptions& options,
                                    const std::function<std::string(std::size_t)>& random_bytes) {
  if (options.length < 1 || options.length > kMaxLength) {
    return invalid("PasswordLength must be from 1 to " + std::to_string(kMaxLength) + ".");
  }
  std::vector<std::string> classes;
  auto include = [&](bool excluded, std::string_view characters) {
    if (excluded) return;
    std::string left = without(characters, options.exclude_characters);
    if (!left.empty()) classes.push_back(std::move(left));
  };
  include(options.exclude_lowercase, kLowercase);
  include(options.exclude_uppercase, kUppercase);
  include(options.exclude_numbers, kNumbers);
  include(options.exclude_punctuation, kPunctuation);
  // The space may appear but is not a type RequireEachIncludedType demands (AWS's four are
  // lower case, upper case, digits and punctuation).
  std::string optional = options.include_space ? " " : "";
  if (classes.empty()) {
    return invalid(
        "The options exclude every character: include at least one class of characters that "
        "ExcludeCharacters does not remove entirely.");
  }
  auto length = static_cast<std::size_t>(options.length);
  if (options.require_each_included_type && length < classes.size()) {
    return invalid("PasswordLength " + std::to_string(length) + " is too short to include one of " +
                   "each of the " + std::to_string(classes.size()) +
                   " included character types: make it longer, or set "
                   "RequireEachIncludedType to false.");
  }
  std::string all = optional;
  for (const auto& characters : classes) all += characters;
  Draw draw(random_bytes);
  std::string password;
  if (options.require_each_included_type) {
    for (const auto& characters : classes)
      password.push_back(characters[draw.below(characters.size())]);
  }
  while (password.size() < length) password.push_back(all[draw.below(all.size())]);
  // The first characters came one per class in a fixed order: shuffle (Fisher-Yates) so their
  // positions tell nothing.
  for (std::size_t position = password.size(); position > 1; --position) {
    std::swap(password[position - 1], password[draw.below(position)]);
  }
  return password;
}

}  // namespace wharf::secrets
