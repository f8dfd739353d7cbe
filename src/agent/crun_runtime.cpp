// The crun backend. crun drives cgroup v1 and v2 hosts but refuses hybrid ones whose cgroup2
// mount has controllers ("cgroups in hybrid mode not supported"), which make_runtime()'s probe
// finds out. The cgroup manager is pinned to cgroupfs: cgroupsPath is a path, as for runc, not
// a systemd slice:scope triple.
#include "agent/cli_runtime.hpp"

namespace wharf::agent {

std::unique_ptr<Runtime> make_crun_runtime(const RuntimeOptions& options, ProcessReaper& reaper) {
  return make_cli_runtime(CliFlavor{"crun", {"--cgroup-manager=cgroupfs"}}, options, reaper);
}

}  // namespace wharf::agent
