// Parameter Store's naming rules.
#include "ssm/names.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "common/arn.hpp"
#include "common/text.hpp"

namespace wharf::ssm {

namespace {

constexpr std::string_view kArnResourcePrefix = "parameter/";

bool is_name_character(char character) {
  return std::isalnum(static_cast<unsigned char>(character)) || character == '_' ||
         character == '.' || character == '-' || character == '/';
}

bool has_reserved_prefix(std::string_view text) {
  std::string lowered = lower(text.substr(0, 3));
  return lowered == "aws" || lowered == "ssm";
}

// The levels of "/a/b" ("a", "b") or of "a" ("a").
std::vector<std::string_view> levels(std::string_view name) {
  if (name.starts_with('/')) name.remove_prefix(1);
  return split(name, '/');
}

std::unexpected<Error> too_deep(std::string_view name) {
  return fail_as(ErrorCode::kInvalidParameter, "HierarchyLevelLimitExceededException",
                 "The parameter name '" + std::string(name) + "' has more than " +
                     std::to_string(kMaxHierarchyLevels) +
                     " hierarchy levels, the most Parameter Store allows: use fewer levels.");
}

Result<std::int64_t> parse_version(std::string_view text) {
  std::int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 1) {
    return invalid("'" + std::string(text) + "' is not a parameter version: versions start at 1.");
  }
  return version;
}

// Splits "NAME:SELECTOR" into the reference.
Result<ParameterReference> split_selector(std::string_view text, bool allow_selector) {
  ParameterReference reference;
  auto colon = text.find(':');
  reference.name = std::string(text.substr(0, colon));
  if (colon == std::string_view::npos) return reference;
  std::string_view selector = text.substr(colon + 1);
  if (!allow_selector) {
    return invalid("'" + std::string(text) +
                   "' has a selector (':version' or ':label'); this operation takes the parameter "
                   "name alone.");
  }
  if (selector.empty() || selector.find(':') != std::string_view::npos) {
    return invalid("'" + std::string(text) +
                   "' is not a valid parameter selector: give NAME, NAME:VERSION or NAME:LABEL.");
  }
  if (std::isdigit(static_cast<unsigned char>(selector.front()))) {
    auto version = parse_version(selector);
    if (!version) return std::unexpected(version.error());
    reference.version = *version;
    return reference;
  }
  reference.label = std::string(selector);
  return reference;
}

}  // namespace

std::string parameter_arn(std::string_view region, std::string_view account,
                          std::string_view name) {
  if (name.starts_with('/')) name.remove_prefix(1);
  return Arn{"aws", "ssm", std::string(region), std::string(account),
             std::string(kArnResourcePrefix) + std::string(name)}
      .str();
}

Status check_name(std::string_view name, std::string_view region, std::string_view account) {
  std::string quoted = "'" + std::string(name) + "'";
  if (name.empty()) return invalid("A parameter name must not be empty.");
  if (!std::all_of(name.begin(), name.end(), is_name_character)) {
    return invalid("The parameter name " + quoted +
                   " is not valid: a name may contain only letters, digits and the symbols "
                   "_ . - and /.");
  }
  if (name.find('/') != std::string_view::npos && !name.starts_with('/')) {
    return invalid("The parameter name " + quoted +
                   " is not fully qualified: a name in a hierarchy must begin with '/', e.g. '/" +
                   std::string(name) + "'.");
  }
  auto name_levels = levels(name);
  if (std::any_of(name_levels.begin(), name_levels.end(),
                  [](std::string_view level) { return level.empty(); })) {
    return invalid("The parameter name " + quoted +
                   " has an empty hierarchy level: remove the doubled or trailing '/'.");
  }
  if (has_reserved_prefix(name_levels.front())) {
    return invalid("The parameter name " + quoted +
                   " begins with 'aws' or 'ssm' (in any case), which AWS reserves: choose "
                   "another name.");
  }
  if (name_levels.size() > kMaxHierarchyLevels) return too_deep(name);
  if (parameter_arn(region, account, name).size() > kMaxArnLength) {
    return invalid("The parameter name " + quoted + " is too long: its ARN may have at most " +
                   std::to_string(kMaxArnLength) + " characters.");
  }
  return {};
}

Result<std::string> check_path(std::string_view path) {
  if (!path.starts_with('/')) {
    return invalid("The path '" + std::string(path) +
                   "' is not valid: a path begins with '/', e.g. /prod/db.");
  }
  if (path.size() > 1 && path.ends_with('/')) path.remove_suffix(1);
  if (path == "/") return std::string(path);
  if (!std::all_of(path.begin(), path.end(), is_name_character)) {
    return invalid("The path '" + std::string(path) +
                   "' is not valid: a path may contain only letters, digits and _ . - and /.");
  }
  auto path_levels = levels(path);
  if (std::any_of(path_levels.begin(), path_levels.end(),
                  [](std::string_view level) { return level.empty(); })) {
    return invalid("The path '" + std::string(path) + "' has an empty hierarchy level.");
  }
  if (path_levels.size() > kMaxHierarchyLevels) return too_deep(path);
  return std::string(path);
}

bool is_valid_key_id(std::string_view key_id) {
  auto is_hex_or_dash = [](char character) {
    return std::isxdigit(static_cast<unsigned char>(character)) || character == '-';
  };
  if (key_id.starts_with("alias/")) return key_id.size() > 6;
  if (key_id.starts_with("mrk-")) key_id.remove_prefix(4);
  if (!looks_like_arn(key_id)) {
    return (key_id.size() == 36 || key_id.size() == 32) &&
           std::all_of(key_id.begin(), key_id.end(), is_hex_or_dash);
  }
  auto arn = parse_arn(key_id);
  return arn && arn->service == "kms" &&
         (arn->resource.starts_with("key/") || arn->resource.starts_with("alias/"));
}

bool is_valid_label(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  if (std::isdigit(static_cast<unsigned char>(label.front())) || has_reserved_prefix(label)) {
    return false;
  }
  return std::all_of(label.begin(), label.end(), [](char character) {
    return character != '/' && is_name_character(character);
  });
}

std::string ParameterReference::selector() const {
  if (version) return ":" + std::to_string(*version);
  if (label) return ":" + *label;
  return {};
}

Result<ParameterReference> parse_reference(std::string_view text, std::string_view region,
                                           std::string_view account, bool allow_selector,
                                           bool allow_arn) {
  if (!looks_like_arn(text)) return split_selector(text, allow_selector);
  if (!allow_arn) {
    return invalid("'" + std::string(text) +
                   "' is an ARN; this operation takes the parameter's name, e.g. /prod/db.");
  }
  auto arn = parse_arn(text);
  if (!arn || arn->service != "ssm" || !arn->resource.starts_with(kArnResourcePrefix)) {
    return invalid("'" + std::string(text) +
                   "' is not a parameter ARN: expected arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, "
                   "or give the name.");
  }
  if (arn->region != region || arn->account != account) {
    return invalid("The ARN '" + std::string(text) + "' names region " + arn->region +
                   " and account " + arn->account + ", but this request is for region " +
                   std::string(region) + " and account " + std::string(account) + ".");
  }
  std::string_view rest = std::string_view(arn->resource).substr(kArnResourcePrefix.size());
  auto reference = split_selector(rest, allow_selector);
  if (!reference) return reference;
  reference->ambiguous_root = reference->name.find('/') == std::string::npos;
  if (!reference->ambiguous_root) reference->name.insert(0, "/");
  return reference;
}

}  // namespace wharf::ssm
