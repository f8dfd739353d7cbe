// ECR request validation rules, from the ECR API reference.
#include "registry/ecr_validation.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

#include "oci/digest.hpp"

namespace wharf::registry {

namespace {

constexpr std::string_view kRepositoryNamePattern =
    "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*";

// Letters, digits, spaces and + - = . _ : / @; UTF-8 letters pass through.
bool is_tag_char(unsigned char c) {
  if (c >= 0x80 || std::isalnum(c) || c == ' ') return true;
  return std::string_view("+-=._:/@").find(static_cast<char>(c)) != std::string_view::npos;
}

bool all_tag_chars(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return is_tag_char(static_cast<unsigned char>(c)); });
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
std::size_t character_count(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool is_reserved_key(std::string_view key) {
  if (key.size() < 4) return false;
  std::string prefix(key.substr(0, 4));
  std::transform(prefix.begin(), prefix.end(), prefix.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return prefix == "aws:";
}

std::unexpected<Error> tag_error(std::string message) {
  return fail(ErrorCode::kInvalidTagParameter, std::move(message));
}

Status validate_tag_key(std::string_view key) {
  if (key.empty() || character_count(key) > 128) {
    return tag_error("Tag key '" + std::string(key) + "' must be 1 to 128 characters long.");
  }
  if (!all_tag_chars(key)) {
    return tag_error("Tag key '" + std::string(key) +
                     "' may contain only letters, digits, spaces and + - = . _ : / @.");
  }
  if (is_reserved_key(key)) {
    return tag_error("Tag key '" + std::string(key) +
                     "' uses the reserved prefix 'aws:', which is for AWS use only.");
  }
  return {};
}

bool is_filter_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '*' ||
         c == '-';
}

}  // namespace

Status validate_ecr_repository_name(std::string_view name) {
  if (validate_repository_name(name)) return {};
  return invalid(
      "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must "
      "satisfy regular expression '" +
      std::string(kRepositoryNamePattern) + "''");
}

Status validate_ecr_tags(const EcrTags& tags, const std::map<std::string, std::string>& existing) {
  std::set<std::string_view> seen;
  for (const auto& [key, value] : tags) {
    if (auto status = validate_tag_key(key); !status) return status;
    if (character_count(value) > 256) {
      return tag_error("The value of tag '" + key + "' must be at most 256 characters long.");
    }
    if (!all_tag_chars(value)) {
      return tag_error("The value of tag '" + key +
                       "' may contain only letters, digits, spaces and + - = . _ : / @.");
    }
    if (!seen.insert(key).second) return tag_error("Tag key '" + key + "' is given twice.");
  }
  std::size_t total = existing.size();
  for (const auto& [key, value] : tags) total += existing.contains(key) ? 0 : 1;
  if (total > kMaxEcrTagsPerResource) {
    return fail(ErrorCode::kTooManyTags,
                "A repository can have at most 50 tags; this request would leave it with " +
                    std::to_string(total) + ".");
  }
  return {};
}

Status validate_ecr_tag_keys(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (auto status = validate_tag_key(key); !status) return status;
  }
  return {};
}

Status validate_tag_mutability(std::string_view mutability,
                               const std::vector<std::string>& exclusion_filters) {
  bool with_exclusion =
      mutability == kImmutableWithExclusion || mutability == kMutableWithExclusion;
  if (!with_exclusion) {
    if (!exclusion_filters.empty()) {
      return invalid(
          "imageTagMutabilityExclusionFilters can only be given with "
          "IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION.");
    }
    return {};
  }
  if (exclusion_filters.empty() || exclusion_filters.size() > 5) {
    return invalid(std::string(mutability) + " needs 1 to 5 imageTagMutabilityExclusionFilters.");
  }
  for (const auto& filter : exclusion_filters) {
    if (filter.empty() || filter.size() > 128 ||
        !std::all_of(filter.begin(), filter.end(), is_filter_char)) {
      return invalid(
          "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to "
          "satisfy constraint: 'filter '" +
          filter + "' must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$''");
    }
  }
  return {};
}

Status validate_repository_policy(std::string_view policy_text) {
  auto refuse = [](std::string why) {
    return invalid(
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid "
        "repository policy provided: " +
        why + "'");
  };
  boost::system::error_code parse_error;
  auto document = boost::json::parse(policy_text, parse_error);
  if (parse_error) return refuse("not valid JSON");
  if (!document.is_object()) return refuse("the policy must be a JSON object");
  const auto* statement = document.as_object().if_contains("Statement");
  if (statement == nullptr) return refuse("the policy has no Statement");
  std::vector<const boost::json::value*> statements;
  if (statement->is_object()) statements.push_back(statement);
  if (statement->is_array()) {
    for (const auto& item : statement->as_array()) statements.push_back(&item);
  }
  if (statements.empty()) return refuse("Statement must be an object or a non-empty list");
  for (const auto* item : statements) {
    if (!item->is_object()) return refuse("each Statement must be an object");
    const auto* effect = item->as_object().if_contains("Effect");
    if (effect == nullptr || !effect->is_string() ||
        (effect->as_string() != "Allow" && effect->as_string() != "Deny")) {
      return refuse("each Statement needs an Effect of Allow or Deny");
    }
  }
  return {};
}

std::expected<ImageSelector, ImageIdFailure> read_image_id(std::optional<std::string> digest,
                                                           std::optional<std::string> tag) {
  if (!digest && !tag) {
    return std::unexpected(ImageIdFailure{
        "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"});
  }
  ImageSelector selector;
  if (digest) {
    auto parsed = oci::parse_digest(*digest);
    if (!parsed) {
      return std::unexpected(ImageIdFailure{
          "InvalidImageDigest",
          "Invalid request parameters: image digest '" + *digest + "' is not valid"});
    }
    selector.digest = *parsed;
  }
  if (tag) {
    if (!validate_tag(*tag)) {
      return std::unexpected(ImageIdFailure{
          "InvalidImageTag", "Invalid request parameters: image tag '" + *tag + "' is not valid"});
    }
    selector.tag = *tag;
  }
  return selector;
}

}  // namespace wharf::registry
