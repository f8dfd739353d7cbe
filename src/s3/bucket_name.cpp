// check_bucket_name: length, characters, ends, dots, IP-like names, reserved prefixes/suffixes.
#include "s3/bucket_name.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "common/text.hpp"

namespace wharf::s3 {

namespace {

constexpr std::array<std::string_view, 3> kReservedPrefixes = {"xn--", "sthree-", "amzn-s3-demo-"};
constexpr std::array<std::string_view, 5> kReservedSuffixes = {"-s3alias", "--ol-s3", ".mrap",
                                                               "--x-s3", "--table-s3"};

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_name_character(char c) {
  return is_lower_alnum(c) || c == '.' || c == '-';
}

bool is_digits(std::string_view text) {
  return !text.empty() && text.size() <= 3 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool looks_like_ip_address(std::string_view name) {
  auto parts = split(name, '.');
  return parts.size() == 4 && std::all_of(parts.begin(), parts.end(), is_digits);
}

std::unexpected<Error> invalid_name(std::string_view name, std::string why) {
  return fail_as(ErrorCode::kInvalidParameter, "InvalidBucketName",
                 "The specified bucket is not valid: '" + std::string(name) + "' " + why + ".");
}

}  // namespace

Status check_bucket_name(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) {
    return invalid_name(name, "must be between 3 and 63 characters long");
  }
  if (!std::all_of(name.begin(), name.end(), is_name_character)) {
    return invalid_name(name,
                        "may contain only lower-case letters, digits, dots (.) and hyphens (-)");
  }
  if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back())) {
    return invalid_name(name, "must begin and end with a letter or a digit");
  }
  if (name.find("..") != std::string_view::npos) {
    return invalid_name(name, "must not contain two adjacent dots");
  }
  if (looks_like_ip_address(name)) {
    return invalid_name(name, "must not be formatted as an IP address");
  }
  for (auto prefix : kReservedPrefixes) {
    if (name.starts_with(prefix)) {
      return invalid_name(name,
                          "must not start with the reserved prefix '" + std::string(prefix) + "'");
    }
  }
  for (auto suffix : kReservedSuffixes) {
    if (name.ends_with(suffix)) {
      return invalid_name(name,
                          "must not end with the reserved suffix '" + std::string(suffix) + "'");
    }
  }
  return {};
}

}  // namespace wharf::s3
