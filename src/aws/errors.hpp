// The one place internal errors become AWS exception names and HTTP statuses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::aws {

struct WireError {
  std::string type;  // the "__type" of a JSON error ("ClusterNotFoundException") or EC2's <Code>
  int status = 400;
};

// `service` is the signing name ("ecs", "ecr", ...), for codes whose names differ by service;
// "ec2" has its own names throughout (InvalidParameterValue, MissingParameter, InvalidAction, ...).
WireError to_wire(const Error& error, std::string_view service);
// The other way, for Wharf's own clients: the code whose wire name is `type` (no "ns#" prefix);
// nullopt for names Wharf never sends.
std::optional<ErrorCode> error_code_for(std::string_view type, std::string_view service);

}  // namespace wharf::aws
