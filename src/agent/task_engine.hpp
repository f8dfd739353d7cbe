// The agent's task engine: runs the tasks the control plane assigns to this container instance
// as real containers, and keeps the state it reports about them.
//
// Each task has a runner thread that walks it through its life (task_lifecycle.hpp):
//   PENDING        the containers' Secrets Manager secrets fetched (repositoryCredentials and
//                  `secrets`; held in memory only, never saved), images pulled through the
//                  ImageStore (pullStartedAt/pullStoppedAt), the task cgroup created with the
//                  task's cpu/memory limits;
//   RUNNING        containers created and started in dependsOn order, each with an overlay
//                  rootfs, an OCI bundle and its own cgroup under the task's; health checks run
//                  by `runtime exec`;
//   DEACTIVATING…  on StopTask, an essential container's exit, or a start failure: SIGTERM in
//                  reverse dependsOn order, SIGKILL after each container's stopTimeout;
//   DEPROVISIONING containers, rootfs mounts and the cgroup removed;
//   STOPPED        executionStoppedAt; the task is forgotten once the server has it, and its
//                  directory (logs) removed after `task_cleanup_wait`.
// The runner sleeps in poll() on its wake-up eventfd and on a pidfd per running container's
// init, so a container's exit is noticed at once without a thread per container.
//
// Every change is written to containers/<task-id>/task.json (a StateFile) before it is offered
// for reporting, so an agent that restarts next to running containers resumes each task where
// it was: running containers are re-attached, and the exit statuses of those that ended meanwhile
// come from their shims (runtime.hpp). The agent reports each task's whole state
// (SubmitTaskStateChange); pending_reports() hands out the latest state of every task whose
// state the server has not acknowledged yet, except that a new task is not reported while it
// starts, for up to two seconds (see TaskEngine::kStartingReportHold).
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <set>
#include <string>
#include <vector>

#include "agent/awsvpc_network.hpp"
#include "agent/cgroup.hpp"
#include "agent/image_store.hpp"
#include "agent/layout.hpp"
#include "agent/network.hpp"
#include "agent/runtime.hpp"
#include "agent/spare_dirs.hpp"
#include "agent/task_env_files.hpp"
#include "agent/task_lifecycle.hpp"
#include "agent/task_secrets.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::agent {

// An awsvpc task's network interface as the control plane assigned it: its address and the
// ingress its security groups allow, source groups already expanded to member addresses.
struct DesiredEni {
  std::string attachment_arn;
  std::string ip;
  std::string mac;
  std::string subnet_cidr;
  std::string subnet_gateway;
  std::string private_dns_name;
  std::vector<IngressRule> ingress;

  bool operator==(const DesiredEni&) const = default;
};

// One entry of WharfPollTasks' answer (docs/agent-protocol.md).
struct DesiredTask {
  std::string arn;
  std::string desired_status = "RUNNING";             // RUNNING | STOPPED
  boost::json::object task_definition;                // as DescribeTaskDefinition returns it
  boost::json::object overrides;                      // TaskOverride
  std::map<std::string, std::string> container_arns;  // container name → containerArn
  std::string stop_code;                              // set by StopTask
  std::string stopped_reason;
  std::optional<DesiredEni> eni;  // networkMode awsvpc
};

// kInvalidParameter when the entry lacks an ARN or a task definition.
Result<DesiredTask> desired_task_from_json(const boost::json::object& entry);

// One WharfPollTasks answer, resolved against what the agent was told before.
struct DesiredUpdate {
  std::set<std::string> listed;      // every task the answer lists
  std::vector<DesiredTask> changed;  // those whose entries came whole (new or changed)
  // The members' addresses of the security groups the tasks' rules name as sources; absent
  // when the answer had none to give (the sets are then left as they are).
  std::optional<std::map<std::string, std::vector<std::string>>> group_members;
};

// Which tasks the agent was told about. An answer lists every task, but one the agent was
// already told about and that did not change comes as {"taskArn", "unchanged": true}; its
// runner holds the entry.
class DesiredState {
 public:
  // The update an answer makes. kNotFound when a stub names a task not told before (the
  // state was cleared, or the server mixed up versions): poll again with version 0.
  Result<DesiredUpdate> merge(const boost::json::object& answer);
  void clear() { known_.clear(); }

 private:
  std::set<std::string> known_;
};

struct TaskEngineOptions {
  std::string cluster;
  // Task and container directories kept ready for launches, of each kind (0: none; see
  // SpareDirs).
  std::size_t spare_dirs = 4;
  std::chrono::seconds default_stop_timeout{30};
  // How long a stopped task's directory (its logs) stays after the server has it.
  std::chrono::seconds task_cleanup_wait{3600};
  // A container log file is rotated (to .1, .2, …) when it grows past this; `log_files_kept`
  // rotated files are kept.
  std::uint64_t log_rotate_bytes = 10 << 20;
  int log_files_kept = 2;
  std::filesystem::path init_binary;  // for initProcessEnabled, if the host has one
  // Runtime calls that start containers at once. Each is a runc process that is mostly CPU;
  // hundreds at once only slow each other down (and cost memory), so the rest queue.
  int parallel_starts = 4;
  std::string bridge_unavailable = "the agent has no bridge network";
  // The task metadata endpoint's port on this host (see metadata_server.hpp); 0: none, and no
  // ECS_CONTAINER_METADATA_URI_V4 in containers.
  std::uint16_t metadata_port = 0;
  // Serve the metadata endpoint on a socket bound inside a task's own namespace (awsvpc, none)
  // under `key`, and stop again; unset: such containers get no endpoint.
  std::function<void(const std::string& key, UniqueFd listening)> serve_metadata_in;
  std::function<void(const std::string& key)> release_metadata;
  std::string awsvpc_unavailable = "the agent has no awsvpc network";
  std::string cluster_arn;  // for the metadata's "Cluster"
  std::string availability_zone;
  // Fetches the secrets of repositoryCredentials and container `secrets` (on task threads).
  // Unset: tasks that name any fail to start.
  SecretFetcher fetch_secret;
  // Reads containers' environmentFiles from S3 (on task threads). Unset: tasks that name any
  // fail to start.
  S3ObjectFetcher fetch_s3_object;
};

