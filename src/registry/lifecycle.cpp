// Lifecycle policy parsing, validation and evaluation.
#include "registry/lifecycle.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <map>
#include <set>

namespace wharf::registry {

namespace bj = boost::json;

namespace {

constexpr int kMaxWildcardsPerPattern = 4;

std::unexpected<Error> policy_error(std::string reason) {
  return invalid(
      "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle "
      "policy validation failure: " +
      reason + "'");
}

// The first member of `object` not among `allowed`, if any.
std::optional<std::string> unknown_member(const bj::object& object,
                                          std::initializer_list<std::string_view> allowed) {
  for (const auto& member : object) {
    if (std::find(allowed.begin(), allowed.end(), member.key()) == allowed.end()) {
      return std::string(member.key());
    }
  }
  return std::nullopt;
}

Result<int64_t> read_positive_integer(const bj::object& object, std::string_view key,
                                      std::string_view where) {
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return policy_error(std::string(where) + " is missing required property \"" + std::string(key) +
                        "\"");
  }
  int64_t number = 0;
  if (value->is_int64()) {
    number = value->as_int64();
  } else if (value->is_uint64() && value->as_uint64() <= INT32_MAX) {
    number = static_cast<int64_t>(value->as_uint64());
  } else {
    return policy_error(std::string(where) + " \"" + std::string(key) +
                        "\" must be an integer, got " + bj::serialize(*value));
  }
  if (number < 1 || number > INT32_MAX) {
    return policy_error(std::string(where) + " \"" + std::string(key) +
                        "\" must be an integer from 1 to 2147483647, got " +
                        std::to_string(number));
  }
  return number;
}

Result<std::string> read_string(const bj::object& object, std::string_view key,
                                std::string_view where) {
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return policy_error(std::string(where) + " is missing required property \"" + std::string(key) +
                        "\"");
  }
  if (!value->is_string()) {
    return policy_error(std::string(where) + " \"" + std::string(key) + "\" must be a string");
  }
  return std::string(value->as_string());
}

// A tagPrefixList or tagPatternList: absent → empty.
Result<std::vector<std::string>> read_tag_list(const bj::object& selection, std::string_view key,
                                               std::string_view where) {
  std::vector<std::string> list;
  const bj::value* value = selection.if_contains(key);
  if (value == nullptr || value->is_null()) return list;
  if (!value->is_array()) {
    return policy_error(std::string(where) + " \"" + std::string(key) +
                        "\" must be a list of strings");
  }
  for (const auto& item : value->as_array()) {
    if (!item.is_string() || item.as_string().empty()) {
      return policy_error(std::string(where) + " \"" + std::string(key) +
                          "\" must hold non-empty strings");
    }
    list.emplace_back(item.as_string());
  }
  if (list.empty()) {
    return policy_error(std::string(where) + " \"" + std::string(key) + "\" must not be empty");
  }
  return list;
}

