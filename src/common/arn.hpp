// Amazon Resource Names: arn:partition:service:region:account:resource.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wharf {

struct Arn {
  std::string partition = "aws";
  std::string service;
  std::string region;
  std::string account;
  std::string resource;  // e.g. "cluster/prod", "task-definition/web:3"

  std::string str() const;
  // The resource type before the first '/' ("cluster"), or empty when there is none.
  std::string_view resource_type() const;
  // What follows the first '/' ("prod").
  std::string_view resource_id() const;
};

// Parses a full ARN; nullopt when the text is not one.
std::optional<Arn> parse_arn(std::string_view text);
bool looks_like_arn(std::string_view text);

}  // namespace wharf
