// ARN formatting and parsing.
#include "common/arn.hpp"

#include <vector>

namespace wharf {

std::string Arn::str() const {
  return "arn:" + partition + ":" + service + ":" + region + ":" + account + ":" + resource;
}

std::string_view Arn::resource_type() const {
  auto slash = std::string_view(resource).find('/');
  if (slash == std::string_view::npos) return {};
  return std::string_view(resource).substr(0, slash);
}

std::string_view Arn::resource_id() const {
  auto slash = std::string_view(resource).find('/');
  if (slash == std::string_view::npos) return resource;
  return std::string_view(resource).substr(slash + 1);
}

bool looks_like_arn(std::string_view text) {
  return text.starts_with("arn:");
}

std::optional<Arn> parse_arn(std::string_view text) {
  if (!looks_like_arn(text)) return std::nullopt;
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (int part_idx = 0; part_idx < 5; ++part_idx) {
    auto colon = text.find(':', start);
    if (colon == std::string_view::npos) return std::nullopt;
    parts.push_back(text.substr(start, colon - start));
    start = colon + 1;
  }
  Arn arn;
  arn.partition = parts[1];
  arn.service = parts[2];
  arn.region = parts[3];
  arn.account = parts[4];
  arn.resource = text.substr(start);
  if (arn.partition.empty() || arn.service.empty() || arn.resource.empty()) return std::nullopt;
  return arn;
}

}  // namespace wharf