Status read_selection(const bj::object& selection, std::string_view where, LifecycleRule& rule) {
  if (auto unknown =
          unknown_member(selection, {"tagStatus", "tagPrefixList", "tagPatternList", "countType",
                                     "countUnit", "countNumber", "storageClass"})) {
    return policy_error(std::string(where) + " selection has an unknown property \"" + *unknown +
                        "\"");
  }
  auto tag_status = read_string(selection, "tagStatus", std::string(where) + " selection");
  if (!tag_status) return std::unexpected(tag_status.error());
  if (*tag_status == "tagged") {
    rule.tag_status = LifecycleTagStatus::kTagged;
  } else if (*tag_status == "untagged") {
    rule.tag_status = LifecycleTagStatus::kUntagged;
  } else if (*tag_status == "any") {
    rule.tag_status = LifecycleTagStatus::kAny;
  } else {
    return policy_error(std::string(where) + " \"tagStatus\" must be one of tagged, untagged, " +
                        "any, got \"" + *tag_status + "\"");
  }

  auto prefixes = read_tag_list(selection, "tagPrefixList", where);
  if (!prefixes) return std::unexpected(prefixes.error());
  auto patterns = read_tag_list(selection, "tagPatternList", where);
  if (!patterns) return std::unexpected(patterns.error());
  bool has_prefixes = !prefixes->empty();
  bool has_patterns = !patterns->empty();
  if (rule.tag_status == LifecycleTagStatus::kTagged && has_prefixes == has_patterns) {
    return policy_error(std::string(where) +
                        " with \"tagStatus\" \"tagged\" must specify exactly one of "
                        "\"tagPrefixList\" and \"tagPatternList\"");
  }
  if (rule.tag_status != LifecycleTagStatus::kTagged && (has_prefixes || has_patterns)) {
    return policy_error(std::string(where) + " with \"tagStatus\" \"" + *tag_status +
                        "\" must not specify \"tagPrefixList\" or \"tagPatternList\"");
  }
  for (const auto& pattern : *patterns) {
    if (std::count(pattern.begin(), pattern.end(), '*') > kMaxWildcardsPerPattern) {
      return policy_error(std::string(where) + " tag pattern \"" + pattern +
                          "\" has more than 4 wildcards (*)");
    }
  }
  rule.tag_prefixes = std::move(*prefixes);
  rule.tag_patterns = std::move(*patterns);

  if (const auto* storage = selection.if_contains("storageClass");
      storage != nullptr && !(storage->is_string() && storage->as_string() == "standard")) {
    return policy_error(std::string(where) +
                        " \"storageClass\" must be \"standard\": Wharf has no archive storage");
  }

  auto count_type = read_string(selection, "countType", std::string(where) + " selection");
  if (!count_type) return std::unexpected(count_type.error());
  const bj::value* count_unit = selection.if_contains("countUnit");
  bool has_count_unit = count_unit != nullptr && !count_unit->is_null();
  if (*count_type == "imageCountMoreThan") {
    rule.count_type = LifecycleCountType::kImageCountMoreThan;
    if (has_count_unit) {
      return policy_error(std::string(where) +
                          " \"countUnit\" must not be specified when \"countType\" is "
                          "\"imageCountMoreThan\"");
    }
  } else if (*count_type == "sinceImagePushed") {
    rule.count_type = LifecycleCountType::kSinceImagePushed;
    if (!has_count_unit || !count_unit->is_string() || count_unit->as_string() != "days") {
      return policy_error(std::string(where) +
                          " \"countUnit\" must be \"days\" when \"countType\" is "
                          "\"sinceImagePushed\"");
    }
  } else if (*count_type == "sinceImagePulled" || *count_type == "sinceImageTransitioned") {
    return policy_error(std::string(where) + " \"countType\" \"" + *count_type +
                        "\" is not supported; use imageCountMoreThan or sinceImagePushed");
  } else {
    return policy_error(std::string(where) +
                        " \"countType\" must be imageCountMoreThan or sinceImagePushed, got \"" +
                        *count_type + "\"");
  }

  auto count_number = read_positive_integer(selection, "countNumber", where);
  if (!count_number) return std::unexpected(count_number.error());
  rule.count_number = *count_number;
  return {};
}

Status read_action(const bj::object& action, std::string_view where) {
  if (auto unknown = unknown_member(action, {"type", "targetStorageClass"})) {
    return policy_error(std::string(where) + " action has an unknown property \"" + *unknown +
                        "\"");
  }
  auto type = read_string(action, "type", std::string(where) + " action");
  if (!type) return std::unexpected(type.error());
  if (*type != "expire") {
    return policy_error(std::string(where) + " action \"type\" must be \"expire\", got \"" + *type +
                        "\"");
  }
  if (action.contains("targetStorageClass")) {
    return policy_error(std::string(where) +
                        " action \"targetStorageClass\" is only for transition actions");
  }
  return {};
}

Result<LifecycleRule> read_rule(const bj::value& value, std::size_t rule_idx) {
  std::string where = "rules[" + std::to_string(rule_idx) + "]";
  if (!value.is_object()) return policy_error(where + " must be an object");
  const bj::object& object = value.as_object();
  if (auto unknown =
          unknown_member(object, {"rulePriority", "description", "selection", "action"})) {
    return policy_error(where + " has an unknown property \"" + *unknown + "\"");
  }
  LifecycleRule rule;
  auto priority = read_positive_integer(object, "rulePriority", where);
  if (!priority) return std::unexpected(priority.error());
  rule.priority = *priority;
  where = "rule with rulePriority " + std::to_string(rule.priority);
  if (const auto* description = object.if_contains("description");
      description != nullptr && !description->is_null()) {
    if (!description->is_string()) return policy_error(where + " \"description\" must be a string");
    rule.description = std::string(description->as_string());
  }
  const auto* selection = object.if_contains("selection");
  if (selection == nullptr || !selection->is_object()) {
    return policy_error(where + " must have a \"selection\" object");
  }
  if (auto status = read_selection(selection->as_object(), where, rule); !status) {
    return std::unexpected(status.error());
  }
  const auto* action = object.if_contains("action");
  if (action == nullptr || !action->is_object()) {
    return policy_error(where + " must have an \"action\" object");
  }
  if (auto status = read_action(action->as_object(), where); !status) {
    return std::unexpected(status.error());
  }
  return rule;
}

