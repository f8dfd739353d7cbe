// Parameter Store's naming rules as pure checks: parameter names, hierarchy paths, labels, and
// the names (plain, ":version"/":label" selectors, ARNs) that requests refer to parameters by.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::ssm {

inline constexpr std::size_t kMaxHierarchyLevels = 15;
// AWS's limit on a name counts the ARN before it: "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME".
inline constexpr std::size_t kMaxArnLength = 1011;
inline constexpr std::size_t kMaxLabelLength = 100;

// arn:aws:ssm:REGION:ACCOUNT:parameter/NAME ("/a/b" and "a" both follow "parameter/").
std::string parameter_arn(std::string_view region, std::string_view account, std::string_view name);

// A name PutParameter may create: letters, digits and _.-/; a hierarchy ("/a/b") begins with
// '/' and has at most 15 levels (HierarchyLevelLimitExceededException) and no empty level; the
// first level must not begin with "aws" or "ssm" in any case; the ARN at most 1011 characters.
Status check_name(std::string_view name, std::string_view region, std::string_view account);
// GetParametersByPath's Path: "/" or a hierarchy of at most 15 levels, with a trailing '/' or
// not. Returns it without the trailing '/' (but "/" stays "/").
Result<std::string> check_path(std::string_view path);
// A KMS key reference as PutParameter's KeyId may give it: "alias/NAME", a key id (a UUID or
// "mrk-" and 32 hex digits), or a key or alias ARN. Wharf does not encrypt; the key is shown.
bool is_valid_key_id(std::string_view key_id);
// Labels: 1 to 100 of letters, digits and _.-, not beginning with a digit, "aws" or "ssm".
bool is_valid_label(std::string_view label);

// What a request names: a parameter, and perhaps one version of it by number or label.
struct ParameterReference {
  std::string name;
  std::optional<std::int64_t> version;
  std::optional<std::string> label;
  // Given as an ARN whose resource had no '/' after "parameter/": the name may be "a" or "/a".
  bool ambiguous_root = false;

  // ":3" or ":prod", empty without a selector.
  std::string selector() const;
};

// Reads "NAME", "NAME:3", "NAME:label" or "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:sel]";
// an ARN for another region or account is refused, as are selectors when `allow_selector` is
// false and ARNs when `allow_arn` is false (the operations that take a plain name).
Result<ParameterReference> parse_reference(std::string_view text, std::string_view region,
                                           std::string_view account, bool allow_selector,
                                           bool allow_arn);

}  // namespace wharf::ssm
