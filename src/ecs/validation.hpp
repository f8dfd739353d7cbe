// Pure validation of ECS requests other than task definitions (see task_definition_validation).
#pragma once

#include <string_view>

#include "common/error.hpp"
#include "ecs/model.hpp"

namespace wharf::ecs {

inline constexpr std::size_t kMaxTagsPerResource = 50;
// Custom (not "ecs.") attributes a container instance may carry, and attributes per
// PutAttributes / DeleteAttributes call.
inline constexpr std::size_t kMaxCustomAttributes = 10;
inline constexpr std::size_t kMaxAttributesPerCall = 10;

// A letter, digit, hyphen or underscore: what ECS names are made of.
bool is_name_char(char c);
// Names of clusters, families, containers: 1–255 letters, digits, hyphens and underscores.
bool is_valid_resource_name(std::string_view name);
Status validate_cluster_name(std::string_view name);
// Key 1–128 and value 0–256 characters of letters, digits, spaces and + - = . _ : / @; no "aws:"
// prefix on keys (any case); no repeated keys; at most `kMaxTagsPerResource` after merging into
// `existing`.
Status validate_tags(const Tags& tags, const Tags& existing = {});
Status validate_tag_keys_for_removal(const std::vector<std::string>& keys);
// Cluster settings: name containerInsights, value enabled | disabled | enhanced.
Status validate_cluster_settings(const std::vector<std::pair<std::string, std::string>>& settings);
// Account settings: the value must be one the setting accepts.
Status validate_account_setting(std::string_view name, std::string_view value);
// The value a setting has when nobody set it.
std::string_view default_account_setting(std::string_view name);
// Every setting name of the model, in the model's order.
const std::vector<std::string_view>& account_setting_names();

// Attribute names: 1–128 letters, digits, - _ / \ and periods. Values, when present: 1–128
// letters, digits, - _ . @ / \ : and spaces, not starting or ending with a space.
Status validate_attribute(const Attribute& attribute);
// Names starting "ecs." or "com.amazonaws.ecs." are the agent's (ecs.os-type,
// com.amazonaws.ecs.capability.*); the rest are custom.
bool is_custom_attribute(std::string_view name);
// kAttributeLimitExceeded when more than kMaxCustomAttributes custom attributes.
Status validate_custom_attribute_count(const Attributes& attributes);
// What an agent registers: unique names, a known type each, CPU and MEMORY as non-negative
// INTEGERs, PORTS and PORTS_UDP as sets of port numbers.
Status validate_total_resources(const std::vector<Resource>& resources);

}  // namespace wharf::ecs