// Rules that only make sense together: unique priorities, one untagged rule, "any" last, no
// two rules with the same tag filters.
Status check_rule_set(const std::vector<LifecycleRule>& rules) {
  for (std::size_t rule_idx = 1; rule_idx < rules.size(); ++rule_idx) {
    if (rules[rule_idx].priority == rules[rule_idx - 1].priority) {
      return policy_error("rulePriority " + std::to_string(rules[rule_idx].priority) +
                          " is used by more than one rule; each rule needs a unique priority");
    }
  }
  auto untagged_rules = std::count_if(rules.begin(), rules.end(), [](const LifecycleRule& rule) {
    return rule.tag_status == LifecycleTagStatus::kUntagged;
  });
  if (untagged_rules > 1) {
    return policy_error("only one rule may have \"tagStatus\" \"untagged\"");
  }
  for (std::size_t rule_idx = 0; rule_idx + 1 < rules.size(); ++rule_idx) {
    if (rules[rule_idx].tag_status == LifecycleTagStatus::kAny) {
      return policy_error("the rule with \"tagStatus\" \"any\" (rulePriority " +
                          std::to_string(rules[rule_idx].priority) +
                          ") must have the highest rulePriority of all rules");
    }
  }
  std::set<std::pair<std::set<std::string>, std::set<std::string>>> filters;
  for (const auto& rule : rules) {
    if (rule.tag_status != LifecycleTagStatus::kTagged) continue;
    std::set<std::string> prefixes(rule.tag_prefixes.begin(), rule.tag_prefixes.end());
    std::set<std::string> patterns(rule.tag_patterns.begin(), rule.tag_patterns.end());
    if (!filters.emplace(std::move(prefixes), std::move(patterns)).second) {
      return policy_error("the rule with rulePriority " + std::to_string(rule.priority) +
                          " repeats the tag filters of an earlier rule; each rule needs a "
                          "unique set of tag prefixes or patterns");
    }
  }
  return {};
}

bool any_tag_has_prefix(const std::vector<std::string>& tags, std::string_view prefix) {
  return std::any_of(tags.begin(), tags.end(),
                     [&](const std::string& tag) { return tag.starts_with(prefix); });
}

bool any_tag_matches(const std::vector<std::string>& tags, std::string_view pattern) {
  return std::any_of(tags.begin(), tags.end(), [&](const std::string& tag) {
    return lifecycle_pattern_matches(pattern, tag);
  });
}

bool rule_selects(const LifecycleRule& rule, const LifecycleImage& image) {
  switch (rule.tag_status) {
    case LifecycleTagStatus::kAny:
      return true;
    case LifecycleTagStatus::kUntagged:
      return image.tags.empty();
    case LifecycleTagStatus::kTagged:
      break;
  }
  if (image.tags.empty()) return false;
  return std::all_of(
             rule.tag_prefixes.begin(), rule.tag_prefixes.end(),
             [&](const std::string& prefix) { return any_tag_has_prefix(image.tags, prefix); }) &&
         std::all_of(
             rule.tag_patterns.begin(), rule.tag_patterns.end(),
             [&](const std::string& pattern) { return any_tag_matches(image.tags, pattern); });
}

// Whether the rule's count criterion marks the image at `rank` (0 = newest) of its selection.
bool rule_marks(const LifecycleRule& rule, const LifecycleImage& image, std::size_t rank,
                TimePoint now) {
  if (rule.count_type == LifecycleCountType::kImageCountMoreThan) {
    return rank >= static_cast<std::size_t>(rule.count_number);
  }
  return now - image.pushed_at > std::chrono::days(rule.count_number);
}

}  // namespace

