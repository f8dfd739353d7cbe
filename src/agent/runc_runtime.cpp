// The runc backend. runc works on cgroup v1, v2 and hybrid hosts with its cgroupfs driver (the
// default), and takes every option Wharf passes as they are.
#include "agent/cli_runtime.hpp"

namespace wharf::agent {

std::unique_ptr<Runtime> make_runc_runtime(const RuntimeOptions& options, ProcessReaper& reaper) {
  return make_cli_runtime(CliFlavor{"runc", {}}, options, reaper);
}

}  // namespace wharf::agent
