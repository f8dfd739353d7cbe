// Validation rules for clusters, tags and account settings, from the ECS documentation.
#include "ecs/validation.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
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

namespace {

bool is_attribute_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '/' ||
         c == '\\' || c == '.';
}

bool is_attribute_value_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-_.@/\\: ").find(c) != std::string_view::npos;
}

// A port number as ECS writes it in PORTS: decimal, 0–65535.
bool is_port_text(std::string_view text) {
  if (text.empty() || text.size() > 5) return false;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return std::stoi(std::string(text)) <= 65535;
}

}  // namespace

Status validate_attribute(const Attribute& attribute) {
  const std::string& name = attribute.name;
  if (name.empty() || name.size() > 128 ||
      !std::all_of(name.begin(), name.end(), is_attribute_name_char)) {
    return invalid("Attribute name '" + name +
                   "' is invalid: use 1 to 128 letters, numbers, hyphens, underscores, forward "
                   "slashes, back slashes or periods.");
  }
  if (!attribute.value) return {};
  const std::string& value = *attribute.value;
  if (value.empty() || value.size() > 128 ||
      !std::all_of(value.begin(), value.end(), is_attribute_value_char)) {
    return invalid("Value of attribute '" + name +
                   "' is invalid: use 1 to 128 letters, numbers, hyphens, underscores, periods, "
                   "at signs, forward slashes, back slashes, colons or spaces.");
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return invalid("Value of attribute '" + name + "' may not start or end with a space.");
  }
  return {};
}

bool is_custom_attribute(std::string_view name) {
  // The agent reports both "ecs.*" and the older "com.amazonaws.ecs.*" capability names.
  return !name.starts_with("ecs.") && !name.starts_with("com.amazonaws.ecs.");
}

Status validate_custom_attribute_count(const Attributes& attributes) {
  auto custom = std::count_if(attributes.begin(), attributes.end(), [](const Attribute& attribute) {
    return is_custom_attribute(attribute.name);
  });
  if (static_cast<std::size_t>(custom) <= kMaxCustomAttributes) return {};
  return fail(ErrorCode::kAttributeLimitExceeded,
              "A container instance can have at most " + std::to_string(kMaxCustomAttributes) +
                  " custom attributes; this request would leave " + std::to_string(custom) +
                  ". Remove some with DeleteAttributes first.");
}

Status validate_total_resources(const std::vector<Resource>& resources) {
  std::set<std::string_view> seen;
  for (const auto& resource : resources) {
    if (resource.name.empty()) return invalid("Every resource needs a name.");
    if (!seen.insert(resource.name).second) {
      return invalid("Resource " + resource.name + " appears more than once.");
    }
    const std::string_view types[] = {"INTEGER", "LONG", "DOUBLE", "STRINGSET"};
    if (std::find(std::begin(types), std::end(types), resource.type) == std::end(types)) {
      return invalid("Resource " + resource.name + " has type '" + resource.type +
                     "'; use INTEGER, LONG, DOUBLE or STRINGSET.");
    }
    bool counted = resource.name == "CPU" || resource.name == "MEMORY" || resource.name == "GPU";
    if (counted && (resource.type != "INTEGER" || resource.integer_value < 0)) {
      return invalid("Resource " + resource.name + " must be a non-negative INTEGER.");
    }
    bool ports = resource.name == "PORTS" || resource.name == "PORTS_UDP";
    if (ports && resource.type != "STRINGSET") {
      return invalid("Resource " + resource.name + " must be a STRINGSET of port numbers.");
    }
    for (const auto& port : ports ? resource.string_set_value : std::vector<std::string>{}) {
      if (!is_port_text(port)) {
        return invalid("Resource " + resource.name + " lists '" + port +
                       "', which is not a port number (0-65535).");
      }
    }
  }
  for (std::string_view required : {"CPU", "MEMORY"}) {
    if (!seen.contains(required)) {
      return invalid("totalResources must include " + std::string(required) + ".");
    }
  }
  return {};
}

}  // namespace wharf::ecs