bool lifecycle_pattern_matches(std::string_view pattern, std::string_view tag) {
  // Classic wildcard matching with one backtrack point: the last '*' seen.
  std::size_t pattern_pos = 0;
  std::size_t tag_pos = 0;
  std::size_t star_pos = std::string_view::npos;
  std::size_t star_tag_pos = 0;
  while (tag_pos < tag.size()) {
    if (pattern_pos < pattern.size() && pattern[pattern_pos] == '*') {
      star_pos = pattern_pos++;
      star_tag_pos = tag_pos;
    } else if (pattern_pos < pattern.size() && pattern[pattern_pos] == tag[tag_pos]) {
      ++pattern_pos;
      ++tag_pos;
    } else if (star_pos != std::string_view::npos) {
      pattern_pos = star_pos + 1;
      tag_pos = ++star_tag_pos;
    } else {
      return false;
    }
  }
  while (pattern_pos < pattern.size() && pattern[pattern_pos] == '*') ++pattern_pos;
  return pattern_pos == pattern.size();
}

Result<LifecyclePolicy> parse_lifecycle_policy(std::string_view text) {
  boost::system::error_code parse_error;
  bj::value document = bj::parse(text, parse_error);
  if (parse_error) return policy_error("the policy is not valid JSON: " + parse_error.message());
  if (!document.is_object()) return policy_error("the policy must be a JSON object");
  const bj::object& root = document.as_object();
  if (auto unknown = unknown_member(root, {"rules"})) {
    return policy_error("the policy has an unknown property \"" + *unknown + "\"");
  }
  const auto* rules = root.if_contains("rules");
  if (rules == nullptr || !rules->is_array()) {
    return policy_error("the policy must have a \"rules\" list");
  }
  if (rules->as_array().empty()) return policy_error("\"rules\" must hold at least one rule");

  LifecyclePolicy policy;
  for (std::size_t rule_idx = 0; rule_idx < rules->as_array().size(); ++rule_idx) {
    auto rule = read_rule(rules->as_array()[rule_idx], rule_idx);
    if (!rule) return std::unexpected(rule.error());
    policy.rules.push_back(std::move(*rule));
  }
  std::stable_sort(
      policy.rules.begin(), policy.rules.end(),
      [](const LifecycleRule& a, const LifecycleRule& b) { return a.priority < b.priority; });
  if (auto status = check_rule_set(policy.rules); !status) return std::unexpected(status.error());
  return policy;
}

std::vector<LifecycleExpiration> evaluate_lifecycle_policy(const LifecyclePolicy& policy,
                                                           std::span<const LifecycleImage> images,
                                                           TimePoint now) {
  // Newest first; the digest breaks ties so that evaluation is deterministic.
  std::vector<std::size_t> newest_first(images.size());
  for (std::size_t image_idx = 0; image_idx < images.size(); ++image_idx) {
    newest_first[image_idx] = image_idx;
  }
  std::sort(newest_first.begin(), newest_first.end(), [&](std::size_t a, std::size_t b) {
    if (images[a].pushed_at != images[b].pushed_at) {
      return images[a].pushed_at > images[b].pushed_at;
    }
    return images[a].digest < images[b].digest;
  });

  std::vector<bool> selected_earlier(images.size(), false);
  std::map<std::size_t, int64_t> expired_by;  // image index → rule priority
  for (const auto& rule : policy.rules) {
    std::vector<std::size_t> selection;
    for (std::size_t image_idx : newest_first) {
      if (rule_selects(rule, images[image_idx])) selection.push_back(image_idx);
    }
    for (std::size_t rank = 0; rank < selection.size(); ++rank) {
      std::size_t image_idx = selection[rank];
      if (selected_earlier[image_idx]) continue;
      if (rule_marks(rule, images[image_idx], rank, now)) expired_by[image_idx] = rule.priority;
    }
    for (std::size_t image_idx : selection) selected_earlier[image_idx] = true;
  }

  std::vector<LifecycleExpiration> expired;
  for (auto image_idx = newest_first.rbegin(); image_idx != newest_first.rend(); ++image_idx) {
    auto found = expired_by.find(*image_idx);
    if (found != expired_by.end()) expired.push_back({images[*image_idx], found->second});
  }
  return expired;
}

}  // namespace wharf::registry
