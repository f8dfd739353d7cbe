// Helpers for the agent's tests that drive real host tools (ip, nft, busybox, curl).
#pragma once

#include <string>

#include "agent/command.hpp"

namespace wharf::agent::testkit {

// Whether `program` runs here: `version_flag` makes it print its version and exit 0.
inline bool have_command(const std::string& program, const std::string& version_flag) {
  auto output = run_command({program, version_flag});
  return output.has_value() && output->status.exit_code == 0;
}

// What `sh -c command` prints, stdout then stderr; the error when it cannot be run.
inline std::string shell(const std::string& command) {
  auto output = run_command({"sh", "-c", command});
  return output ? output->out + output->err : output.error().message;
}

}  // namespace wharf::agent::testkit
