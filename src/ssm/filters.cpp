// ParameterFilters: which keys and options each operation takes, and how they match.
#include "ssm/filters.hpp"

#include <algorithm>
#include <array>

#include "common/json.hpp"
#include "ssm/names.hpp"

namespace wharf::ssm {

namespace bj = boost::json;

namespace {

constexpr std::string_view kTagPrefix = "tag:";

std::unexpected<Error> bad_key(std::string_view key, FilterUse use) {
  std::string keys = use == FilterUse::kDescribeParameters
                         ? "Name, Path, Type, KeyId, Tier, DataType and tag:KEY"
                         : "Type, KeyId, Label, DataType and tag:KEY";
  return fail_as(ErrorCode::kInvalidParameter, "InvalidFilterKey",
                 "The filter key '" + std::string(key) + "' is not valid here: use " + keys + ".");
}

std::unexpected<Error> bad_option(const ParameterFilter& filter, std::string_view allowed) {
  return fail_as(ErrorCode::kInvalidParameter, "InvalidFilterOption",
                 "The filter option '" + filter.option + "' is not valid for the key " +
                     filter.key + ": use " + std::string(allowed) + ".");
}

std::unexpected<Error> bad_value(const ParameterFilter& filter, std::string_view why) {
  return fail_as(ErrorCode::kInvalidParameter, "InvalidFilterValue",
                 "The filter on " + filter.key + " has a bad value: " + std::string(why));
}

// The options a key takes; the first is its default. Empty: the key is not allowed.
std::vector<std::string_view> options_for(std::string_view key, FilterUse use) {
  bool describe = use == FilterUse::kDescribeParameters;
  if (key.starts_with(kTagPrefix) && key.size() > kTagPrefix.size()) return {"Equals"};
  if (key == "Type" || key == "KeyId" || key == "DataType") return {"Equals"};
  if (key == "Name" && describe) return {"Equals", "BeginsWith", "Contains"};
  if (key == "Path" && describe) return {"OneLevel", "Recursive"};
  if (key == "Tier" && describe) return {"Equals"};
  if (key == "Label" && !describe) return {"Equals"};
  return {};
}

bool in(std::string_view value, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

Status check_values(ParameterFilter& filter) {
  if (filter.values.empty()) {
    if (filter.key.starts_with(kTagPrefix)) return {};
    return bad_value(filter, "give at least one value in Values.");
  }
  for (auto& value : filter.values) {
    if (filter.key == "Type" && !in(value, {"String", "StringList", "SecureString"})) {
      return bad_value(filter, "'" + value + "' is not String, StringList or SecureString.");
    }
    if (filter.key == "Tier" && !in(value, {"Standard", "Advanced", "Intelligent-Tiering"})) {
      return bad_value(filter, "'" + value + "' is not Standard, Advanced or Intelligent-Tiering.");
    }
    if (filter.key == "Path") {
      auto path = check_path(value);
      if (!path) return bad_value(filter, path.error().message);
      value = *path;
    }
  }
  return {};
}

Result<ParameterFilter> read_filter(const bj::object& item, FilterUse use) {
  ParameterFilter filter{json::string_or(item, "Key", ""), json::string_or(item, "Option", ""),
                         json::get_strings(item, "Values")};
  auto options = options_for(filter.key, use);
  if (options.empty()) return bad_key(filter.key, use);
  if (filter.option.empty()) filter.option = std::string(options.front());
  if (std::find(options.begin(), options.end(), filter.option) == options.end()) {
    std::string allowed;
    for (auto option : options) allowed += (allowed.empty() ? "" : ", ") + std::string(option);
    return bad_option(filter, allowed);
  }
  if (auto status = check_values(filter); !status) return std::unexpected(status.error());
  return filter;
}

// DescribeParameters' older Filters: Name (a prefix), Type and KeyId.
ParameterFilters read_old_filters(const bj::array& filters) {
  ParameterFilters out;
  for (const auto& item : filters) {
    if (!item.is_object()) continue;
    std::string key = json::string_or(item.as_object(), "Key", "");
    out.push_back({key, key == "Name" ? "BeginsWith" : "Equals",
                   json::get_strings(item.as_object(), "Values")});
  }
  return out;
}

const std::string* tag_value(const Parameter& parameter, std::string_view key) {
  for (const auto& [tag_key, value] : parameter.tags) {
    if (tag_key == key) return &value;
  }
  return nullptr;
}

bool matches_value(const Parameter& parameter, const ParameterVersion& version,
                   const ParameterFilter& filter, std::string_view value) {
  const std::string& key = filter.key;
  if (key == "Name") {
    if (filter.option == "BeginsWith") return parameter.name.starts_with(value);
    if (filter.option == "Contains") return parameter.name.find(value) != std::string::npos;
    return parameter.name == value;
  }
  if (key == "Path") return under_path(parameter.name, value, filter.option == "Recursive");
  if (key == "Type") return version.type == value;
  if (key == "KeyId") return version.key_id == value;
  if (key == "Tier") return version.tier == value;
  if (key == "DataType") return version.data_type == value;
  if (key == "Label") return version.has_label(value);
  const std::string* tag = tag_value(parameter, std::string_view(key).substr(kTagPrefix.size()));
  return tag != nullptr && *tag == value;
}

bool matches(const Parameter& parameter, const ParameterVersion& version,
             const ParameterFilter& filter) {
  if (filter.values.empty()) {  // a tag filter without values: the tag is there
    return tag_value(parameter, std::string_view(filter.key).substr(kTagPrefix.size()));
  }
  return std::any_of(filter.values.begin(), filter.values.end(), [&](const std::string& value) {
    return matches_value(parameter, version, filter, value);
  });
}

}  // namespace

Result<ParameterFilters> read_filters(const bj::object& input, FilterUse use) {
  const auto* filters = json::get_array(input, "ParameterFilters");
  const auto* old_filters = json::get_array(input, "Filters");
  if (filters && old_filters) {
    return invalid(
        "You can use either Filters or ParameterFilters in a single request, not both: "
        "ParameterFilters does all that Filters does.");
  }
  if (old_filters) return read_old_filters(*old_filters);
  ParameterFilters out;
  if (filters == nullptr) return out;
  for (const auto& item : *filters) {
    if (!item.is_object()) continue;
    auto filter = read_filter(item.as_object(), use);
    if (!filter) return std::unexpected(filter.error());
    out.push_back(std::move(*filter));
  }
  return out;
}

bool under_path(std::string_view name, std::string_view path, bool recursive) {
  std::string rooted = name.starts_with('/') ? std::string(name) : "/" + std::string(name);
  std::string prefix = path == "/" ? "/" : std::string(path) + "/";
  if (!rooted.starts_with(prefix)) return false;
  return recursive || rooted.find('/', prefix.size()) == std::string::npos;
}

const ParameterVersion* select_version(const Parameter& parameter,
                                       const ParameterFilters& filters) {
  const ParameterVersion* version = &parameter.latest();
  for (const auto& filter : filters) {
    if (filter.key != "Label") continue;
    version = nullptr;
    for (const auto& label : filter.values) {
      if (const auto* labelled = parameter.find_label(label)) version = labelled;
    }
    if (version == nullptr) return nullptr;
  }
  for (const auto& filter : filters) {
    if (!matches(parameter, *version, filter)) return nullptr;
  }
  return version;
}

}  // namespace wharf::ssm
