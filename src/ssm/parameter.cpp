// Parameter: versions and labels, the stored form and the wire shapes.
#include "ssm/parameter.hpp"

#include <boost/json.hpp>

#include <algorithm>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "ssm/names.hpp"

namespace wharf::ssm {

namespace bj = boost::json;

namespace {

// What ParameterMetadata and ParameterHistory share.
bj::object version_summary(const Parameter& parameter, const ParameterVersion& version) {
  bj::object out{{"Name", parameter.name}, {"Type", version.type}};
  if (!version.key_id.empty()) out["KeyId"] = version.key_id;
  out["LastModifiedDate"] = epoch_seconds(version.modified);
  out["LastModifiedUser"] = version.modified_user;
  if (!version.description.empty()) out["Description"] = version.description;
  if (!version.allowed_pattern.empty()) out["AllowedPattern"] = version.allowed_pattern;
  out["Version"] = version.version;
  out["Tier"] = version.tier;
  out["Policies"] = bj::array{};
  out["DataType"] = version.data_type;
  return out;
}

bj::object version_to_store(const ParameterVersion& version) {
  return bj::object{{"version", version.version},
                    {"value", version.value},
                    {"type", version.type},
                    {"keyId", version.key_id},
                    {"description", version.description},
                    {"allowedPattern", version.allowed_pattern},
                    {"tier", version.tier},
                    {"dataType", version.data_type},
                    {"labels", json::strings_array(version.labels)},
                    {"modified", epoch_seconds(version.modified)},
                    {"modifiedUser", version.modified_user}};
}

ParameterVersion version_from_store(const bj::object& stored) {
  ParameterVersion version;
  version.version = json::get_int(stored, "version").value_or(0);
  version.value = json::string_or(stored, "value", "");
  version.type = json::string_or(stored, "type", "String");
  version.key_id = json::string_or(stored, "keyId", "");
  version.description = json::string_or(stored, "description", "");
  version.allowed_pattern = json::string_or(stored, "allowedPattern", "");
  version.tier = json::string_or(stored, "tier", "Standard");
  version.data_type = json::string_or(stored, "dataType", "text");
  version.labels = json::get_strings(stored, "labels");
  if (const auto* modified = stored.if_contains("modified"); modified && modified->is_number()) {
    version.modified = from_epoch_seconds(modified->to_number<double>());
  }
  version.modified_user = json::string_or(stored, "modifiedUser", "");
  return version;
}

}  // namespace

bool ParameterVersion::has_label(std::string_view label) const {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

const ParameterVersion* Parameter::find_version(std::int64_t number) const {
  for (const auto& version : versions) {
    if (version.version == number) return &version;
  }
  return nullptr;
}

const ParameterVersion* Parameter::find_label(std::string_view label) const {
  for (const auto& version : versions) {
    if (version.has_label(label)) return &version;
  }
  return nullptr;
}

Status Parameter::add_version(ParameterVersion version) {
  if (versions.size() >= kMaxVersions) {
    if (!versions.front().labels.empty()) {
      return fail_as(ErrorCode::kLimitExceeded, "ParameterMaxVersionLimitExceeded",
                     "Parameter Store keeps the " + std::to_string(kMaxVersions) +
                         " most recent versions of " + name + ", and its oldest, version " +
                         std::to_string(versions.front().version) +
                         ", has a label, so it cannot be deleted to make room. Move or remove "
                         "the label with UnlabelParameterVersion first.");
    }
    versions.erase(versions.begin());
  }
  version.version = versions.empty() ? 1 : versions.back().version + 1;
  versions.push_back(std::move(version));
  return {};
}

Result<std::vector<std::string>> Parameter::attach_labels(std::int64_t number,
                                                          const std::vector<std::string>& labels) {
  auto target =
      std::find_if(versions.begin(), versions.end(),
                   [&](const ParameterVersion& version) { return version.version == number; });
  std::vector<std::string> invalid_labels;
  std::vector<std::string> attached = target->labels;
  for (const auto& label : labels) {
    if (!is_valid_label(label)) {
      invalid_labels.push_back(label);
      continue;
    }
    if (std::find(attached.begin(), attached.end(), label) == attached.end()) {
      attached.push_back(label);
    }
  }
  if (attached.size() > kMaxLabelsPerVersion) {
    return fail_as(ErrorCode::kLimitExceeded, "ParameterVersionLabelLimitExceeded",
                   "Version " + std::to_string(number) + " of " + name + " would have " +
                       std::to_string(attached.size()) + " labels; a version may have at most " +
                       std::to_string(kMaxLabelsPerVersion) +
                       ". Remove some with UnlabelParameterVersion first.");
  }
  for (auto& version : versions) {
    if (version.version == number) continue;
    std::erase_if(version.labels, [&](const std::string& label) {
      return std::find(attached.begin(), attached.end(), label) != attached.end();
    });
  }
  target->labels = std::move(attached);
  return invalid_labels;
}

std::string parameter_to_store(const Parameter& parameter) {
  bj::array versions;
  for (const auto& version : parameter.versions) versions.push_back(version_to_store(version));
  bj::object out{{"name", parameter.name},
                 {"arn", parameter.arn},
                 {"tags", tags_to_wire(parameter.tags)},
                 {"versions", std::move(versions)}};
  return bj::serialize(out);
}

Result<Parameter> parameter_from_store(std::string_view text) {
  boost::system::error_code ec;
  auto parsed = bj::parse(text, ec);
  if (ec || !parsed.is_object()) {
    return fail(ErrorCode::kInternal, "a stored parameter is not JSON");
  }
  const auto& in = parsed.as_object();
  Parameter parameter;
  parameter.name = json::string_or(in, "name", "");
  parameter.arn = json::string_or(in, "arn", "");
  if (const auto* tags = json::get_array(in, "tags")) {
    for (const auto& tag : *tags) {
      if (!tag.is_object()) continue;
      parameter.tags.emplace_back(json::string_or(tag.as_object(), "Key", ""),
                                  json::string_or(tag.as_object(), "Value", ""));
    }
  }
  if (const auto* versions = json::get_array(in, "versions")) {
    for (const auto& version : *versions) {
      if (version.is_object())
        parameter.versions.push_back(version_from_store(version.as_object()));
    }
  }
  if (parameter.name.empty() || parameter.arn.empty() || parameter.versions.empty()) {
    return fail(ErrorCode::kInternal, "a stored parameter lacks its name, ARN or versions");
  }
  return parameter;
}

std::string shown_value(const Parameter& parameter, const ParameterVersion& version, bool decrypt) {
  if (decrypt || version.type != kSecureString) return version.value;
  return base64_encode("wharf:ssm:not-decrypted:" + parameter.arn + ":" +
                       std::to_string(version.version));
}

bj::object parameter_to_wire(const Parameter& parameter, const ParameterVersion& version,
                             std::string_view selector, bool decrypt) {
  bj::object out{{"Name", parameter.name},
                 {"Type", version.type},
                 {"Value", shown_value(parameter, version, decrypt)},
                 {"Version", version.version}};
  if (!selector.empty()) out["Selector"] = selector;
  out["LastModifiedDate"] = epoch_seconds(version.modified);
  out["ARN"] = parameter.arn;
  out["DataType"] = version.data_type;
  return out;
}

bj::object metadata_to_wire(const Parameter& parameter) {
  bj::object out = version_summary(parameter, parameter.latest());
  out["ARN"] = parameter.arn;
  return out;
}

bj::object history_to_wire(const Parameter& parameter, const ParameterVersion& version,
                           bool decrypt) {
  bj::object out = version_summary(parameter, version);
  out["Value"] = shown_value(parameter, version, decrypt);
  out["Labels"] = json::strings_array(version.labels);
  return out;
}

bj::array tags_to_wire(const ParameterTags& tags) {
  bj::array out;
  for (const auto& [key, value] : tags) out.push_back(bj::object{{"Key", key}, {"Value", value}});
  return out;
}

}  // namespace wharf::ssm
