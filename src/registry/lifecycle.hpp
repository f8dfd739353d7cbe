// ECR lifecycle policies: parsing and validating the policy text, and deciding which images a
// policy expires. Pure: no state, no clock of its own.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::registry {

enum class LifecycleTagStatus { kTagged, kUntagged, kAny };
enum class LifecycleCountType { kImageCountMoreThan, kSinceImagePushed };

struct LifecycleRule {
  int64_t priority = 0;  // rulePriority: unique, ≥ 1; lower numbers are evaluated first
  std::string description;
  LifecycleTagStatus tag_status = LifecycleTagStatus::kAny;
  std::vector<std::string> tag_prefixes;  // tagged only: every prefix must start some tag
  std::vector<std::string> tag_patterns;  // tagged only: every pattern must match some tag
  LifecycleCountType count_type = LifecycleCountType::kImageCountMoreThan;
  int64_t count_number = 1;  // images to keep, or days since the push
  // The only action is "expire".
};

struct LifecyclePolicy {
  std::vector<LifecycleRule> rules;  // sorted by priority
};

// Parses and validates a lifecycle policy the way ECR's PutLifecyclePolicy does. Errors are
// kInvalidParameter, worded as ECR words them: "Invalid parameter at 'LifecyclePolicyText'
// failed to satisfy constraint: 'Lifecycle policy validation failure: <reason>'". Checked:
//  - JSON object with a non-empty "rules" array; unknown members anywhere are refused
//  - rulePriority an integer ≥ 1, unique across rules
//  - selection.tagStatus tagged | untagged | any; tagged needs exactly one of tagPrefixList and
//    tagPatternList (non-empty, non-empty strings), untagged and any allow neither; a pattern
//    has at most 4 '*' wildcards; no two rules select the same prefix or pattern set
//  - countType imageCountMoreThan (no countUnit) | sinceImagePushed (countUnit "days");
//    countNumber an integer ≥ 1
//  - action.type "expire"
//  - at most one rule selects untagged images, and a tagStatus "any" rule has the highest
//    rulePriority of all
Result<LifecyclePolicy> parse_lifecycle_policy(std::string_view text);

// What evaluation needs to know of an image.
struct LifecycleImage {
  std::string digest;
  std::vector<std::string> tags;
  TimePoint pushed_at;
};

struct LifecycleExpiration {
  LifecycleImage image;
  int64_t rule_priority = 0;  // the rule that expired it (ECR appliedRulePriority)
};

// The images the policy expires at `now`, oldest first. ECR's rules of evaluation:
//  - rules apply in priority order; each selects the images its tag status and tag filters
//    match, newest first;
//  - imageCountMoreThan N marks all but the newest N of its selection; sinceImagePushed N marks
//    those pushed more than N days before `now`;
//  - an image is expired by at most one rule, and an image that a higher-priority rule selected
//    (whether or not that rule expired it) is never expired by a lower-priority one. Lower
//    rules still count such images in their selection, "as if they hadn't been expired".
std::vector<LifecycleExpiration> evaluate_lifecycle_policy(const LifecyclePolicy& policy,
                                                           std::span<const LifecycleImage> images,
                                                           TimePoint now);

// Whether `tag` matches `pattern` in full, '*' matching any run of characters (also none).
bool lifecycle_pattern_matches(std::string_view pattern, std::string_view tag);

}  // namespace wharf::registry
