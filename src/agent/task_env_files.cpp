// Reading and merging a container's environmentFiles.
#include "agent/task_env_files.hpp"

#include <boost/json.hpp>

#include <set>

#include "common/json.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace bj = boost::json;

namespace {

const bj::array* environment_files(const bj::object& container, const bj::object& overrides) {
  if (const bj::array* overridden = json::get_array(overrides, "environmentFiles")) {
    return overridden;
  }
  return json::get_array(container, "environmentFiles");
}

Result<S3Object> file_object(const bj::value& item) {
  const bj::object* entry = item.if_object();
  std::string type = entry ? json::string_or(*entry, "type", "") : "";
  std::string value = entry ? json::string_or(*entry, "value", "") : "";
  if (type != "s3") {
    return invalid("environment file '" + value + "' has type '" + type +
                   "'; only s3 is supported");
  }
  return parse_s3_object_arn(value);
}

}  // namespace

Result<S3Object> parse_s3_object_arn(std::string_view arn) {
  std::string syntax =
      "'" + std::string(arn) + "' is not an S3 object ARN, arn:aws:s3:::<bucket>/<key>";
  std::vector<std::string_view> fields = split(arn, ':');
  if (fields.size() < 6 || fields[0] != "arn" || fields[1].empty() || fields[2] != "s3" ||
      !fields[3].empty() || !fields[4].empty()) {
    return invalid(syntax);
  }
  // The resource is everything after the fifth ':' (a key may hold ':').
  std::string_view resource = arn.substr(fields[5].data() - arn.data());
  auto slash = resource.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == resource.size()) {
    return invalid(syntax);
  }
  return S3Object{std::string(resource.substr(0, slash)), std::string(resource.substr(slash + 1))};
}

EnvironmentList parse_env_file(std::string_view text) {
  EnvironmentList variables;
  for (std::string_view line : split(text, '\n')) {
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.starts_with('#')) continue;
    auto equals = line.find('=');
    if (equals == std::string_view::npos || equals == 0 || equals + 1 == line.size()) continue;
    std::string name(line.substr(0, equals));
    std::string value(line.substr(equals + 1));
    auto same = [&](const auto& variable) { return variable.first == name; };
    if (auto found = std::find_if(variables.begin(), variables.end(), same);
        found != variables.end()) {
      found->second = std::move(value);
      continue;
    }
    variables.emplace_back(std::move(name), std::move(value));
  }
  return variables;
}

Result<EnvironmentList> fetch_environment_files(const bj::object& container,
                                                const bj::object& overrides,
                                                const S3ObjectFetcher& fetch) {
  EnvironmentList merged;
  const bj::array* files = environment_files(container, overrides);
  if (files == nullptr) return merged;
  std::set<std::string, std::less<>> named;
  for (const bj::value& item : *files) {
    auto object = file_object(item);
    if (!object) return std::unexpected(object.error().context(kEnvFilesFailure));
    auto text = fetch ? fetch(*object)
                      : fail(ErrorCode::kUnsupportedFeature, "this agent has no S3 client");
    if (!text) {
      return std::unexpected(std::move(text.error())
                                 .context("s3://" + object->bucket + "/" + object->key)
                                 .context(kEnvFilesFailure));
    }
    for (auto& [name, value] : parse_env_file(*text)) {
      if (named.insert(name).second) merged.emplace_back(std::move(name), std::move(value));
    }
  }
  return merged;
}

}  // namespace wharf::agent
