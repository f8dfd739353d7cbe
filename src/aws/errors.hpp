// The one place internal errors become AWS exception names and HTTP statuses.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::aws {

struct WireError {
  std::string type;  // the "__type" of a JSON error, e.g. "ClusterNotFoundException"
  int status = 400;
};

// `service` is the signing name ("ecs", "ecr", ...), for codes whose names differ by service.
WireError to_wire(const Error& error, std::string_view service);

}  // namespace wharf::aws
