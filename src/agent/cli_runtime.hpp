// The command-line driver shared by the runc and crun backends; internal to src/agent/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/runtime.hpp"

namespace wharf::agent {

// What sets one runtime's command line apart from another's.
struct CliFlavor {
  std::string name;                      // "runc"; also the executable looked up on PATH
  std::vector<std::string> global_args;  // before the subcommand
  // Runs the runtime through `wharf-shim --cgroup-v1` (see src/shim/wharf_shim.c), which hides a
  // hybrid host's cgroup2 mount from it. Needs RuntimeOptions::shim.
  bool cgroup_v1_view = false;
  // Runs the runtime from a sealed in-memory copy of its executable, made once. crun (like
  // runc) otherwise re-executes itself from a read-only copy at every call, so that a container
  // cannot overwrite the host's binary (CVE-2019-5736); from a sealed memfd it need not.
  bool sealed_copy = false;
  // Hands the runtime the seccomp program it compiled for the same profile before, through
  // crun's annotation run.oci.seccomp_bpf_data, instead of compiling the profile at every start.
  // The program is the one the runtime left in its state directory (<root>/<id>/seccomp.bpf).
  bool reuses_seccomp_programs = false;
};

std::unique_ptr<Runtime> make_cli_runtime(CliFlavor flavor, const RuntimeOptions& options,
                                          ProcessReaper& reaper);

// The backends (runc_runtime.cpp, crun_runtime.cpp).
std::unique_ptr<Runtime> make_runc_runtime(const RuntimeOptions& options, ProcessReaper& reaper);
std::unique_ptr<Runtime> make_crun_runtime(const RuntimeOptions& options, ProcessReaper& reaper);

}  // namespace wharf::agent
