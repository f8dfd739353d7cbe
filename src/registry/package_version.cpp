// dpkg and apk version comparison.
#include "registry/package_version.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace wharf::registry {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// ---- dpkg (lib/dpkg/version.c) ----

// The weight of a character in a non-digit run: '~' sorts first (before the end of the
// string), then the end, then letters, then everything else.
int dpkg_order(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return 0;
  char c = text[pos];
  if (is_digit(c)) return 0;
  if (is_alpha(c)) return c;
  if (c == '~') return -1;
  return static_cast<unsigned char>(c) + 256;
}

int dpkg_compare_part(std::string_view a, std::string_view b) {
  std::size_t a_pos = 0;
  std::size_t b_pos = 0;
  while (a_pos < a.size() || b_pos < b.size()) {
    while ((a_pos < a.size() && !is_digit(a[a_pos])) || (b_pos < b.size() && !is_digit(b[b_pos]))) {
      int a_order = dpkg_order(a, a_pos);
      int b_order = dpkg_order(b, b_pos);
      if (a_order != b_order) return a_order - b_order;
      ++a_pos;
      ++b_pos;
    }
    while (a_pos < a.size() && a[a_pos] == '0') ++a_pos;
    while (b_pos < b.size() && b[b_pos] == '0') ++b_pos;
    int first_difference = 0;
    while (a_pos < a.size() && is_digit(a[a_pos]) && b_pos < b.size() && is_digit(b[b_pos])) {
      if (first_difference == 0) first_difference = a[a_pos] - b[b_pos];
      ++a_pos;
      ++b_pos;
    }
    if (a_pos < a.size() && is_digit(a[a_pos])) return 1;
    if (b_pos < b.size() && is_digit(b[b_pos])) return -1;
    if (first_difference != 0) return first_difference;
  }
  return 0;
}

struct DpkgVersion {
  unsigned long long epoch = 0;
  std::string_view upstream;
  std::string_view revision;
};

DpkgVersion parse_dpkg_version(std::string_view text) {
  DpkgVersion version;
  auto colon = text.find(':');
  if (colon != std::string_view::npos &&
      std::all_of(text.begin(), text.begin() + colon, is_digit) && colon > 0) {
    for (char digit : text.substr(0, colon)) version.epoch = version.epoch * 10 + (digit - '0');
    text.remove_prefix(colon + 1);
  }
  auto hyphen = text.rfind('-');
  if (hyphen != std::string_view::npos) {
    version.revision = text.substr(hyphen + 1);
    text = text.substr(0, hyphen);
  }
  version.upstream = text;
  return version;
}

// ---- apk (apk-tools src/version.c, reduced to its ordering) ----

// Suffix ranks: pre-release suffixes sort before "no suffix" (0), post-release ones after.
constexpr std::array<std::pair<std::string_view, int>, 9> kApkSuffixes{{{"alpha", -4},
                                                                        {"beta", -3},
                                                                        {"pre", -2},
                                                                        {"rc", -1},
                                                                        {"cvs", 1},
                                                                        {"svn", 2},
                                                                        {"git", 3},
                                                                        {"hg", 4},
                                                                        {"p", 5}}};

struct ApkSuffix {
  int rank = 0;
  unsigned long long number = 0;
};

struct ApkVersion {
  std::vector<std::string_view> numbers;  // dot-separated numeric components
  char letter = 0;
  std::vector<ApkSuffix> suffixes;
  unsigned long long revision = 0;
  std::string_view rest;  // whatever did not follow the grammar
};

unsigned long long to_number(std::string_view digits) {
  unsigned long long value = 0;
  for (char digit : digits) value = value * 10 + static_cast<unsigned>(digit - '0');
  return value;
}

std::string_view take_digits(std::string_view& text) {
  std::size_t length = 0;
  while (length < text.size() && is_digit(text[length])) ++length;
  std::string_view digits = text.substr(0, length);
  text.remove_prefix(length);
  return digits;
}

