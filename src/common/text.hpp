// Text helpers that every module shares.
#pragma once

#include <cctype>
#include <string_view>

namespace wharf {

// `text` without its leading and trailing white space (space, tab, CR, LF, VT, FF).
inline std::string_view trim(std::string_view text) {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace wharf
