// Logging: spdlog, configured once by the command line.
#pragma once

#include <spdlog/spdlog.h>

namespace wharf {
// Sets the global level from "debug", "info", "warn" or "error".
void init_logging(const std::string& level);
}  // namespace wharf
