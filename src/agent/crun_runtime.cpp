// The crun backend. crun drives cgroup v1 and v2 hosts but refuses hybrid ones whose cgroup2
// mount has controllers ("cgroups in hybrid mode not supported"). On a hybrid host crun runs
// through `wharf-shim --cgroup-v1`, in a mount namespace without the cgroup2 mount, where it
// sees a v1 host and uses the v1 hierarchies (which hold the controllers Wharf sets limits
// with). Without a shim that cannot be done, and make_runtime()'s probe finds crun refusing.
// The cgroup manager is pinned to cgroupfs: cgroupsPath is a path, as for runc, not a systemd
// slice:scope triple.
//
// Two costs of every crun start are paid once instead (see CliFlavor): crun runs from a sealed
// copy of itself, and a seccomp profile is compiled once per profile.
#include "agent/cgroup.hpp"
#include "agent/cli_runtime.hpp"

namespace wharf::agent {

namespace {

// crun's own test for a hybrid host: tmpfs at /sys/fs/cgroup, cgroup2 at its "unified".
bool hybrid_host() {
  auto mounts = detect_cgroup_mounts();
  return mounts && mounts->version == CgroupVersion::kV1 &&
         mounts->unified == "/sys/fs/cgroup/unified";
}

}  // namespace

std::unique_ptr<Runtime> make_crun_runtime(const RuntimeOptions& options, ProcessReaper& reaper) {
  CliFlavor flavor{"crun", {"--cgroup-manager=cgroupfs"}};
  flavor.cgroup_v1_view = hybrid_host();
  flavor.sealed_copy = true;
  flavor.reuses_seccomp_programs = true;
  return make_cli_runtime(std::move(flavor), options, reaper);
}

}  // namespace wharf::agent
