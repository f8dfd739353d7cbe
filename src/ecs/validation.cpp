// Validation rules for clusters, tags and account settings, from the ECS documentation.
#include "ecs/validation.hpp"

#include <algorithm>
#include <set>

namespace wharf::ecs {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

namespace {

// Tag characters: letters, digits, whitespace and + - = . _ : / @ (UTF-8 letters pass through).
bool is_tag_char(unsigned char c) {
  if (c >= 0x80) return true;
  if (std::isalnum(c) || c == ' ') return true;
  return std::string_view("+-=._:/@").find(static_cast<char>(c)) != std::string_view::npos;
}

bool all_tag_chars(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return is_tag_char(static_cast<unsigned char>(c)); });
}

bool is_reserved_key(std::string_view key) {
  if (key.size() < 4) return false;
  std::string prefix(key.substr(0, 4));
  std::transform(prefix.begin(), prefix.end(), prefix.begin(), ::tolower);
  return prefix == "aws:";
}

struct SettingRule {
  std::string_view name;
  std::vector<std::string_view> values;
  std::string_view default_value;
};

const std::vector<SettingRule>& setting_rules() {
  static const std::vector<SettingRule> kRules = {
      {"serviceLongArnFormat", {"enabled", "disabled"}, "enabled"},
      {"taskLongArnFormat", {"enabled", "disabled"}, "enabled"},
      {"containerInstanceLongArnFormat", {"enabled", "disabled"}, "enabled"},
      {"awsvpcTrunking", {"enabled", "disabled"}, "disabled"},
      {"containerInsights", {"enabled", "disabled", "enhanced"}, "disabled"},
      {"fargateFIPSMode", {"enabled", "disabled"}, "disabled"},
      {"tagResourceAuthorization", {"on", "off"}, "on"},
      {"fargateTaskRetirementWaitPeriod", {"0", "7", "14"}, "7"},
      {"guardDutyActivate", {"on", "off"}, "off"},
      {"defaultLogDriverMode", {"blocking", "non-blocking"}, "non-blocking"},
      {"fargateEventWindows", {"enabled", "disabled"}, "disabled"},
  };
  return kRules;
}

const SettingRule* find_setting(std::string_view name) {
  for (const auto& rule : setting_rules()) {
    if (rule.name == name) return &rule;
  }
  return nullptr;
}

std::string join(const std::vector<std::string_view>& values) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

}  // namespace

bool is_valid_resource_name(std::string_view name) {
  return !name.empty() && name.size() <= 255 && std::all_of(name.begin(), name.end(), is_name_char);
}

Status validate_cluster_name(std::string_view name) {
  if (is_valid_resource_name(name)) return {};
  return invalid("Cluster name '" + std::string(name) +
                 "' is invalid: use up to 255 letters (uppercase and lowercase), numbers, "
                 "underscores, and hyphens.");
}

Status validate_tags(const Tags& tags, const Tags& existing) {
  std::set<std::string_view> seen;
  for (const auto& [key, value] : tags) {
    if (key.empty() || key.size() > 128) {
      return invalid("Tag key '" + key + "' must be between 1 and 128 characters long.");
    }
    if (value.size() > 256) {
      return invalid("Tag value for key '" + key + "' must be at most 256 characters long.");
    }
    if (!all_tag_chars(key) || !all_tag_chars(value)) {
      return invalid("Tag '" + key +
                     "' contains characters that are not allowed: use letters, numbers, spaces "
                     "and + - = . _ : / @.");
    }
    if (is_reserved_key(key)) {
      return invalid("Tag keys may not start with 'aws:': that prefix is reserved for AWS use.");
    }
    if (!seen.insert(key).second) {
      return invalid("Tag key '" + key + "' appears more than once in the request.");
    }
  }
  Tags merged = existing;
  merge_tags(merged, tags);
  if (merged.size() > kMaxTagsPerResource) {
    return invalid("A resource can have at most " + std::to_string(kMaxTagsPerResource) +
                   " tags; this request would leave " + std::to_string(merged.size()) + ".");
  }
  return {};
}

Status validate_tag_keys_for_removal(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (key.empty() || key.size() > 128) {
      return invalid("Tag key '" + key + "' must be between 1 and 128 characters long.");
    }
    if (is_reserved_key(key)) {
      return invalid("Tag keys may not start with 'aws:': that prefix is reserved for AWS use.");
    }
  }
  return {};
}

Status validate_cluster_settings(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [name, value] : settings) {
    if (name != "containerInsights") {
      return invalid("Cluster setting '" + name +
                     "' is not valid: the only cluster setting is "
                     "containerInsights.");
    }
    if (value != "enabled" && value != "disabled" && value != "enhanced") {
      return invalid(
          "Cluster setting containerInsights must be enabled, disabled or enhanced, "
          "not '" +
          value + "'.");
    }
  }
  return {};
}

Status validate_account_setting(std::string_view name, std::string_view value) {
  const SettingRule* rule = find_setting(name);
  if (rule == nullptr) return invalid("Unknown account setting name '" + std::string(name) + "'.");
  if (std::find(rule->values.begin(), rule->values.end(), value) != rule->values.end()) return {};
  return invalid("Account setting " + std::string(name) + " must be one of [" + join(rule->values) +
                 "], not '" + std::string(value) + "'.");
}

std::string_view default_account_setting(std::string_view name) {
  const SettingRule* rule = find_setting(name);
  return rule == nullptr ? std::string_view() : rule->default_value;
}

const std::vector<std::string_view>& account_setting_names() {
  static const std::vector<std::string_view> kNames = [] {
    std::vector<std::string_view> names;
    for (const auto& rule : setting_rules()) names.push_back(rule.name);
    return names;
  }();
  return kNames;
}

}  // namespace wharf::ecs