// What the task metadata endpoint serves for one container's token (JSON in the shapes of ECS's
// task metadata endpoint v4).
struct MetadataView {
  boost::json::object container;  // this container
  boost::json::object task;       // the task, with all its containers
  // Docker stats JSON: this container's, and every container's by DockerId.
  boost::json::object stats;
  boost::json::object task_stats;
};

class TaskEngine {
 public:
  // Everything passed in must outlive the engine. `on_change` is called (from any thread, with
  // no lock held) whenever pending_reports() has something new.
  // `bridge` runs networkMode bridge; null when the host could not set it up (such tasks then
  // stop with `options.bridge_unavailable` as the reason). `awsvpc` likewise runs awsvpc tasks
  // and gives none-mode containers a namespace of their own with the metadata endpoint.
  TaskEngine(const Layout& layout, Runtime& runtime, const Cgroups& cgroups, ImageStore& images,
             BridgeNetwork* bridge, AwsvpcNetwork* awsvpc, const Clock& clock,
             TaskEngineOptions options, std::function<void()> on_change);
  // Ends the runner threads. Containers keep running: the next agent re-attaches to them.
  ~TaskEngine();
  TaskEngine(const TaskEngine&) = delete;
  TaskEngine& operator=(const TaskEngine&) = delete;

  // Resumes the tasks saved under containers/. Call once, before apply().
  Status recover();

  // The control plane's full desired state for this instance: starts the tasks it lists that
  // are new, stops the ones it wants stopped, and stops every task it no longer lists. Tasks
  // that are STOPPED, reported, and no longer listed are forgotten.
  // false when the update names, as unchanged, a task this engine has no runner for: the
  // caller asks for the whole desired state.
  bool apply(const DesiredUpdate& update);

  struct Report {
    std::string task_arn;
    std::uint64_t version = 0;
    boost::json::object change;  // SubmitTaskStateChange's input
  };
  // A new task's state is not reported while it is starting (PENDING, ACTIVATING), for at most
  // this long: a launch from a cached image is RUNNING well within it, and its one report of
  // RUNNING replaces the PENDING one and the container starts' (a report costs the server a
  // durable commit, and both sides CPU a launch needs). A slower start, such as a pull, shows
  // PENDING after this long. ECS's own agent never reports PENDING.
  static constexpr std::chrono::seconds kStartingReportHold{2};
  struct Reports {
    std::vector<Report> due;
    // When the earliest report held back now falls due (kStartingReportHold).
    std::optional<TimePoint> next_due;
  };
  // The latest state of every task whose state the server has not acknowledged.
  Reports pending_reports();
  // The server has the task's state as of `version`.
  void acknowledge(const std::string& task_arn, std::uint64_t version);
  // Offers every task's state again (after the agent reconnected).
  void report_everything();

  // The metadata a container's token stands for; nullopt for an unknown token. `with_stats`
  // reads cgroup and network counters as well.
  std::optional<MetadataView> metadata(std::string_view token, bool with_stats) const;

  // Tasks this engine knows, and how many of them are not STOPPED.
  std::size_t task_count() const;
  std::size_t active_task_count() const;

  // Removes the directories of forgotten tasks stopped longer ago than task_cleanup_wait.
  void clean_up();

 private:
  class Runner;

  // The kinds of spare directories: a task's, and a container's.
  static constexpr std::size_t kSpareTask = 0;
  static constexpr std::size_t kSpareContainer = 1;
  // Moves a spare directory of `kind` to `destination`: true when it did.
  bool claim_spare(std::size_t kind, const std::filesystem::path& destination);

  bool apply_locked(const DesiredUpdate& update);
  void update_group_members(const DesiredUpdate& update);
  void forget_locked(std::map<std::string, std::unique_ptr<Runner>>::iterator runner);

  const Layout& layout_;
  Runtime& runtime_;
  const Cgroups& cgroups_;
  ImageStore& images_;
  BridgeNetwork* bridge_;
  AwsvpcNetwork* awsvpc_;
  const Clock& clock_;
  TaskEngineOptions options_;
  std::function<void()> on_change_;
  std::unique_ptr<SpareDirs> spares_;  // null without options_.spare_dirs

  std::counting_semaphore<> start_slots_;

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Runner>> runners_;  // by task ARN
  // Forgotten tasks' directories, with when they stopped.
  std::vector<std::pair<std::filesystem::path, TimePoint>> leftover_dirs_;
};

}  // namespace wharf::agent
