// Pure validation of ECR requests, beyond what the service model checks (lengths, enums,
// types): names, tags, image identifiers, tag mutability filters and policy texts.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "registry/registry_state.hpp"

namespace wharf::registry {

inline constexpr std::size_t kMaxEcrTagsPerResource = 50;

using EcrTags = std::vector<std::pair<std::string, std::string>>;

// The model's pattern for repositoryName, in ECR's words when it does not match.
Status validate_ecr_repository_name(std::string_view name);

// Resource tags: key 1–128 and value 0–256 characters of letters, digits, spaces and
// _ . : / = + - @; no "aws:" prefix (any case); no key twice (kInvalidTagParameter). At most 50
// after merging into `existing` (kTooManyTags).
Status validate_ecr_tags(const EcrTags& tags, const std::map<std::string, std::string>& existing);
Status validate_ecr_tag_keys(const std::vector<std::string>& keys);

// imageTagMutability with its exclusion filters: the *_WITH_EXCLUSION values need 1–5
// WILDCARD filters of [0-9a-zA-Z._*-]{1,128}; the others allow none. kInvalidParameter.
Status validate_tag_mutability(std::string_view mutability,
                               const std::vector<std::string>& exclusion_filters);

// A repository policy: a JSON object with a Statement (an object or a non-empty list of
// objects), each with an Effect of Allow or Deny. kInvalidParameter.
Status validate_repository_policy(std::string_view policy_text);

// Why an image identifier cannot name an image, as BatchGetImage / BatchDeleteImage report it.
struct ImageIdFailure {
  std::string code;  // ECR ImageFailureCode: MissingDigestAndTag, InvalidImageDigest, …
  std::string reason;
};

// Reads an ECR ImageIdentifier {imageDigest, imageTag} into a selector.
std::expected<ImageSelector, ImageIdFailure> read_image_id(std::optional<std::string> digest,
                                                           std::optional<std::string> tag);

}  // namespace wharf::registry
