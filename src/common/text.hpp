// Text helpers that every module shares.
#pragma once

#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf {

// `text` without its leading and trailing white space (space, tab, CR, LF, VT, FF).
inline std::string_view trim(std::string_view text) {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

// `text` in ASCII lower case.
inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The parts of `text` between `separator`s, empty ones included: "a::b" → {"a", "", "b"}, and
// "" → {""}.
inline std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// RFC 3986 percent-encoding with upper-case hex of every byte but the unreserved characters
// (A-Z a-z 0-9 - _ . ~) and those in `keep` (say "/" for a URL path).
inline std::string uri_encode(std::string_view text, std::string_view keep = {}) {
  static constexpr char kHexDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || keep.find(c) != std::string_view::npos) {
      out += c;
      continue;
    }
    out += '%';
    out += kHexDigits[byte >> 4];
    out += kHexDigits[byte & 0xf];
  }
  return out;
}

// Decodes %XX escapes (either case); a '%' without two hex digits after it is kept as a literal,
// so that any text has exactly one decoding. '+' stays '+'.
inline std::string uri_decode(std::string_view text) {
  auto hex_value = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t char_idx = 0; char_idx < text.size(); ++char_idx) {
    if (text[char_idx] == '%' && char_idx + 2 < text.size() && hex_value(text[char_idx + 1]) >= 0 &&
        hex_value(text[char_idx + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[char_idx + 1]) * 16 + hex_value(text[char_idx + 2]));
      char_idx += 2;
      continue;
    }
    out += text[char_idx];
  }
  return out;
}

// The whole of `text` as a decimal number of type T; nullopt when empty, not a number, followed
// by anything else, or out of T's range.
template <typename T>
std::optional<T> parse_decimal(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace wharf