ApkVersion parse_apk_version(std::string_view text) {
  ApkVersion version;
  std::string_view first = take_digits(text);
  if (first.empty()) {
    version.rest = text;
    return version;
  }
  version.numbers.push_back(first);
  while (text.size() >= 2 && text[0] == '.' && is_digit(text[1])) {
    text.remove_prefix(1);
    version.numbers.push_back(take_digits(text));
  }
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') {
    version.letter = text[0];
    text.remove_prefix(1);
  }
  while (!text.empty() && text[0] == '_') {
    std::string_view after = text.substr(1);
    auto suffix = std::find_if(kApkSuffixes.begin(), kApkSuffixes.end(),
                               [&](const auto& known) { return after.starts_with(known.first); });
    if (suffix == kApkSuffixes.end()) break;
    text = after.substr(suffix->first.size());
    version.suffixes.push_back({suffix->second, to_number(take_digits(text))});
  }
  if (!text.empty() && text[0] == '~') {  // ~<commit hash>: not ordered
    text.remove_prefix(1);
    while (!text.empty() && std::isxdigit(static_cast<unsigned char>(text[0]))) {
      text.remove_prefix(1);
    }
  }
  if (text.starts_with("-r") && text.size() > 2 && is_digit(text[2])) {
    text.remove_prefix(2);
    version.revision = to_number(take_digits(text));
  }
  version.rest = text;
  return version;
}

int sign(long long value) {
  return (value > 0) - (value < 0);
}

int compare_numbers(unsigned long long a, unsigned long long b) {
  return (a > b) - (a < b);
}

// Components after the first: with a leading zero on either side they compare as decimal
// fractions (string comparison without trailing zeros), otherwise as numbers.
int compare_apk_component(std::string_view a, std::string_view b, bool first) {
  if (!first && (a.starts_with('0') || b.starts_with('0'))) {
    while (a.size() > 1 && a.back() == '0') a.remove_suffix(1);
    while (b.size() > 1 && b.back() == '0') b.remove_suffix(1);
    return sign(a.compare(b));
  }
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return sign(a.compare(b));
}

}  // namespace

int compare_dpkg_versions(std::string_view a, std::string_view b) {
  DpkgVersion left = parse_dpkg_version(a);
  DpkgVersion right = parse_dpkg_version(b);
  if (left.epoch != right.epoch) return left.epoch < right.epoch ? -1 : 1;
  if (int upstream = dpkg_compare_part(left.upstream, right.upstream); upstream != 0) {
    return sign(upstream);
  }
  return sign(dpkg_compare_part(left.revision, right.revision));
}

int compare_apk_versions(std::string_view a, std::string_view b) {
  ApkVersion left = parse_apk_version(a);
  ApkVersion right = parse_apk_version(b);
  std::size_t common = std::min(left.numbers.size(), right.numbers.size());
  for (std::size_t number_idx = 0; number_idx < common; ++number_idx) {
    int order =
        compare_apk_component(left.numbers[number_idx], right.numbers[number_idx], number_idx == 0);
    if (order != 0) return order;
  }
  if (left.numbers.size() != right.numbers.size()) {
    return left.numbers.size() < right.numbers.size() ? -1 : 1;
  }
  if (left.letter != right.letter) return left.letter < right.letter ? -1 : 1;
  std::size_t suffix_count = std::max(left.suffixes.size(), right.suffixes.size());
  for (std::size_t suffix_idx = 0; suffix_idx < suffix_count; ++suffix_idx) {
    // A missing suffix ranks as "no suffix": after pre-releases, before post-releases.
    ApkSuffix left_suffix =
        suffix_idx < left.suffixes.size() ? left.suffixes[suffix_idx] : ApkSuffix{};
    ApkSuffix right_suffix =
        suffix_idx < right.suffixes.size() ? right.suffixes[suffix_idx] : ApkSuffix{};
    if (left_suffix.rank != right_suffix.rank) return left_suffix.rank < right_suffix.rank ? -1 : 1;
    if (int order = compare_numbers(left_suffix.number, right_suffix.number); order != 0) {
      return order;
    }
  }
  if (int order = compare_numbers(left.revision, right.revision); order != 0) return order;
  return sign(left.rest.compare(right.rest));
}

}  // namespace wharf::registry
