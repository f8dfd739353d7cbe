// Formatting of registry error answers.
#include "oci/registry_error.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace wharf::oci {
namespace {

// The registry's {"errors":[{"code","message"}]} as "CODE: message; …", or nothing.
std::optional<std::string> registry_errors(std::string_view body, std::vector<std::string>& codes) {
  boost::system::error_code parse_error;
  auto value = boost::json::parse(body, parse_error);
  if (parse_error || !value.is_object()) return std::nullopt;
  const auto* errors = json::get_array(value.as_object(), "errors");
  if (errors == nullptr || errors->empty()) return std::nullopt;
  std::string text;
  for (const auto& entry : *errors) {
    if (!entry.is_object()) continue;
    std::string code = json::string_or(entry.as_object(), "code", "");
    std::string message = json::string_or(entry.as_object(), "message", "");
    codes.push_back(code);
    if (!text.empty()) text += "; ";
    text += code.empty() ? message : message.empty() ? code : code + ": " + message;
  }
  return text;
}

std::string printable_excerpt(std::string_view body) {
  std::string excerpt;
  for (char c : body.substr(0, 200)) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    excerpt += c;
  }
  while (!excerpt.empty() && excerpt.back() == ' ') excerpt.pop_back();
  return excerpt;
}

std::string reason_phrase(long status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 403:
      return "denied";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 429:
      return "too many requests";
    default:
      return status >= 500 ? "server error" : "";
  }
}

ErrorCode code_for(long status, const std::vector<std::string>& codes) {
  auto has = [&](std::string_view code) {
    return std::find(codes.begin(), codes.end(), code) != codes.end();
  };
  if (status == 401 || status == 403) return ErrorCode::kAccessDenied;
  if (status == 429) return ErrorCode::kLimitExceeded;
  if (has("NAME_UNKNOWN")) return ErrorCode::kRepositoryNotFound;
  if (has("MANIFEST_UNKNOWN")) return ErrorCode::kImageNotFound;
  if (has("BLOB_UNKNOWN")) return ErrorCode::kLayersNotFound;
  if (has("DIGEST_INVALID")) return ErrorCode::kImageDigestDoesNotMatch;
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 400 && status < 500) return ErrorCode::kInvalidParameter;
  return ErrorCode::kInternal;
}

}  // namespace

Error response_error(const HttpResponse& response) {
  std::vector<std::string> codes;
  std::string text = "HTTP " + std::to_string(response.status);
  if (auto errors = registry_errors(response.body, codes)) {
    text += ": " + *errors;
  } else if (auto excerpt = printable_excerpt(response.body); !excerpt.empty()) {
    text += ": " + excerpt;
  } else if (auto reason = reason_phrase(response.status); !reason.empty()) {
    text += ": " + reason;  // HEAD answers and some proxies say nothing more
  }
  return Error{code_for(response.status, codes), std::move(text)};
}

}  // namespace wharf::oci
