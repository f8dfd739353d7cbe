// A container's environmentFiles: S3 objects in the .env format whose variables join its
// environment below `environment` and `secrets`. Like secrets, their contents stay in memory.
#pragma once

#include <boost/json/object.hpp>

#include <compare>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace wharf::agent {

struct S3Object {
  std::string bucket;
  std::string key;

  auto operator<=>(const S3Object&) const = default;
};

// Fetches an object's bytes. Must be thread-safe (task threads call it). Errors say what the
// server said.
using S3ObjectFetcher = std::function<Result<std::string>(const S3Object&)>;

using EnvironmentList = std::vector<std::pair<std::string, std::string>>;

// "arn:<partition>:s3:::<bucket>/<key>"; kInvalidParameter for anything else.
Result<S3Object> parse_s3_object_arn(std::string_view arn);

// The variables of an env file, as ECS's agent reads one: lines (a trailing CR dropped) starting
// with '#' are skipped; the rest are NAME=VALUE, split at the first '=', both sides taken
// literally (no trimming, no quotes or escapes interpreted). A line without '=', or with an
// empty name or value, is skipped. A name given twice keeps its last value.
EnvironmentList parse_env_file(std::string_view text);

// What ECS starts the reason of a task whose env files could not be had with (then ": " and why).
inline constexpr std::string_view kEnvFilesFailure =
    "ResourceInitializationError: failed to download env files";

// The variables of the container's environmentFiles (its override's when the task overrides
// them, as ECS does), fetched through `fetch` (unset: none can be). Files are read top down and
// the first file to set a variable wins. The error's message is the reason to report.
Result<EnvironmentList> fetch_environment_files(const boost::json::object& container,
                                                const boost::json::object& overrides,
                                                const S3ObjectFetcher& fetch);

}  // namespace wharf::agent
