// The agent's session with the control plane: register this host as a container instance,
// remember which one it is, and call in (heartbeat) until told to stop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>

#include "agent/aws_json_client.hpp"
#include "agent/cgroup.hpp"
#include "agent/host_resources.hpp"
#include "agent/image_store.hpp"
#include "agent/layout.hpp"
#include "agent/metadata_server.hpp"
#include "agent/runtime.hpp"
#include "agent/task_engine.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "oci/ecr_login.hpp"

namespace wharf::agent {

// Reported as versionInfo.agentVersion (the query language compares it as a dotted version).
inline constexpr std::string_view kAgentVersion = "0.1.0";

struct AgentConfig {
  std::string server_url;
  std::string cluster = "default";
  std::filesystem::path data_dir;
  std::string availability_zone;  // empty: the region's "a" zone (us-east-1a)
  std::string instance_type = "wharf";
  int64_t memory_reserve_mib = 256;
  // How often the agent calls in; the server's --agent-heartbeat-seconds must not be shorter.
  std::chrono::seconds heartbeat_interval{10};
  oci::AwsCredentials credentials;
  bool insecure = false;
  // The OCI runtime ("runc", "crun", or "" for the first that works here) and its executable.
  std::string runtime;
  std::filesystem::path runtime_binary;
  // The per-container monitor; "" means wharf-shim beside this executable.
  std::filesystem::path shim;
  // A static init for initProcessEnabled; "" means find_init_binary().
  std::filesystem::path init_binary;
  PullBehavior pull_behavior = PullBehavior::kDefault;
  // Unused images are removed after this long, and oldest first while the layer cache is larger
  // than image_cache_max_mib (0: no cap); see ImageStoreOptions.
  std::chrono::minutes image_cleanup_age{180};
  std::uint64_t image_cache_max_mib = 0;
  std::chrono::seconds default_stop_timeout{30};
  std::chrono::seconds task_cleanup_wait{3600};
  // The bridge network's IPv4 subnet (a /24 or larger); "" picks a free 172.30.x.0/24 once and
  // keeps it.
  std::string bridge_subnet;
  // The task metadata endpoint's port: 0 derives one from the instance id (51700–52699, so it
  // stays the same across restarts and differs between agents on one host); -1 turns it off.
  int metadata_port = 0;
  // Whether to turn on the kernel's favordynmods for the host's cgroups at start (see
  // favor_dynamic_cgroup_moves()).
  bool favor_dynamic_cgroup_moves = true;
};

// What the agent remembers across restarts (state/agent.json): the registration it resumes.
struct SavedRegistration {
  std::string cluster;
  std::string container_instance_arn;  // empty until the first registration succeeded
  std::string instance_id;             // "i-" + 17 hex, this host's stable identity

  bool operator==(const SavedRegistration&) const = default;
};

std::string saved_registration_to_json(const SavedRegistration& saved);
Result<SavedRegistration> saved_registration_from_json(std::string_view text);

// ecs.os-type, ecs.cpu-architecture (x86_64 or arm64, from uname's `machine`),
// ecs.instance-type and ecs.availability-zone, as {name, value} objects.
boost::json::array builtin_attributes(const AgentConfig& config, std::string_view machine);

// The capabilities this agent really has, as the ECS agent names them (requiresAttributes of task
// definitions match them): Docker Remote API levels 1.17–1.24 (ulimits, labels,
// memoryReservation, tmpfs, shared memory, health checks), 1.25–1.29 only with a static init for
// initProcessEnabled; container ordering, health checks, task cpu/memory limits, ECR
// authentication, Secrets Manager secrets as registry credentials and environment variables;
// task-eni (awsvpc) when nftables is there. {name} objects without values.
boost::json::array capability_attributes(bool have_init_binary, bool have_nftables);

// The first static init on this host (tini-static, docker-init, catatonit), or "".
std::filesystem::path find_init_binary();

class Agent {
 public:
  // Takes the data directory's lock (one agent per data directory), creates its layout and
  // reads the saved registration. Refuses a data directory registered to another cluster.
  static Result<std::unique_ptr<Agent>> open(AgentConfig config, const Clock& clock);

  // Registers (again, under the saved ARN when there is one), saves the ARN, resumes the tasks
  // it ran before, then follows the control plane's desired state (WharfPollTasks, a long
  // poll), reports every task change (SubmitTaskStateChange), and calls in every heartbeat
  // interval until stop(). Stopping leaves the containers running for the next agent. Failures that
  // may pass (server unreachable, 5xx, the cluster not created yet) are logged and retried; the
  // rest end the run with an error: the credentials are refused, or the instance was deregistered.
  Status run();
  // Ends run() soon; safe from any thread.
  void stop();

  std::string container_instance_arn() const;

 private:
  Agent(AgentConfig config, const Clock& clock, Layout layout, UniqueFd lock,
        SavedRegistration saved);
  Status register_instance(const HostResources& resources);
  boost::json::array all_attributes() const;
  Status save() const;
  // Creates the runtime, image store and task engine.
  Status start_engine();
  // The desired-state long poll and the report loop, each on its own thread.
  void watch_loop();
  void report_loop();
  void heartbeat_loop();
  void start_metadata_server();
  // Ends run() with `error`.
  void fail_run(Error error);
  bool stopping() const;
  // Waits up to `duration`; true when stop() was called.
  bool wait_for_stop(std::chrono::seconds duration);

  AgentConfig config_;
  const Clock& clock_;
  Layout layout_;
  UniqueFd lock_;
  AwsJsonClient client_;  // ECS
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> cancel_calls_ = false;  // set by stop(): ends long polls in flight
  SavedRegistration saved_;

  std::optional<Cgroups> cgroups_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<ImageStore> images_;
  std::unique_ptr<BridgeNetwork> bridge_;
  std::unique_ptr<AwsvpcNetwork> awsvpc_;
  std::unique_ptr<MetadataServer> metadata_;
  std::unique_ptr<TaskEngine> engine_;
  bool reports_due_ = false;    // guarded by mutex_; wakes report_loop
  std::optional<Error> fatal_;  // guarded by mutex_: why run() ends, if not stop()
};

// `wharf up`'s agent: one in the cluster "default" of the control plane at `server_url`,
// which it creates first (as ECS creates "default" on first use), with its data in `data_dir`.
Result<std::unique_ptr<Agent>> open_local_agent(std::string server_url,
                                                oci::AwsCredentials credentials,
                                                std::filesystem::path data_dir, const Clock& clock);

}  // namespace wharf::agent
