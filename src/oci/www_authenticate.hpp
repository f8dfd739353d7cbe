// WWW-Authenticate challenges (RFC 7235), as registries send them with a 401.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::oci {

struct Challenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lower case, values unquoted

  std::optional<std::string> param(std::string_view name) const;
};

// Parses a header value holding one or more challenges, e.g.
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="a:b:pull"
// Quoted values may hold commas and backslash escapes. kInvalidParameter when malformed.
Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

}  // namespace wharf::oci
