// The task engine: one runner thread per task (see task_engine.hpp).
#include "agent/task_engine.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "agent/bundle.hpp"
#include "agent/files.hpp"
#include "agent/remove_tree.hpp"
#include "agent/rootfs.hpp"
#include "common/crypto.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/thread_stack.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

// How often a runner looks at its containers' log files.
constexpr std::chrono::seconds kLogCheckInterval{10};
constexpr std::chrono::milliseconds kExitReadTimeout{3000};

std::string task_id_of(std::string_view arn) {
  auto slash = arn.rfind('/');
  return std::string(slash == std::string_view::npos ? arn : arn.substr(slash + 1));
}

std::optional<TimePoint> time_or_none(const bj::object& object, std::string_view key) {
  const bj::value* value = json::member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return from_epoch_seconds(value->to_number<double>());
}

void put_time(bj::object& object, std::string_view key, const std::optional<TimePoint>& time) {
  if (time) object[key] = epoch_seconds(*time);
}

std::optional<std::int64_t> int_of_string(const bj::object& object, std::string_view key) {
  const bj::value* value = json::member(object, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (!value->is_string()) return std::nullopt;
  std::string text(value->as_string());
  char* end = nullptr;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') return std::nullopt;
  return parsed;
}

// Copies a log file to FILE.1 (shifting older ones) and empties it. The container keeps
// appending to the same open file (O_APPEND), now from its start.
void rotate_log(const fs::path& file, std::uint64_t limit, int kept) {
  std::error_code error;
  auto size = fs::file_size(file, error);
  if (error || size <= limit || kept < 1) return;
  for (int index = kept - 1; index >= 1; --index) {
    fs::path from = file.string() + "." + std::to_string(index);
    fs::path to = file.string() + "." + std::to_string(index + 1);
    fs::rename(from, to, error);
  }
  fs::copy_file(file, file.string() + ".1", fs::copy_options::overwrite_existing, error);
  if (!error) fs::resize_file(file, 0, error);
}

// CPU time of a cgroup in nanoseconds (v1 cpuacct.usage, v2 cpu.stat usage_usec).
std::uint64_t cpu_usage_ns(const Cgroups& cgroups, const std::string& path) {
  const CgroupMounts& mounts = cgroups.mounts();
  fs::path relative = fs::path(path).relative_path();
  if (mounts.version == CgroupVersion::kV2) {
    auto usec = find_counter(read_text_file(mounts.unified / relative / "cpu.stat").value_or(""),
                             "usage_usec");
    return usec.value_or(0) * 1000;
  }
  auto mount = mounts.v1.find("cpuacct");
  if (mount == mounts.v1.end()) return 0;
  return std::strtoull(
      read_text_file(mount->second / relative / "cpuacct.usage").value_or("").c_str(), nullptr, 10);
}

// Bytes read and written, as Docker's io_service_bytes_recursive entries.
bj::array io_bytes(const Cgroups& cgroups, const std::string& path) {
  const CgroupMounts& mounts = cgroups.mounts();
  fs::path relative = fs::path(path).relative_path();
  std::uint64_t read = 0;
  std::uint64_t write = 0;
  if (mounts.version == CgroupVersion::kV2) {
    std::istringstream lines(read_text_file(mounts.unified / relative / "io.stat").value_or(""));
    for (std::string word; lines >> word;) {
      if (word.starts_with("rbytes=")) read += std::strtoull(word.c_str() + 7, nullptr, 10);
      if (word.starts_with("wbytes=")) write += std::strtoull(word.c_str() + 7, nullptr, 10);
    }
  } else if (auto mount = mounts.v1.find("blkio"); mount != mounts.v1.end()) {
    std::istringstream lines(
        read_text_file(mount->second / relative / "blkio.throttle.io_service_bytes_recursive")
            .value_or(""));
    std::string device, op;
    std::uint64_t value = 0;
    while (lines >> device >> op >> value) {
      if (op == "Read") read += value;
      if (op == "Write") write += value;
    }
  }
  return bj::array{bj::object{{"op", "Read"}, {"value", read}},
                   bj::object{{"op", "Write"}, {"value", write}}};
}

// The host's CPU time so far, in nanoseconds, as Docker's system_cpu_usage.
std::uint64_t system_cpu_ns() {
  std::istringstream stat(read_text_file("/proc/stat").value_or(""));
  std::string cpu;
  stat >> cpu;
  std::uint64_t total = 0;
  for (std::uint64_t value = 0; stat >> value;) total += value;
  return total * (1'000'000'000 / static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK)));
}

// The interfaces of the network namespace `pid` is in (loopback left out), Docker's shape.
bj::object network_counters(pid_t pid) {
  bj::object networks;
  std::istringstream lines(
      read_text_file("/proc/" + std::to_string(pid) + "/net/dev").value_or(""));
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name == "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    std::uint64_t values[16] = {};
    for (auto& value : values) fields >> value;
    networks[name] =
        bj::object{{"rx_bytes", values[0]},   {"rx_packets", values[1]}, {"rx_errors", values[2]},
                   {"rx_dropped", values[3]}, {"tx_bytes", values[8]},   {"tx_packets", values[9]},
                   {"tx_errors", values[10]}, {"tx_dropped", values[11]}};
  }
  return networks;
}

// NetworkBinding shapes, as ECS reports them.
bj::array bindings_to_json(const std::vector<PortBinding>& bindings) {
  bj::array out;
  for (const PortBinding& binding : bindings) {
    out.push_back(bj::object{{"bindIP", binding.bind_ip},
                             {"containerPort", binding.container_port},
                             {"hostPort", binding.host_port},
                             {"protocol", binding.protocol}});
  }
  return out;
}

// "8000-8010" as {8000, 8010}; nullopt for anything else.
std::optional<std::pair<std::uint16_t, std::uint16_t>> port_range(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  unsigned long low = std::strtoul(std::string(text.substr(0, dash)).c_str(), nullptr, 10);
  unsigned long high = std::strtoul(std::string(text.substr(dash + 1)).c_str(), nullptr, 10);
  if (low < 1 || high > 65535 || low > high) return std::nullopt;
  return std::pair{static_cast<std::uint16_t>(low), static_cast<std::uint16_t>(high)};
}

// The networkBindings to report: a containerPortRange mapping whose host ports came out
// consecutive is one binding with containerPortRange and hostPortRange, as ECS reports it;
// every other port is a binding of its own.
bj::array reported_bindings(const bj::object& definition,
                            const std::vector<PortBinding>& bindings) {
  std::vector<bool> grouped(bindings.size(), false);
  bj::array out;
  if (const auto* list = json::get_array(definition, "portMappings")) {
    for (const auto& item : *list) {
      if (!item.is_object()) continue;
      std::string protocol = json::string_or(item.as_object(), "protocol", "tcp");
      auto range = port_range(json::string_or(item.as_object(), "containerPortRange", ""));
      if (!range) continue;
      std::vector<std::size_t> members;
      for (std::size_t index = 0; index < bindings.size(); ++index) {
        const PortBinding& binding = bindings[index];
        if (binding.protocol == protocol && binding.container_port >= range->first &&
            binding.container_port <= range->second) {
          members.push_back(index);
        }
      }
      std::ranges::sort(members, {},
                        [&](std::size_t index) { return bindings[index].container_port; });
      bool consecutive =
          !members.empty() &&
          members.size() == static_cast<std::size_t>(range->second - range->first) + 1;
      for (std::size_t position = 1; consecutive && position < members.size(); ++position) {
        consecutive =
            bindings[members[position]].host_port == bindings[members[position - 1]].host_port + 1;
      }
      if (!consecutive) continue;
      const PortBinding& first = bindings[members.front()];
      const PortBinding& last = bindings[members.back()];
      out.push_back(bj::object{{"bindIP", first.bind_ip},
                               {"protocol", protocol},
                               {"containerPortRange", std::to_string(first.container_port) + "-" +
                                                          std::to_string(last.container_port)},
                               {"hostPortRange", std::to_string(first.host_port) + "-" +
                                                     std::to_string(last.host_port)}});
      for (std::size_t index : members) grouped[index] = true;
    }
  }
  for (std::size_t index = 0; index < bindings.size(); ++index) {
    if (grouped[index]) continue;
    const PortBinding& binding = bindings[index];
    out.push_back(bj::object{{"bindIP", binding.bind_ip},
                             {"containerPort", binding.container_port},
                             {"hostPort", binding.host_port},
                             {"protocol", binding.protocol}});
  }
  return out;
}

std::vector<PortBinding> bindings_from_json(const bj::array* list) {
  std::vector<PortBinding> bindings;
  if (list == nullptr) return bindings;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    const auto& entry = item.as_object();
    bindings.push_back(
        {json::string_or(entry, "bindIP", "0.0.0.0"),
         static_cast<std::uint16_t>(json::get_int(entry, "containerPort").value_or(0)),
         static_cast<std::uint16_t>(json::get_int(entry, "hostPort").value_or(0)),
         json::string_or(entry, "protocol", "tcp")});
  }
  return bindings;
}

std::optional<DesiredEni> eni_from_json(const bj::object* entry) {
  if (entry == nullptr) return std::nullopt;
  DesiredEni eni;
  eni.attachment_arn = json::string_or(*entry, "attachmentArn", "");
  eni.ip = json::string_or(*entry, "privateIpv4Address", "");
  eni.mac = json::string_or(*entry, "macAddress", "");
  eni.subnet_cidr = json::string_or(*entry, "subnetCidrBlock", "");
  eni.subnet_gateway = json::string_or(*entry, "subnetGatewayIpv4Address", "");
  eni.private_dns_name = json::string_or(*entry, "privateDnsName", "");
  eni.ingress = parse_ingress_rules(json::get_array(*entry, "ingress"));
  return eni;
}

bj::object eni_to_json(const DesiredEni& eni) {
  return bj::object{{"attachmentArn", eni.attachment_arn},
                    {"privateIpv4Address", eni.ip},
                    {"macAddress", eni.mac},
                    {"subnetCidrBlock", eni.subnet_cidr},
                    {"subnetGatewayIpv4Address", eni.subnet_gateway},
                    {"privateDnsName", eni.private_dns_name},
                    {"ingress", ingress_rules_json(eni.ingress)}};
}

}  // namespace

Result<DesiredTask> desired_task_from_json(const bj::object& entry) {
  DesiredTask task;
  task.arn = json::string_or(entry, "taskArn", "");
  const auto* definition = json::get_object(entry, "taskDefinition");
  if (task.arn.empty() || definition == nullptr) {
    return invalid("a desired task needs taskArn and taskDefinition");
  }
  if (!is_safe_path_component(task_id_of(task.arn))) {
    return invalid("task ARN '" + task.arn + "' does not end in a task id");
  }
  task.task_definition = *definition;
  task.desired_status = json::string_or(entry, "desiredStatus", "RUNNING");
  if (const auto* overrides = json::get_object(entry, "overrides")) task.overrides = *overrides;
  if (const auto* containers = json::get_array(entry, "containers")) {
    for (const auto& container : *containers) {
      if (!container.is_object()) continue;
      task.container_arns[json::string_or(container.as_object(), "name", "")] =
          json::string_or(container.as_object(), "containerArn", "");
    }
  }
  task.stop_code = json::string_or(entry, "stopCode", "");
  task.stopped_reason = json::string_or(entry, "stoppedReason", "");
  task.eni = eni_from_json(json::get_object(entry, "eni"));
  if (task.eni && task.eni->ip.empty()) {
    return invalid("task " + task.arn + ": its eni has no privateIpv4Address");
  }
  return task;
}

Result<DesiredUpdate> DesiredState::merge(const bj::object& answer) {
  DesiredUpdate update;
  if (const auto* tasks = json::get_array(answer, "tasks")) {
    for (const auto& item : *tasks) {
      if (!item.is_object()) continue;
      const auto& entry = item.as_object();
      if (json::get_bool(entry, "unchanged").value_or(false)) {
        std::string arn = json::string_or(entry, "taskArn", "");
        if (!known_.contains(arn)) {
          return fail(
              ErrorCode::kNotFound,
              "the answer says task " + arn + " is unchanged, but this agent was never told of it");
        }
        update.listed.insert(std::move(arn));
        continue;
      }
      auto task = desired_task_from_json(entry);
      if (!task) {
        spdlog::warn("ignoring a desired task: {}", task.error().message);
        continue;
      }
      update.listed.insert(task->arn);
      update.changed.push_back(std::move(*task));
    }
  }
  if (const auto* groups = json::get_object(answer, "groupMembers")) {
    update.group_members.emplace();
    for (const auto& [group, members] : *groups) {
      auto& addresses = (*update.group_members)[std::string(group)];
      if (!members.is_array()) continue;
      for (const auto& member : members.as_array()) {
        if (member.is_string()) addresses.emplace_back(member.as_string());
      }
    }
  }
  known_ = update.listed;
  return update;
}

// ---------------------------------------------------------------------------------------------
// One task's state and the thread that drives it.

class TaskEngine::Runner {
 public:
  // A bridge or none-mode container's network namespace (empty: the runtime makes one), and
  // the address its metadata endpoint is reached at (empty: served inside the namespace).
  struct ContainerNetwork {
    std::string netns_path;
    std::string gateway;
  };

  // One container of the task.
  struct Container {
    ContainerFacts facts;
    std::string arn;
    bj::object definition;
    std::string runtime_id;  // "<task-id>-<name>", once created
    std::string image_digest;
    std::string reason;
    bool created = false;
    bool attached = false;  // has a bridge endpoint (named runtime_id)
    bool isolated = false;  // networkMode none: has a namespace of its own (named runtime_id)
    std::vector<PortBinding> bindings;
    std::string ip;              // in its own network namespace (bridge)
    std::string metadata_token;  // the secret part of its ECS_CONTAINER_METADATA_URI_V4
    pid_t pid = 0;               // its init on the host, once started
    // Runner-thread only:
    // Fetched before its image is pulled. Never saved: an agent restart fetches them again.
    std::optional<ContainerSecrets> secrets;
    std::optional<EnvironmentList> file_environment;  // from its environmentFiles, likewise
    std::optional<Image> image;
    bool image_acquired = false;
    UniqueFd pidfd;
    fs::path rootfs;                 // mounted by this runner
    bool rootfs_detach_due = false;  // started; the host's mount of its rootfs not yet detached
    // Its own network (bridge, none) once set up, or why it could not be.
    std::optional<Result<ContainerNetwork>> network;
    bool signalled = false;
    TimePoint kill_at{};
    TimePoint started_at{};
    std::optional<HealthTracker> health;
    TimePoint next_check{};
  };

  Runner(TaskEngine& engine, std::string arn)
      : engine_(engine),
        arn_(std::move(arn)),
        id_(task_id_of(arn_)),
        state_file_(engine_.layout_.task_state_file(id_)) {
    wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  ~Runner() { stop_thread(); }

  // A new task from the control plane.
  void init(const DesiredTask& desired) {
    starting_since_ = engine_.clock_.now();
    definition_ = desired.task_definition;
    overrides_ = desired.overrides;
    desired_ = desired.desired_status;
    server_stop_code_ = desired.stop_code;
    server_stop_reason_ = desired.stopped_reason;
    eni_ = desired.eni;
    if (const auto* list = json::get_array(definition_, "containerDefinitions")) {
      for (const auto& item : *list) {
        if (!item.is_object()) continue;
        Container container;
        container.definition = item.as_object();
        container.facts = container_facts(container.definition);
        container.metadata_token = to_hex(random_bytes(16));
        auto arn = desired.container_arns.find(container.facts.name);
        if (arn != desired.container_arns.end()) container.arn = arn->second;
        containers_.push_back(std::move(container));
      }
    }
    save();  // PROVISIONING, as the control plane has it: nothing to report yet
  }

  // A task saved by an earlier agent.
  Status restore(const bj::object& saved) {
    definition_ = json::get_object(saved, "taskDefinition")
                      ? *json::get_object(saved, "taskDefinition")
                      : bj::object();
    if (const auto* overrides = json::get_object(saved, "overrides")) overrides_ = *overrides;
    desired_ = json::string_or(saved, "desiredStatus", "RUNNING");
    status_ = parse_task_status(json::string_or(saved, "status", "PENDING"))
                  .value_or(TaskStatus::kPending);
    stop_code_ = json::string_or(saved, "stopCode", "");
    stopped_reason_ = json::string_or(saved, "stoppedReason", "");
    pull_started_ = time_or_none(saved, "pullStartedAt");
    pull_stopped_ = time_or_none(saved, "pullStoppedAt");
    execution_stopped_ = time_or_none(saved, "executionStoppedAt");
    cgroup_created_ = json::get_bool(saved, "cgroupCreated").value_or(false);
    eni_ = eni_from_json(json::get_object(saved, "eni"));
    eni_status_ = json::string_or(saved, "eniStatus", "");
    task_netns_ = json::string_or(saved, "taskNetns", "");
    const auto* list = json::get_array(saved, "containers");
    if (list == nullptr) return invalid("no containers");
    for (const auto& item : *list) {
      if (!item.is_object()) continue;
      const auto& object = item.as_object();
      Container container;
      if (const auto* definition = json::get_object(object, "definition")) {
        container.definition = *definition;
      }
      container.facts = container_facts(container.definition);
      container.facts.status = parse_container_status(json::string_or(object, "status", "PENDING"))
                                   .value_or(ContainerRunStatus::kPending);
      if (auto code = json::get_int(object, "exitCode"))
        container.facts.exit_code = static_cast<int>(*code);
      container.facts.health =
          parse_health_status(json::string_or(object, "healthStatus", "UNKNOWN"))
              .value_or(HealthStatus::kUnknown);
      container.arn = json::string_or(object, "containerArn", "");
      container.runtime_id = json::string_or(object, "runtimeId", "");
      container.image_digest = json::string_or(object, "imageDigest", "");
      container.reason = json::string_or(object, "reason", "");
      container.created = json::get_bool(object, "created").value_or(false);
      container.attached = json::get_bool(object, "attached").value_or(false);
      container.isolated = json::get_bool(object, "isolated").value_or(false);
      container.ip = json::string_or(object, "ip", "");
      container.metadata_token = json::string_or(object, "metadataToken", "");
      container.pid = static_cast<pid_t>(json::get_int(object, "pid").value_or(0));
      container.bindings = bindings_from_json(json::get_array(object, "networkBindings"));
      containers_.push_back(std::move(container));
    }
    restored_ = true;
    version_ = 1;
    return {};
  }

  void start_thread() {
    thread_ = std::thread([this] { run(); });
  }

  void stop_thread() {
    quitting_ = true;
    wake();
    if (thread_.joinable()) thread_.join();
  }

  void set_desired(const DesiredTask& desired) {
    update_ingress(desired.eni);
    {
      std::lock_guard lock(mutex_);
      if (desired_ == desired.desired_status) return;
      desired_ = desired.desired_status;
      server_stop_code_ = desired.stop_code;
      server_stop_reason_ = desired.stopped_reason;
    }
    wake();
  }

  // The task's security groups changed (a rule, or who belongs to a source group): the runner
  // applies the new rules at once to an attached task; one still attaching gets them after.
  // Every runner applies its own, so a change to a group many tasks share becomes a few nft
  // transactions (AwsvpcNetwork batches concurrent ones), not one per task in a row.
  void update_ingress(const std::optional<DesiredEni>& desired) {
    {
      std::lock_guard lock(mutex_);
      if (!eni_ || !desired || eni_->ingress == desired->ingress) return;
      eni_->ingress = desired->ingress;
      ingress_stale_ = eni_status_ == "ATTACHED";
    }
    wake();
  }

  // The server no longer lists the task.
  void disown() {
    {
      std::lock_guard lock(mutex_);
      if (desired_ == "STOPPED") return;
      desired_ = "STOPPED";
      server_stop_reason_ = "The control plane no longer assigns the task to this instance";
    }
    wake();
  }

  bool stopped() const {
    std::lock_guard lock(mutex_);
    return status_ == TaskStatus::kStopped;
  }

  bool settled() const {
    std::lock_guard lock(mutex_);
    return status_ == TaskStatus::kStopped && acknowledged_ >= version_;
  }

  std::optional<Report> report(const std::string& cluster) const {
    std::lock_guard lock(mutex_);
    if (acknowledged_ >= version_) return std::nullopt;
    return Report{arn_, version_, state_change(cluster)};
  }

  // Until when the task's report is held back (TaskEngine::kStartingReportHold): nullopt when
  // it is not,
  // or when there is nothing new to report.
  std::optional<TimePoint> report_held_until(TimePoint now) const {
    std::lock_guard lock(mutex_);
    if (!starting_since_ || status_ >= TaskStatus::kRunning || acknowledged_ >= version_) {
      return std::nullopt;
    }
    TimePoint until = *starting_since_ + kStartingReportHold;
    // A wall clock set back does not stretch the wait.
    if (now >= until || now < *starting_since_) return std::nullopt;
    return until;
  }

  void acknowledge(std::uint64_t version) {
    std::lock_guard lock(mutex_);
    acknowledged_ = std::max(acknowledged_, version);
  }

  void unacknowledge() {
    std::lock_guard lock(mutex_);
    acknowledged_ = 0;
  }

  TimePoint stopped_at() const {
    std::lock_guard lock(mutex_);
    return execution_stopped_.value_or(TimePoint{});
  }

  bool owns_token(std::string_view token) const {
    std::lock_guard lock(mutex_);
    return std::ranges::any_of(containers_, [&](const Container& container) {
      return !container.metadata_token.empty() && container.metadata_token == token;
    });
  }

  MetadataView metadata(std::string_view token, bool with_stats) const {
    std::lock_guard lock(mutex_);
    MetadataView view;
    bj::array containers;
    for (const Container& container : containers_) {
      bj::object entry = container_metadata(container);
      bool own = container.metadata_token == token;
      if (own) view.container = entry;
      containers.push_back(std::move(entry));
      if (!with_stats || container.runtime_id.empty()) continue;
      bj::object stats = container_stats(container);
      if (own) view.stats = stats;
      view.task_stats[container.runtime_id] = std::move(stats);
    }
    view.task = task_metadata(std::move(containers));
    return view;
  }

  fs::path dir() const { return engine_.layout_.task_dir(id_); }
  fs::path run_dir() const { return engine_.layout_.task_run_dir(id_); }
  const std::string& arn() const { return arn_; }

 private:
  // --- the thread -----------------------------------------------------------------------------

  void run() {
    if (status() == TaskStatus::kStopped) return;  // restored after it stopped: report only
    if (restored_) reattach();
    follow_desired();  // a task stopped before it got here is never pulled
    if (status() < TaskStatus::kRunning && !pull_stopped_ && !stopping()) {
      on_scratch_thread([this] { prepare(); });
    }
    TimePoint next_log_check = engine_.clock_.now() + kLogCheckInterval;
    ThreadStack stack;
    while (!quitting_) {
      step();
      if (status() == TaskStatus::kStopped) return;
      TimePoint now = engine_.clock_.now();
      if (now >= next_log_check) {
        rotate_logs();
        // The runner waits most of its life: what a report or a save touched below this frame
        // goes back to the kernel (with 200 tasks, 1 MiB of stacks). Only here, every 10 s:
        // trimming before every wait made launches slower in A/B runs (about 5 ms p50).
        stack.trim();
        next_log_check = now + kLogCheckInterval;
      }
      wait_for_event(std::min(next_deadline(), next_log_check));
    }
  }

  // Pulls every container's image, creates the task's cgroup and mounts each container's
  // rootfs. The task's network (an awsvpc task's interface, or each bridge and none-mode
  // container's own) is set up meanwhile, on a thread of its own: neither waits for the other.
  void prepare() {
    {
      std::lock_guard lock(mutex_);
      pull_started_ = engine_.clock_.now();
    }
    set_status(TaskStatus::kPending);
    spdlog::debug("task {}: preparing after {} ms", id_, elapsed_ms());
    bool awsvpc = json::string_or(definition_, "networkMode", "bridge") == "awsvpc";
    std::optional<std::future<Result<AwsvpcEndpoint>>> attaching;
    if (awsvpc) attaching = begin_task_network();
    std::optional<std::future<void>> connecting = begin_container_networks();
    std::optional<PrepareFailure> failed = prepare_containers();
    // Whatever the rest came to, the attachments are recorded, so the teardown undoes them.
    Status attached = awsvpc ? end_task_network(std::move(attaching)) : Status{};
    if (connecting) connecting->get();
    if (quitting_) return;
    if (failed && failed->container != nullptr) {
      fail_to_start(*failed->container, std::move(failed->reason));
      return;
    }
    if (failed) {
      fail_task(std::move(failed->reason));
      return;
    }
    if (!attached) {
      fail_task("ResourceInitializationError: unable to set up the task's network interface: " +
                attached.error().message);
      return;
    }
    // pullStoppedAt and the attachment's ATTACHED go with the report of the first container's
    // start, which follows at once: a report of their own would only hold that one back.
    save();
  }

  // What stopped prepare_containers(): a container's (its pull or its rootfs) or the task's.
  struct PrepareFailure {
    Container* container = nullptr;  // null: the task's own
    std::string reason;
  };

  std::optional<PrepareFailure> prepare_containers() {
    std::vector<std::optional<EarlyMount>> early;
    std::future<void> mounting = begin_early_mounts(early);
    std::optional<PrepareFailure> failed = fetch_all_secrets();
    if (!failed) failed = pull_images();
    if (!failed) failed = create_task_cgroup();
    settle_early_mounts(mounting, early);
    if (failed) return failed;
    for (Container& container : containers_) {
      if (quitting_) return std::nullopt;
      if (auto mounted = mount_container_rootfs(container); !mounted) {
        return PrepareFailure{&container, "CannotStartContainerError: " + mounted.error().message};
      }
    }
    return std::nullopt;
  }

  // Before any pull, as ECS does: a task whose secrets cannot be had fails without
  // downloading its images.
  std::optional<PrepareFailure> fetch_all_secrets() {
    for (Container& container : containers_) {
      if (quitting_) return std::nullopt;
      if (auto fetched = fetch_secrets(container); !fetched) {
        return PrepareFailure{&container, fetched.error().message};
      }
    }
    return std::nullopt;
  }

  // Its secrets and environment files. The error's message is the reason to report (see
  // fetch_container_secrets and fetch_environment_files).
  Status fetch_secrets(Container& container) {
    if (!container.secrets) {
      auto fetched = fetch_container_secrets(container.definition, engine_.options_.fetch_secret);
      if (!fetched) return std::unexpected(fetched.error());
      container.secrets = std::move(*fetched);
    }
    if (!container.file_environment) {
      auto fetched =
          fetch_environment_files(container.definition, container_overrides(container.facts.name),
                                  engine_.options_.fetch_s3_object);
      if (!fetched) return std::unexpected(fetched.error());
      container.file_environment = std::move(*fetched);
    }
    return {};
  }

  std::optional<PrepareFailure> pull_images() {
    for (Container& container : containers_) {
      if (quitting_) return std::nullopt;
      auto image = pull(container);
      if (!image) {
        return PrepareFailure{&container, "CannotPullContainerError: " + image.error().message};
      }
    }
    {
      std::lock_guard lock(mutex_);
      pull_stopped_ = engine_.clock_.now();
    }
    spdlog::debug("task {}: images ready after {} ms", id_, elapsed_ms());
    return std::nullopt;
  }

  std::optional<PrepareFailure> create_task_cgroup() {
    auto created = engine_.cgroups_.create(task_cgroup_path(id_), task_limits());
    if (!created) {
      return PrepareFailure{nullptr, "CannotCreateTaskCgroupError: " + created.error().message};
    }
    std::lock_guard lock(mutex_);
    cgroup_created_ = true;
    return std::nullopt;
  }

  // A rootfs mounted from the image the cache holds for a container's reference, before the
  // registry check of that reference: the check nearly always confirms the cached image.
  struct EarlyMount {
    Image image;  // acquired from the image store until settled
    Result<fs::path> merged = fail(ErrorCode::kInternal, "not mounted");
  };

  // Mounts, on a thread of its own, the rootfs of each container whose image is cached.
  std::future<void> begin_early_mounts(std::vector<std::optional<EarlyMount>>& mounts) {
    mounts.resize(containers_.size());
    bool any = false;
    for (std::size_t index = 0; index < containers_.size(); ++index) {
      auto cached = engine_.images_.acquire_cached(
          json::string_or(containers_[index].definition, "image", ""));
      if (!cached) continue;
      mounts[index].emplace(EarlyMount{std::move(*cached)});
      any = true;
    }
    if (!any) return {};
    return std::async(std::launch::async, [this, &mounts] {
      for (std::size_t index = 0; index < mounts.size() && !quitting_; ++index) {
        if (mounts[index]) {
          mounts[index]->merged = mount_layers(containers_[index], mounts[index]->image.diff_ids);
        }
      }
    });
  }

  // Keeps each early mount whose layers are those of the image the check confirmed; undoes the
  // others (mounted again by mount_container_rootfs()).
  void settle_early_mounts(std::future<void>& mounting,
                           std::vector<std::optional<EarlyMount>>& mounts) {
    if (mounting.valid()) mounting.get();
    for (std::size_t index = 0; index < mounts.size(); ++index) {
      if (!mounts[index]) continue;
      Container& container = containers_[index];
      EarlyMount& mount = *mounts[index];
      if (mount.merged && container.image && container.image->diff_ids == mount.image.diff_ids) {
        container.rootfs = *mount.merged;
      } else if (mount.merged) {
        if (auto removed = remove_rootfs(engine_.layout_, {id_, container.facts.name}); !removed) {
          spdlog::warn("task {}: {}", id_, removed.error().message);
        }
      }
      engine_.images_.release(mount.image.manifest_digest);
    }
  }

  // The container's rootfs from its image's layers, mounted once by this runner.
  Result<fs::path> mount_container_rootfs(Container& container) {
    if (!container.rootfs.empty()) return container.rootfs;
    auto image = pull(container);
    if (!image) return std::unexpected(image.error());
    auto merged = mount_layers(container, (*image)->diff_ids);
    if (!merged) return std::unexpected(merged.error());
    container.rootfs = *merged;
    return container.rootfs;
  }

  Result<fs::path> mount_layers(const Container& container,
                                const std::vector<oci::Digest>& diff_ids) const {
    ContainerRef ref{id_, container.facts.name};
    if (auto valid = validate_container_ref(ref); !valid) return std::unexpected(valid.error());
    auto merged = mount_rootfs(engine_.layout_, ref, diff_ids, [&](const fs::path& dir) {
      return engine_.claim_spare(kSpareContainer, dir);
    });
    if (merged) {
      spdlog::debug("task {}: container {} rootfs mounted after {} ms", id_, container.facts.name,
                    elapsed_ms());
    }
    return merged;
  }

  // The task's own namespace with its ENI's address and its security groups' rules, and the
  // metadata endpoint inside it. ACTIVATING in ECS terms; reported as the attachment ATTACHED.
  Status attach_task_network() { return end_task_network(begin_task_network()); }

  // Starts the attachment on a thread of its own; nullopt when it cannot start (the reason
  // comes from end_task_network).
  std::optional<std::future<Result<AwsvpcEndpoint>>> begin_task_network() {
    if (engine_.awsvpc_ == nullptr) return std::nullopt;
    AwsvpcSpec spec;
    {
      std::lock_guard lock(mutex_);
      if (!eni_) return std::nullopt;
      spec = {id_, eni_->ip, eni_->mac, eni_->ingress};
    }
    return std::async(std::launch::async, [network = engine_.awsvpc_, spec = std::move(spec)] {
      return network->attach(spec);
    });
  }

  Status end_task_network(std::optional<std::future<Result<AwsvpcEndpoint>>> attaching) {
    if (engine_.awsvpc_ == nullptr) {
      return fail(ErrorCode::kUnsupportedFeature,
                  "networkMode awsvpc is not available on this instance: " +
                      engine_.options_.awsvpc_unavailable);
    }
    if (!attaching) return invalid("the control plane assigned no network interface");
    auto endpoint = attaching->get();
    if (!endpoint) return std::unexpected(endpoint.error());
    {
      std::lock_guard lock(mutex_);
      task_netns_ = endpoint->netns_path;
      eni_status_ = "ATTACHED";
      ingress_stale_ = eni_ && eni_->ingress != endpoint->ingress;  // changed meanwhile: apply next
    }
    save();
    serve_metadata_in(id_, endpoint->netns_path);
    spdlog::debug("task {}: network interface attached after {} ms", id_, elapsed_ms());
    return {};
  }

  // Every container's own network (bridge, none), set up on a thread of its own while the
  // images are checked: it needs nothing from them. A failure waits for the container's start.
  std::optional<std::future<void>> begin_container_networks() {
    std::string mode = json::string_or(definition_, "networkMode", "bridge");
    if (mode != "bridge" && mode != "none") return std::nullopt;
    return std::async(std::launch::async, [this] {
      for (Container& container : containers_) {
        if (quitting_) return;
        container.network = connect_container(container);
      }
    });
  }

  Result<ContainerNetwork> connect_container(Container& container) {
    std::string runtime_id = endpoint_id(container);
    if (json::string_or(definition_, "networkMode", "bridge") == "bridge") {
      auto endpoint = attach_bridge(container, runtime_id);
      if (!endpoint) return std::unexpected(endpoint.error());
      return ContainerNetwork{endpoint->netns_path, endpoint->gateway};
    }
    if (engine_.awsvpc_ == nullptr) return ContainerNetwork{};
    auto netns = isolate(container, runtime_id);
    if (!netns) return std::unexpected(netns.error());
    return ContainerNetwork{*netns, ""};
  }

  // A none-mode container's namespace of its own: loopback only, and the metadata endpoint.
  Result<std::string> isolate(Container& container, const std::string& runtime_id) {
    auto endpoint = engine_.awsvpc_->attach(AwsvpcSpec{runtime_id, "", "", {}});
    if (!endpoint) return std::unexpected(endpoint.error());
    {
      std::lock_guard lock(mutex_);
      container.isolated = true;
    }
    save();
    serve_metadata_in(runtime_id, endpoint->netns_path);
    return endpoint->netns_path;
  }

  void serve_metadata_in(const std::string& key, const std::string& netns_path) const {
    if (!engine_.options_.serve_metadata_in) return;
    // The agent's port rather than ECS's 80: a task's own server on 0.0.0.0:80 must not
    // collide with the endpoint inside its namespace.
    auto listening = listen_in_namespace(netns_path, std::string(kMetadataAddress),
                                         engine_.options_.metadata_port);
    if (!listening) {
      spdlog::warn("task {}: no metadata endpoint in its namespace: {}", id_,
                   listening.error().message);
      return;
    }
    engine_.options_.serve_metadata_in(key, std::move(*listening));
  }

  void release_metadata(const std::string& key) const {
    if (engine_.options_.release_metadata) engine_.options_.release_metadata(key);
  }

  Result<Image*> pull(Container& container) {
    if (container.image) return &*container.image;
    std::string reference = json::string_or(container.definition, "image", "");
    // The registry login comes with the secrets, fetched before any pull (fetch_secrets).
    auto image = engine_.images_.ensure(
        reference, container.secrets ? container.secrets->registry : std::nullopt);
    if (!image) return std::unexpected(image.error());
    if (container.image_acquired && container.image_digest != image->manifest_digest.str()) {
      release_image(container);  // a resumed task held the image its tag named before
    }
    if (!container.image_acquired) {
      engine_.images_.acquire(image->manifest_digest);
      container.image_acquired = true;
    }
    {
      std::lock_guard lock(mutex_);
      container.image_digest = image->manifest_digest.str();
    }
    container.image = std::move(*image);
    return &*container.image;
  }

  // One pass over the task: react to the desired status, exits, dependencies and health.
  void step() {
    apply_ingress();
    collect_exits();
    follow_desired();
    if (!stopping()) {
      // What a start changes together (a container RUNNING, then the task ACTIVATING and
      // RUNNING) is saved and reported once: a report in flight would hold the next one back.
      batch_changes([this] {
        start_ready_containers();
        if (!stopping()) check_running();
      });
      detach_started_rootfs();
    }
    if (!stopping()) run_health_checks();
    if (stopping()) continue_stop();
  }

  void apply_ingress() {
    std::vector<IngressRule> rules;
    {
      std::lock_guard lock(mutex_);
      if (!ingress_stale_) return;
      ingress_stale_ = false;
      rules = eni_->ingress;
    }
    save();
    if (engine_.awsvpc_ == nullptr) return;
    if (auto updated = engine_.awsvpc_->update_ingress(id_, rules); !updated) {
      // A revoked rule must not stay in force: tried again at the runner's next step.
      spdlog::warn("task {}: updating its security group rules: {}", id_, updated.error().message);
      std::lock_guard lock(mutex_);
      ingress_stale_ = true;
    }
  }

  // Starts stopping when the control plane wants the task stopped.
  void follow_desired() {
    if (stopping()) return;
    std::string code;
    std::string reason;
    {
      std::lock_guard lock(mutex_);
      if (desired_ != "STOPPED") return;
      code = server_stop_code_.empty() ? std::string(kUserInitiated) : server_stop_code_;
      reason = server_stop_reason_.empty() ? "Task stopped by user" : server_stop_reason_;
    }
    begin_stop(code, reason);
  }

  void start_ready_containers() {
    std::vector<ContainerFacts> facts = all_facts();
    for (std::size_t index = 0; index < containers_.size(); ++index) {
      Container& container = containers_[index];
      if (container.facts.status != ContainerRunStatus::kPending || container.created) continue;
      StartVerdict verdict = start_verdict(facts, index);
      if (verdict.decision == StartDecision::kWait) continue;
      if (verdict.decision == StartDecision::kNever) {
        fail_to_start(container, "DependencyConditionNeverSatisfied: " + verdict.reason);
        return;
      }
      Status fetched;
      Status started;
      on_scratch_thread([&] {
        // Fetched while preparing, unless an agent restart came in between.
        fetched = fetch_secrets(container);
        if (fetched) started = start_container(container);
      });
      if (!fetched) {
        fail_to_start(container, fetched.error().message);
        return;
      }
      if (!started) {
        fail_to_start(container, "CannotStartContainerError: " + started.error().message);
        return;
      }
      facts = all_facts();
    }
  }

  // The host's view of a started container's rootfs goes once the start is reported: the
  // container holds its own. Only the host's mount table would grow without it.
  void detach_started_rootfs() {
    for (Container& container : containers_) {
      if (!container.rootfs_detach_due) continue;
      container.rootfs_detach_due = false;
      if (auto detached = detach_rootfs(engine_.layout_, {id_, container.facts.name}); !detached) {
        spdlog::warn("task {}: {}", id_, detached.error().message);
      }
    }
  }

  // RUNNING once every container has started (or run to completion); the task stops when an
  // essential container stopped, or when every container did.
  void check_running() {
    bool all_past_pending = true;
    bool all_stopped = true;
    const Container* exited_essential = nullptr;
    for (const Container& container : containers_) {
      if (container.facts.status == ContainerRunStatus::kPending) all_past_pending = false;
      if (container.facts.status != ContainerRunStatus::kStopped) all_stopped = false;
      if (container.facts.status == ContainerRunStatus::kStopped && container.facts.essential &&
          exited_essential == nullptr) {
        exited_essential = &container;
      }
    }
    if (exited_essential != nullptr) {
      begin_stop(std::string(kEssentialContainerExited), std::string(kEssentialExitReason));
      return;
    }
    if (all_stopped && !containers_.empty()) {
      begin_stop(std::string(kEssentialContainerExited), std::string(kEssentialExitReason));
      return;
    }
    if (all_past_pending && status() < TaskStatus::kRunning) {
      // ACTIVATING is where an ENI or a load balancer target would be set up: none yet.
      set_status(TaskStatus::kActivating);
      set_status(TaskStatus::kRunning);
      spdlog::debug("task {}: RUNNING after {} ms", id_, elapsed_ms());
    }
  }

  Status start_container(Container& container) {
    // Mounted while preparing, unless an agent restart came in between.
    auto merged = mount_container_rootfs(container);
    if (!merged) return std::unexpected(merged.error());
    auto image = pull(container);
    if (!image) return std::unexpected(image.error());
    ContainerRef ref{id_, container.facts.name};

    BundleInput input;
    input.container = container.definition;
    input.overrides = container_overrides(container.facts.name);
    auto limits = task_limits();
    input.task_cpu = limits.cpu_units;
    input.task_memory_mib = limits.memory_mib;
    input.image = (*image)->config;
    input.rootfs = *merged;
    input.bundle_dir = engine_.layout_.container_bundle_dir(ref);
    std::string runtime_id = endpoint_id(container);  // the container is named as its endpoint
    input.hostname = json::string_or(container.definition, "hostname", runtime_id.substr(0, 12));
    input.extra_environment = container.secrets.value().environment;  // wins over `environment`
    input.file_environment = container.file_environment.value();      // loses to `environment`
    std::string mode = json::string_or(definition_, "networkMode", "bridge");
    if (mode == "host") {
      input.network_mode = NetworkMode::kHost;
      add_metadata_uri(input, container, "127.0.0.1", false);
    } else if (mode == "bridge" || mode == "none") {
      // Connected while preparing, unless an agent restart came in between.
      if (!container.network) container.network = connect_container(container);
      if (!*container.network) return std::unexpected(container.network->error());
      const ContainerNetwork& network = **container.network;
      if (!network.netns_path.empty()) {
        input.network_namespace = network.netns_path;
        input.ip_address = container.ip;
        add_metadata_uri(input, container,
                         network.gateway.empty() ? std::string(kMetadataAddress) : network.gateway,
                         network.gateway.empty());
      }
    } else if (mode == "awsvpc") {
      // Attached while preparing, unless an agent restart came in between.
      if (task_netns_.empty()) {
        if (auto attached = attach_task_network(); !attached) return attached;
      }
      std::lock_guard lock(mutex_);
      input.network_namespace = task_netns_;
      input.ip_address = eni_->ip;
      add_metadata_uri(input, container, std::string(kMetadataAddress), true);
    } else {
      return fail(ErrorCode::kUnsupportedFeature,
                  "networkMode " + mode + " is not supported by this agent");
    }
    spdlog::debug("task {}: container {} network ready after {} ms", id_, container.facts.name,
                  elapsed_ms());
    input.cgroup_parent = task_cgroup_path(id_);
    input.rlimit_ceilings = current_rlimit_ceilings();
    input.host_capabilities = current_capability_bounding_set();
    input.init_binary = engine_.options_.init_binary;
    auto user = resolve_user_in_rootfs(*merged, effective_user(container.definition, input.image));
    if (!user) return std::unexpected(user.error());
    input.user = *user;
    auto spec = make_runtime_spec(input);
    if (!spec) return std::unexpected(spec.error());
    engine_.runtime_.tune_spec(runtime_id, *spec);
    if (auto written =
            write_bundle(input.bundle_dir, *spec, make_bundle_files(input, read_host_files()));
        !written) {
      return written;
    }
    fs::path logs = engine_.layout_.container_logs_dir(ref);
    ContainerIo io{logs / "stdout", logs / "stderr"};
    {
      std::lock_guard lock(mutex_);
      container.runtime_id = runtime_id;
      container.created = true;  // from here on teardown must delete it
    }
    save();
    spdlog::debug("task {}: container {} bundle ready after {} ms", id_, container.facts.name,
                  elapsed_ms());
    engine_.start_slots_.acquire();
    long slot_at = elapsed_ms();
    auto pid = engine_.runtime_.run(runtime_id, input.bundle_dir, io);
    engine_.start_slots_.release();
    if (pid) {
      std::lock_guard lock(mutex_);
      container.pid = *pid;
    }
    spdlog::debug("task {}: container {}: the runtime took {} ms", id_, container.facts.name,
                  elapsed_ms() - slot_at);
    if (!pid) return std::unexpected(pid.error());
    container.rootfs_detach_due = true;
    container.pidfd = open_pidfd(*pid);
    spdlog::debug("task {}: container {} started after {} ms", id_, container.facts.name,
                  elapsed_ms());
    set_started_now(container);
    auto check = parse_health_check(container.definition);
    if (check && *check) {
      container.health.emplace(**check);
      container.next_check = container.started_at + std::min(1s, (*check)->interval);
    }
    {
      std::lock_guard lock(mutex_);
      container.facts.status = ContainerRunStatus::kRunning;
    }
    changed();
    return {};
  }

  // The container's own network namespace on the agent's bridge, with its port mappings.
  Result<Endpoint> attach_bridge(Container& container, const std::string& runtime_id) {
    if (engine_.bridge_ == nullptr) {
      return fail(ErrorCode::kUnsupportedFeature,
                  "networkMode bridge is not available on this instance: " +
                      engine_.options_.bridge_unavailable);
    }
    auto endpoint = engine_.bridge_->attach(runtime_id, port_mappings(container.definition));
    if (!endpoint) return std::unexpected(endpoint.error());
    {
      std::lock_guard lock(mutex_);
      container.attached = true;
      container.bindings = endpoint->bindings;
      container.ip = endpoint->ip;
    }
    save();  // before the runtime: a crash now leaves an endpoint that reconcile() knows
    return endpoint;
  }

  // ECS_CONTAINER_METADATA_URI_V4 (and the v3 name, which serves the same) for the container,
  // on `host` at the agent's metadata port as the container reaches it; `in_namespace` when the
  // agent listens inside the container's own namespace (serve_metadata_in).
  void add_metadata_uri(BundleInput& input, const Container& container, const std::string& host,
                        bool in_namespace) const {
    if (container.metadata_token.empty() || engine_.options_.metadata_port == 0) return;
    if (in_namespace && !engine_.options_.serve_metadata_in) return;
    std::string base = "http://" + host + ":" + std::to_string(engine_.options_.metadata_port);
    input.extra_environment.emplace_back("ECS_CONTAINER_METADATA_URI_V4",
                                         base + "/v4/" + container.metadata_token);
    input.extra_environment.emplace_back("ECS_CONTAINER_METADATA_URI",
                                         base + "/v3/" + container.metadata_token);
  }

  static std::vector<PortMapping> port_mappings(const bj::object& definition) {
    std::vector<PortMapping> mappings;
    if (const auto* list = json::get_array(definition, "portMappings")) {
      for (const auto& item : *list) {
        if (!item.is_object()) continue;
        const auto& entry = item.as_object();
        std::string protocol = json::string_or(entry, "protocol", "tcp");
        if (auto range = port_range(json::string_or(entry, "containerPortRange", ""))) {
          // Each port of the range gets a host port, allocated as one consecutive block so
          // that the host ports are a range too, as ECS reports them (see reported_bindings).
          for (std::uint32_t port = range->first; port <= range->second; ++port) {
            mappings.push_back(
                {static_cast<std::uint16_t>(port), 0, protocol, port != range->first});
          }
          continue;
        }
        auto container_port = json::get_int(entry, "containerPort");
        if (!container_port) continue;
        mappings.push_back(
            {static_cast<std::uint16_t>(*container_port),
             static_cast<std::uint16_t>(json::get_int(entry, "hostPort").value_or(0)), protocol});
      }
    }
    return mappings;
  }

  // After an agent restart: learn what became of the containers while nobody watched.
  void reattach() {
    if (!task_netns_.empty() && eni_status_ == "ATTACHED") {
      serve_metadata_in(id_, task_netns_);
      // The agent may have died between saving new rules here and putting them in force.
      std::lock_guard lock(mutex_);
      ingress_stale_ = true;
    }
    for (const Container& container : containers_) {
      if (!container.isolated || container.facts.status == ContainerRunStatus::kStopped) continue;
      std::string endpoint = endpoint_id(container);
      std::string netns = engine_.awsvpc_ ? engine_.awsvpc_->netns_path(endpoint) : "";
      if (!netns.empty()) serve_metadata_in(endpoint, netns);
    }
    for (Container& container : containers_) {
      if (!container.created || container.facts.status == ContainerRunStatus::kStopped) continue;
      auto state = engine_.runtime_.state(container.runtime_id);
      if (!state) {
        record_exit(container, std::nullopt,
                    "The container disappeared while the agent was away; its exit status is "
                    "unknown");
        continue;
      }
      if (state->status == ContainerStatus::kCreated && !stopping()) {
        // Created but not started when the agent died: start it now.
        container.pidfd = open_pidfd(state->pid);
        if (auto started = engine_.runtime_.start(container.runtime_id); !started) {
          fail_to_start(container, "CannotStartContainerError: " + started.error().message);
          continue;
        }
        set_started_now(container);
        std::lock_guard lock(mutex_);
        container.facts.status = ContainerRunStatus::kRunning;
        continue;
      }
      if (state->status == ContainerStatus::kStopped) {
        read_exit(container);
        continue;
      }
      container.pidfd = open_pidfd(state->pid);
      set_started_now(container);
      {
        std::lock_guard lock(mutex_);
        container.pid = state->pid;
      }
      auto check = parse_health_check(container.definition);
      if (check && *check) {
        container.health.emplace(**check);
        container.next_check = container.started_at;
      }
      std::lock_guard lock(mutex_);
      container.facts.status = ContainerRunStatus::kRunning;
    }
    for (Container& container : containers_) {
      if (container.image_acquired || container.image_digest.empty()) continue;
      if (auto digest = oci::parse_digest(container.image_digest)) {
        engine_.images_.acquire(*digest);
        container.image_acquired = true;
      }
    }
    changed();
  }

  void collect_exits() {
    for (Container& container : containers_) {
      if (container.facts.status != ContainerRunStatus::kRunning) continue;
      // No pidfd: the init was gone (and reaped by its shim) before one could be opened.
      if (container.pidfd) {
        pollfd entry{container.pidfd.get(), POLLIN, 0};
        if (::poll(&entry, 1, 0) <= 0) continue;
      }
      read_exit(container);
    }
  }

  void read_exit(Container& container) {
    container.pidfd.reset();
    auto status = engine_.runtime_.wait(container.runtime_id, kExitReadTimeout);
    if (!status || !*status) {
      record_exit(container, std::nullopt,
                  "Its exit status is unknown: " +
                      (status ? std::string("it did not exit") : status.error().message));
      return;
    }
    std::string reason;
    if ((*status)->signal == SIGKILL && oom_killed(container)) {
      reason = std::string(kOutOfMemoryReason);
    }
    record_exit(container, (*status)->exit_code, reason);
  }

  bool oom_killed(const Container& container) const {
    std::string task_cgroup = task_cgroup_path(id_);
    for (const std::string& path :
         {container_cgroup_path(task_cgroup, container.facts.name), task_cgroup}) {
      auto kills = engine_.cgroups_.oom_kills(path);
      if (kills && *kills > 0) return true;
    }
    return false;
  }

  void record_exit(Container& container, std::optional<int> exit_code, std::string reason) {
    {
      std::lock_guard lock(mutex_);
      container.facts.status = ContainerRunStatus::kStopped;
      container.facts.exit_code = exit_code;
      if (!reason.empty()) container.reason = std::move(reason);
    }
    spdlog::info("task {}: container {} stopped (exit code {})", id_, container.facts.name,
                 exit_code ? std::to_string(*exit_code) : "unknown");
    changed();
  }

  void run_health_checks() {
    TimePoint now = engine_.clock_.now();
    bool any = false;
    for (Container& container : containers_) {
      if (!container.health || container.facts.status != ContainerRunStatus::kRunning) continue;
      if (now < container.next_check) continue;
      const HealthCheck& check = container.health->check();
      auto result = engine_.runtime_.exec(
          container.runtime_id, check.command,
          std::chrono::duration_cast<std::chrono::milliseconds>(check.timeout));
      bool passed = result && result->exit_code == 0;
      bool in_start_period = now - container.started_at < check.start_period;
      HealthStatus health = container.health->record(passed, in_start_period);
      container.next_check = engine_.clock_.now() + check.interval;
      if (health != container.facts.health) {
        std::lock_guard lock(mutex_);
        container.facts.health = health;
        any = true;
      }
    }
    if (any) changed();
  }

  // --- stopping -------------------------------------------------------------------------------

  bool stopping() const {
    std::lock_guard lock(mutex_);
    return status_ >= TaskStatus::kDeactivating;
  }

  void begin_stop(const std::string& code, const std::string& reason) {
    {
      std::lock_guard lock(mutex_);
      if (status_ >= TaskStatus::kDeactivating) return;
      if (stop_code_.empty()) stop_code_ = code;
      if (stopped_reason_.empty()) stopped_reason_ = reason;
      desired_ = "STOPPED";
      // DEACTIVATING is where a load balancer target would be deregistered; there is none yet,
      // so continue_stop() moves on to STOPPING at once.
      status_ = TaskStatus::kDeactivating;
    }
    spdlog::info("task {}: stopping ({}: {})", id_, code, reason);
    changed();
  }

  void fail_to_start(Container& container, std::string reason) {
    spdlog::warn("task {}: container {}: {}", id_, container.facts.name, reason);
    {
      std::lock_guard lock(mutex_);
      container.reason = reason;
      if (!container.created) container.facts.status = ContainerRunStatus::kStopped;
    }
    fail_task(std::move(reason));
  }

  void fail_task(std::string reason) { begin_stop(std::string(kTaskFailedToStart), reason); }

  void continue_stop() {
    set_status(TaskStatus::kStopping);
    TimePoint now = engine_.clock_.now();
    std::vector<ContainerFacts> facts = all_facts();
    for (std::size_t index = 0; index < containers_.size(); ++index) {
      Container& container = containers_[index];
      if (container.facts.status == ContainerRunStatus::kPending) {
        std::lock_guard lock(mutex_);
        container.facts.status = ContainerRunStatus::kStopped;
        continue;
      }
      if (container.facts.status != ContainerRunStatus::kRunning) continue;
      if (!container.signalled) {
        if (!may_stop(facts, index)) continue;
        container.signalled = true;
        container.kill_at = now + stop_timeout(container);
        signal_container(container, SIGTERM);
      } else if (now >= container.kill_at) {
        signal_container(container, SIGKILL);
        container.kill_at = now + 1s;  // again if it survives (it was still starting)
      }
    }
    bool all_stopped = std::ranges::all_of(containers_, [](const Container& container) {
      return container.facts.status == ContainerRunStatus::kStopped;
    });
    if (all_stopped) on_scratch_thread([this] { tear_down(); });
  }

  // A container's bridge or own-namespace endpoint, and its runtime id once it exists: named
  // before the container is (runtime_id is set only when it is created).
  std::string endpoint_id(const Container& container) const {
    return id_ + "-" + container.facts.name;
  }

  // Signals the container's init through its pidfd (no runtime process to spawn, and never a
  // recycled pid); through the runtime when there is none.
  void signal_container(Container& container, int signal) {
    if (container.pidfd &&
        ::syscall(SYS_pidfd_send_signal, container.pidfd.get(), signal, nullptr, 0) == 0) {
      return;
    }
    (void)engine_.runtime_.kill(container.runtime_id, signal);
  }

  // started_at is read by the metadata endpoint's threads.
  void set_started_now(Container& container) {
    std::lock_guard lock(mutex_);
    container.started_at = engine_.clock_.now();
  }

  // Lets the image store clean up the container's image again.
  void release_image(Container& container) {
    if (!container.image_acquired) return;
    if (auto digest = oci::parse_digest(container.image_digest)) engine_.images_.release(*digest);
    container.image_acquired = false;
  }

  std::chrono::seconds stop_timeout(const Container& container) const {
    auto seconds = json::get_int(container.definition, "stopTimeout");
    return seconds ? std::chrono::seconds(*seconds) : engine_.options_.default_stop_timeout;
  }

  void tear_down() {
    set_status(TaskStatus::kDeprovisioning);
    bool all_removed = true;
    for (Container& container : containers_) {
      if (container.created) {
        if (auto removed = engine_.runtime_.remove(container.runtime_id, true); !removed) {
          spdlog::warn("task {}: {}", id_, removed.error().message);
          all_removed = false;
        }
      }
      // Also the rootfs of a container never created: mounted while preparing, maybe by an
      // agent before a restart.
      ContainerRef ref{id_, container.facts.name};
      if (auto removed = remove_rootfs(engine_.layout_, ref); !removed) {
        spdlog::warn("task {}: {}", id_, removed.error().message);
        all_removed = false;
      }
      container.rootfs.clear();
      if (container.attached && engine_.bridge_ != nullptr) {
        if (auto detached = engine_.bridge_->detach(endpoint_id(container)); !detached) {
          spdlog::warn("task {}: {}", id_, detached.error().message);
        }
        std::lock_guard lock(mutex_);
        container.attached = false;
      }
      if (container.isolated && engine_.awsvpc_ != nullptr) {
        release_metadata(endpoint_id(container));
        if (auto detached = engine_.awsvpc_->detach(endpoint_id(container)); !detached) {
          spdlog::warn("task {}: {}", id_, detached.error().message);
        }
        std::lock_guard lock(mutex_);
        container.isolated = false;
      }
      release_image(container);
    }
    detach_task_network();
    if (auto removed = engine_.cgroups_.remove(task_cgroup_path(id_)); !removed) {
      spdlog::warn("task {}: {}", id_, removed.error().message);
    }
    // The bundles go with their containers (the logs stay, on disk, until the task is cleaned
    // up); a container the runtime still knows keeps its bundle.
    if (all_removed) {
      if (auto removed = remove_tree(run_dir()); !removed) {
        spdlog::warn("task {}: {}", id_, removed.error().message);
      }
    }
    {
      std::lock_guard lock(mutex_);
      execution_stopped_ = engine_.clock_.now();
      status_ = TaskStatus::kStopped;
    }
    spdlog::info("task {}: stopped", id_);
    changed();
  }

  // The ENI's namespace and rules go; DETACHED tells the server its address is free again.
  void detach_task_network() {
    std::string netns;
    {
      std::lock_guard lock(mutex_);
      if (!eni_ || eni_status_ == "DETACHED") return;
      netns = task_netns_;
    }
    if (!netns.empty() && engine_.awsvpc_ != nullptr) {
      release_metadata(id_);
      if (auto detached = engine_.awsvpc_->detach(id_); !detached) {
        spdlog::warn("task {}: {}", id_, detached.error().message);
        return;  // stays ATTACHED: the address is not free while the namespace may live
      }
    }
    std::lock_guard lock(mutex_);
    task_netns_.clear();
    eni_status_ = "DETACHED";
  }

  // Milliseconds since this runner was made, for the debug log's timings.
  long elapsed_ms() const {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - born_)
                                 .count());
  }

  // Runs `work` on a short-lived thread and waits for it. Pulling, starting and removing
  // containers go deep (JSON, libcurl, bundle generation); doing them on a thread of their own
  // keeps the runner's stack, which lives as long as the task, to a few pages. glibc reuses
  // the scratch threads' stacks, so they cost memory only while tasks start or stop.
  template <typename Work>
  static void on_scratch_thread(Work work) {
    std::thread scratch(std::move(work));
    scratch.join();
  }

  // --- waiting --------------------------------------------------------------------------------

  TimePoint next_deadline() const {
    TimePoint next = TimePoint::max();
    for (const Container& container : containers_) {
      if (container.facts.status != ContainerRunStatus::kRunning) continue;
      if (!container.pidfd) return TimePoint{};  // already gone: collect its exit at once
      if (container.signalled) next = std::min(next, container.kill_at);
      if (container.health && !container.signalled) next = std::min(next, container.next_check);
    }
    return next;
  }

  void wait_for_event(TimePoint until) {
    std::vector<pollfd> fds;
    fds.push_back({wake_.get(), POLLIN, 0});
    for (const Container& container : containers_) {
      if (container.pidfd && container.facts.status == ContainerRunStatus::kRunning) {
        fds.push_back({container.pidfd.get(), POLLIN, 0});
      }
    }
    TimePoint now = engine_.clock_.now();
    int timeout_ms =
        until == TimePoint::max()
            ? -1
            : static_cast<int>(std::max<std::int64_t>(
                  0,
                  std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1));
    if (timeout_ms > 60'000) timeout_ms = 60'000;
    int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      (void)::read(wake_.get(), &count, sizeof count);
    }
  }

  void wake() {
    std::uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
  }

  // --- state ----------------------------------------------------------------------------------

  TaskStatus status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

  void set_status(TaskStatus status) {
    {
      std::lock_guard lock(mutex_);
      if (status <= status_) return;
      status_ = status;
    }
    changed();
  }

  std::vector<ContainerFacts> all_facts() const {
    std::lock_guard lock(mutex_);
    std::vector<ContainerFacts> facts;
    for (const Container& container : containers_) facts.push_back(container.facts);
    return facts;
  }

  TaskCgroupLimits task_limits() const {
    TaskCgroupLimits limits;
    limits.cpu_units = int_of_string(overrides_, "cpu");
    if (!limits.cpu_units) limits.cpu_units = int_of_string(definition_, "cpu");
    limits.memory_mib = int_of_string(overrides_, "memory");
    if (!limits.memory_mib) limits.memory_mib = int_of_string(definition_, "memory");
    return limits;
  }

  bj::object container_overrides(const std::string& name) const {
    if (const auto* list = json::get_array(overrides_, "containerOverrides")) {
      for (const auto& item : *list) {
        if (item.is_object() && json::string_or(item.as_object(), "name", "") == name) {
          return item.as_object();
        }
      }
    }
    return {};
  }

  void rotate_logs() {
    for (const Container& container : containers_) {
      if (!container.created) continue;
      fs::path logs = engine_.layout_.container_logs_dir({id_, container.facts.name});
      for (const char* file : {"stdout", "stderr"}) {
        rotate_log(logs / file, engine_.options_.log_rotate_bytes, engine_.options_.log_files_kept);
      }
    }
  }

  // Saves the task and offers its new state for reporting; inside batch_changes, once at its end.
  void changed() {
    {
      std::lock_guard lock(mutex_);
      ++version_;
      if (batching_) return;
    }
    publish();
  }

  void publish() const {
    save();
    if (engine_.on_change_) engine_.on_change_();
  }

  template <typename Work>
  void batch_changes(Work work) {
    std::uint64_t before = 0;
    {
      std::lock_guard lock(mutex_);
      batching_ = true;
      before = version_;
    }
    work();
    bool any = false;
    {
      std::lock_guard lock(mutex_);
      batching_ = false;
      any = version_ != before;
    }
    if (any) publish();
  }

  void save() const {
    std::lock_guard saving(save_mutex_);  // one writer of the file at a time
    std::string text;
    {
      std::lock_guard lock(mutex_);
      text = bj::serialize(saved_state());
    }
    std::error_code error;
    if (!fs::exists(dir(), error)) {
      fs::create_directories(dir().parent_path(), error);
      engine_.claim_spare(kSpareTask, dir());
    }
    fs::create_directories(dir(), error);
    if (auto written = state_file_.write(text, Durability::kProcess); !written) {
      spdlog::warn("task {}: saving its state: {}", id_, written.error().message);
    }
  }

  // With mutex_ held.
  bj::object saved_state() const {
    bj::array containers;
    for (const Container& container : containers_) {
      bj::object entry{{"definition", container.definition},
                       {"status", to_string(container.facts.status)},
                       {"healthStatus", to_string(container.facts.health)},
                       {"containerArn", container.arn},
                       {"runtimeId", container.runtime_id},
                       {"imageDigest", container.image_digest},
                       {"reason", container.reason},
                       {"created", container.created},
                       {"attached", container.attached},
                       {"isolated", container.isolated},
                       {"ip", container.ip},
                       {"metadataToken", container.metadata_token},
                       {"pid", container.pid},
                       {"networkBindings", bindings_to_json(container.bindings)}};
      if (container.facts.exit_code) entry["exitCode"] = *container.facts.exit_code;
      containers.push_back(std::move(entry));
    }
    bj::object saved{{"taskArn", arn_},
                     {"taskDefinition", definition_},
                     {"overrides", overrides_},
                     {"desiredStatus", desired_},
                     {"status", to_string(status_)},
                     {"stopCode", stop_code_},
                     {"stoppedReason", stopped_reason_},
                     {"cgroupCreated", cgroup_created_},
                     {"containers", std::move(containers)}};
    if (eni_) {
      saved["eni"] = eni_to_json(*eni_);
      saved["eniStatus"] = eni_status_;
      saved["taskNetns"] = task_netns_;
    }
    put_time(saved, "pullStartedAt", pull_started_);
    put_time(saved, "pullStoppedAt", pull_stopped_);
    put_time(saved, "executionStoppedAt", execution_stopped_);
    return saved;
  }

  // --- task metadata (ECS task metadata endpoint v4 shapes), with mutex_ held -----------------

  bj::object container_metadata(const Container& container) const {
    std::string family = json::string_or(definition_, "family", "");
    std::string mode = json::string_or(definition_, "networkMode", "bridge");
    bj::object limits;
    if (auto cpu = json::get_int(container.definition, "cpu")) limits["CPU"] = *cpu;
    if (auto memory = json::get_int(container.definition, "memory")) limits["Memory"] = *memory;
    bj::object network{{"NetworkMode", mode}};
    if (!container.ip.empty()) network["IPv4Addresses"] = bj::array{bj::string(container.ip)};
    if (mode == "awsvpc" && eni_) {
      network["IPv4Addresses"] = bj::array{bj::string(eni_->ip)};
      network["AttachmentIndex"] = 0;
      network["MACAddress"] = eni_->mac;
      network["IPv4SubnetCIDRBlock"] = eni_->subnet_cidr;
      network["PrivateDNSName"] = eni_->private_dns_name;
      network["SubnetGatewayIpv4Address"] = eni_->subnet_gateway;
    }
    bj::object out{
        {"DockerId", container.runtime_id},
        {"Name", container.facts.name},
        {"DockerName", container.runtime_id},
        {"Image", json::string_or(container.definition, "image", "")},
        {"ImageID", container.image_digest},
        {"Labels",
         bj::object{{"com.amazonaws.ecs.cluster", engine_.options_.cluster_arn},
                    {"com.amazonaws.ecs.container-name", container.facts.name},
                    {"com.amazonaws.ecs.task-arn", arn_},
                    {"com.amazonaws.ecs.task-definition-family", family},
                    {"com.amazonaws.ecs.task-definition-version",
                     std::to_string(json::get_int(definition_, "revision").value_or(0))}}},
        {"DesiredStatus", desired_},
        {"KnownStatus", to_string(container.facts.status)},
        {"Limits", std::move(limits)},
        {"Type", "NORMAL"},
        {"ContainerARN", container.arn},
        {"Networks", bj::array{std::move(network)}}};
    if (container.started_at != TimePoint{})
      out["StartedAt"] = iso8601_millis(container.started_at);
    if (container.facts.exit_code) out["ExitCode"] = *container.facts.exit_code;
    if (container.facts.has_health_check) {
      out["Health"] = bj::object{{"status", to_string(container.facts.health)}};
    }
    return out;
  }

  bj::object task_metadata(bj::array containers) const {
    bj::object limits;
    TaskCgroupLimits task_limits_now = task_limits();
    if (task_limits_now.cpu_units)
      limits["CPU"] = static_cast<double>(*task_limits_now.cpu_units) / 1024;
    if (task_limits_now.memory_mib) limits["Memory"] = *task_limits_now.memory_mib;
    bj::object out{{"Cluster", engine_.options_.cluster_arn},
                   {"TaskARN", arn_},
                   {"Family", json::string_or(definition_, "family", "")},
                   {"Revision", std::to_string(json::get_int(definition_, "revision").value_or(0))},
                   {"DesiredStatus", desired_},
                   {"KnownStatus", to_string(status_)},
                   {"Limits", std::move(limits)},
                   {"AvailabilityZone", engine_.options_.availability_zone},
                   {"LaunchType", "EC2"},
                   {"Containers", std::move(containers)}};
    if (pull_started_) out["PullStartedAt"] = iso8601_millis(*pull_started_);
    if (pull_stopped_) out["PullStoppedAt"] = iso8601_millis(*pull_stopped_);
    if (execution_stopped_) out["ExecutionStoppedAt"] = iso8601_millis(*execution_stopped_);
    return out;
  }

  // Docker's stats JSON from the container's cgroup and its network namespace.
  bj::object container_stats(const Container& container) const {
    std::string path = container_cgroup_path(task_cgroup_path(id_), container.facts.name);
    std::uint64_t memory = engine_.cgroups_.memory_usage(path).value_or(0);
    std::int64_t memory_limit_mib = json::get_int(container.definition, "memory")
                                        .value_or(task_limits().memory_mib.value_or(0));
    bj::object networks;
    if (container.pid > 0 && container.facts.status == ContainerRunStatus::kRunning) {
      networks = network_counters(container.pid);
    }
    return bj::object{
        {"read", iso8601_millis(engine_.clock_.now())},
        {"name", container.runtime_id},
        {"id", container.runtime_id},
        {"cpu_stats",
         bj::object{
             {"cpu_usage", bj::object{{"total_usage", cpu_usage_ns(engine_.cgroups_, path)}}},
             {"system_cpu_usage", system_cpu_ns()},
             {"online_cpus", static_cast<std::int64_t>(std::thread::hardware_concurrency())}}},
        {"memory_stats",
         bj::object{
             {"usage", memory},
             {"limit", memory_limit_mib > 0 ? static_cast<std::uint64_t>(memory_limit_mib) << 20
                                            : std::uint64_t{0}}}},
        {"networks", std::move(networks)},
        {"blkio_stats",
         bj::object{{"io_service_bytes_recursive", io_bytes(engine_.cgroups_, path)}}}};
  }

  // SubmitTaskStateChange's input, with mutex_ held.
  bj::object state_change(const std::string& cluster) const {
    bj::array containers;
    bj::object health;
    std::vector<ContainerFacts> facts;
    for (const Container& container : containers_) {
      bj::object entry{
          {"containerName", container.facts.name},
          {"status", to_string(container.facts.status)},
          {"networkBindings", reported_bindings(container.definition, container.bindings)}};
      if (!container.runtime_id.empty()) entry["runtimeId"] = container.runtime_id;
      if (!container.image_digest.empty()) entry["imageDigest"] = container.image_digest;
      if (container.facts.exit_code) entry["exitCode"] = *container.facts.exit_code;
      if (!container.reason.empty()) entry["reason"] = container.reason.substr(0, 1024);
      containers.push_back(std::move(entry));
      if (container.facts.has_health_check) {
        health[container.facts.name] = to_string(container.facts.health);
      }
      facts.push_back(container.facts);
    }
    bj::object change{{"cluster", cluster},
                      {"task", arn_},
                      {"status", to_string(status_)},
                      {"containers", std::move(containers)},
                      {"healthStatus", to_string(task_health(facts))},
                      {"containerHealth", std::move(health)}};
    if (!stopped_reason_.empty()) change["reason"] = stopped_reason_.substr(0, 1024);
    if (!stop_code_.empty()) change["stopCode"] = stop_code_;
    if (eni_ && !eni_status_.empty()) {
      change["attachments"] =
          bj::array{bj::object{{"attachmentArn", eni_->attachment_arn}, {"status", eni_status_}}};
    }
    put_time(change, "pullStartedAt", pull_started_);
    put_time(change, "pullStoppedAt", pull_stopped_);
    put_time(change, "executionStoppedAt", execution_stopped_);
    return change;
  }

  TaskEngine& engine_;
  const std::string arn_;
  std::string id_;
  UniqueFd wake_;
  std::thread thread_;
  std::atomic<bool> quitting_ = false;
  bool restored_ = false;
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();

  // Guards what reports and apply() read or write; the runner thread alone changes the rest.
  mutable std::mutex mutex_;
  bj::object definition_;
  bj::object overrides_;
  std::string desired_ = "RUNNING";
  std::string server_stop_code_;
  std::string server_stop_reason_;
  TaskStatus status_ = TaskStatus::kProvisioning;
  // When this agent was given the task; nullopt for one restored from its saved state.
  std::optional<TimePoint> starting_since_;
  std::string stop_code_;
  std::string stopped_reason_;
  std::optional<TimePoint> pull_started_;
  std::optional<TimePoint> pull_stopped_;
  std::optional<TimePoint> execution_stopped_;
  bool cgroup_created_ = false;
  std::optional<DesiredEni> eni_;  // networkMode awsvpc
  std::string eni_status_;         // "", ATTACHED or DETACHED, as reported
  std::string task_netns_;         // the ENI's namespace while attached
  bool ingress_stale_ = false;     // eni_->ingress is newer than the rules in force
  std::vector<Container> containers_;
  std::uint64_t version_ = 0;
  mutable std::mutex save_mutex_;
  mutable StateFile state_file_;  // with save_mutex_ held
  bool batching_ = false;         // changes wait for the end of batch_changes
  std::uint64_t acknowledged_ = 0;
};

// ---------------------------------------------------------------------------------------------

TaskEngine::TaskEngine(const Layout& layout, Runtime& runtime, const Cgroups& cgroups,
                       ImageStore& images, BridgeNetwork* bridge, AwsvpcNetwork* awsvpc,
                       const Clock& clock, TaskEngineOptions options,
                       std::function<void()> on_change)
    : layout_(layout),
      runtime_(runtime),
      cgroups_(cgroups),
      images_(images),
      bridge_(bridge),
      awsvpc_(awsvpc),
      clock_(clock),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      start_slots_(std::max(1, options_.parallel_starts)) {
  if (options_.spare_dirs == 0) return;
  // What a task's and a container's directories start with, named as the layout names them.
  ContainerRef sample{"task", "container"};
  fs::path task = layout_.task_dir(sample.task_id);
  fs::path container = layout_.container_dir(sample);
  auto in = [](const fs::path& path, const fs::path& dir) {
    return path.lexically_relative(dir).string();
  };
  std::string state = in(layout_.task_state_file(sample.task_id), task);
  SpareShape task_shape{0711, {}, {{state + ".0", 0600}, {state + ".1", 0600}}};
  std::string logs = in(layout_.container_logs_dir(sample), container);
  SpareShape container_shape{0711,
                             {{in(layout_.container_upper_dir(sample), container), 0700},
                              {in(layout_.container_work_dir(sample), container), 0700},
                              {logs, 0755}},
                             {{logs + "/stdout", 0640}, {logs + "/stderr", 0640}}};
  std::vector<SpareShape> shapes(2);
  shapes[kSpareTask] = std::move(task_shape);
  shapes[kSpareContainer] = std::move(container_shape);
  spares_ =
      std::make_unique<SpareDirs>(layout_.spares_dir(), std::move(shapes), options_.spare_dirs);
}

bool TaskEngine::claim_spare(std::size_t kind, const fs::path& destination) {
  return spares_ != nullptr && spares_->claim(kind, destination);
}

TaskEngine::~TaskEngine() {
  std::map<std::string, std::unique_ptr<Runner>> runners;
  {
    std::lock_guard lock(mutex_);
    runners.swap(runners_);
  }
  for (auto& [arn, runner] : runners) runner->stop_thread();
}

Status TaskEngine::recover() {
  if (spares_ != nullptr) {
    if (auto started = spares_->start(); !started) {
      spdlog::warn("no spare directories: {}", started.error().message);
    }
  }
  std::error_code error;
  // Made here rather than by the first launch, and marked (see mark_top_directory): a launch
  // that finds no spare makes its task's directory in it.
  fs::create_directories(layout_.containers_dir(), error);
  if (error) return {};  // no tasks to resume; a launch reports the failure
  if (auto marked = mark_top_directory(layout_.containers_dir()); !marked) {
    spdlog::warn("{}", marked.error().message);
  }
  std::vector<ContainerRef> live;
  std::set<std::string> live_endpoints;   // bridge endpoints of tasks that still run
  std::set<std::string> live_namespaces;  // awsvpc tasks' and none-mode containers' namespaces
  std::vector<std::unique_ptr<Runner>> restored;
  for (const auto& entry : fs::directory_iterator(layout_.containers_dir(), error)) {
    std::string id = entry.path().filename().string();
    if (!is_safe_path_component(id)) continue;
    auto text = StateFile(layout_.task_state_file(id)).read();
    if (!text) {
      spdlog::warn("task {}: {}; leaving it", id, text.error().message);
      continue;
    }
    if (!*text) continue;
    boost::system::error_code parse_error;
    bj::value saved = bj::parse(**text, parse_error);
    if (parse_error || !saved.is_object()) {
      spdlog::warn("task {}: its saved state is unreadable; leaving it", id);
      continue;
    }
    auto runner =
        std::make_unique<Runner>(*this, json::string_or(saved.as_object(), "taskArn", ""));
    if (auto status = runner->restore(saved.as_object()); !status) {
      spdlog::warn("task {}: {}", id, status.error().message);
      continue;
    }
    bool stopped = json::string_or(saved.as_object(), "status", "") == "STOPPED";
    if (const auto* containers = json::get_array(saved.as_object(), "containers")) {
      for (const auto& container : *containers) {
        if (!container.is_object()) continue;
        const auto* definition = json::get_object(container.as_object(), "definition");
        if (definition) live.push_back({id, json::string_or(*definition, "name", "")});
        std::string endpoint_id =
            definition ? id + "-" + json::string_or(*definition, "name", "") : std::string();
        if (!stopped && json::get_bool(container.as_object(), "attached").value_or(false)) {
          live_endpoints.insert(endpoint_id);
        }
        if (!stopped && json::get_bool(container.as_object(), "isolated").value_or(false)) {
          live_namespaces.insert(endpoint_id);
        }
      }
    }
    if (!stopped && json::string_or(saved.as_object(), "eniStatus", "") == "ATTACHED") {
      live_namespaces.insert(id);
    }
    restored.push_back(std::move(runner));
  }
  if (auto unmounted = unmount_stale_mounts(layout_, live); !unmounted) {
    spdlog::warn("cleaning up stale mounts: {}", unmounted.error().message);
  }
  if (bridge_ != nullptr) {
    if (auto reconciled = bridge_->reconcile(live_endpoints); !reconciled) {
      spdlog::warn("cleaning up bridge endpoints: {}", reconciled.error().message);
    }
  }
  if (awsvpc_ != nullptr) {
    if (auto reconciled = awsvpc_->reconcile(live_namespaces); !reconciled) {
      spdlog::warn("cleaning up task namespaces: {}", reconciled.error().message);
    }
  }
  std::lock_guard lock(mutex_);
  for (auto& runner : restored) {
    Runner& started = *runner;
    runners_.emplace(started.arn(), std::move(runner));
    started.start_thread();
  }
  spdlog::info("resumed {} task(s) from {}", runners_.size(), layout_.containers_dir().string());
  return {};
}

bool TaskEngine::apply(const DesiredUpdate& update) {
  {
    std::lock_guard lock(mutex_);
    if (!apply_locked(update)) return false;
  }
  update_group_members(update);
  return true;
}

bool TaskEngine::apply_locked(const DesiredUpdate& update) {
  // An unchanged task is one a runner was told about: it holds the entry.
  std::set<std::string_view> changed;
  for (const DesiredTask& task : update.changed) changed.insert(task.arn);
  for (const std::string& arn : update.listed) {
    if (!changed.contains(arn) && !runners_.contains(arn)) {
      spdlog::warn("task {} is listed as unchanged but has no runner here", arn);
      return false;
    }
  }
  for (const DesiredTask& task : update.changed) {
    auto found = runners_.find(task.arn);
    if (found != runners_.end()) {
      found->second->set_desired(task);
      continue;
    }
    auto runner = std::make_unique<Runner>(*this, task.arn);
    runner->init(task);
    Runner& started = *runner;
    runners_.emplace(task.arn, std::move(runner));
    started.start_thread();
  }
  for (auto runner = runners_.begin(); runner != runners_.end();) {
    auto next = std::next(runner);
    if (!update.listed.contains(runner->first)) {
      if (runner->second->settled()) {
        forget_locked(runner);
      } else {
        runner->second->disown();
      }
    }
    runner = next;
  }
  return true;
}

// Security group members, after the runners have their tasks: a new task pulls and prepares
// meanwhile, so the set update is not on its way to RUNNING (it attaches with the sets in
// place, empty at worst for the moment).
void TaskEngine::update_group_members(const DesiredUpdate& update) {
  if (awsvpc_ == nullptr || !update.group_members) return;
  // The network keeps what it last set and changes only the difference.
  if (auto updated = awsvpc_->set_group_members(*update.group_members); !updated) {
    spdlog::warn("updating security group members: {}", updated.error().message);
  }
}

void TaskEngine::forget_locked(std::map<std::string, std::unique_ptr<Runner>>::iterator runner) {
  runner->second->stop_thread();
  leftover_dirs_.emplace_back(runner->second->dir(), runner->second->stopped_at());
  runners_.erase(runner);
}

TaskEngine::Reports TaskEngine::pending_reports() {
  std::lock_guard lock(mutex_);
  Reports reports;
  TimePoint now = clock_.now();
  for (const auto& [arn, runner] : runners_) {
    if (auto held = runner->report_held_until(now)) {
      reports.next_due = std::min(reports.next_due.value_or(*held), *held);
      continue;
    }
    if (auto report = runner->report(options_.cluster)) reports.due.push_back(std::move(*report));
  }
  return reports;
}

void TaskEngine::acknowledge(const std::string& task_arn, std::uint64_t version) {
  std::lock_guard lock(mutex_);
  if (auto found = runners_.find(task_arn); found != runners_.end()) {
    found->second->acknowledge(version);
  }
}

void TaskEngine::report_everything() {
  {
    std::lock_guard lock(mutex_);
    for (auto& [arn, runner] : runners_) runner->unacknowledge();
  }
  if (on_change_) on_change_();
}

std::optional<MetadataView> TaskEngine::metadata(std::string_view token, bool with_stats) const {
  if (token.empty()) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (const auto& [arn, runner] : runners_) {
    if (runner->owns_token(token)) return runner->metadata(token, with_stats);
  }
  return std::nullopt;
}

std::size_t TaskEngine::task_count() const {
  std::lock_guard lock(mutex_);
  return runners_.size();
}

std::size_t TaskEngine::active_task_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::ranges::count_if(runners_, [](const auto& entry) { return !entry.second->stopped(); }));
}

void TaskEngine::clean_up() {
  std::vector<fs::path> removable;
  {
    std::lock_guard lock(mutex_);
    TimePoint now = clock_.now();
    auto due = [&](const auto& leftover) {
      return now - leftover.second >= options_.task_cleanup_wait;
    };
    for (const auto& leftover : leftover_dirs_) {
      if (due(leftover)) removable.push_back(leftover.first);
    }
    std::erase_if(leftover_dirs_, due);
  }
  for (const fs::path& dir : removable) {
    if (auto removed = remove_tree(dir); !removed) {
      spdlog::warn("removing {}: {}", dir.string(), removed.error().message);
    }
  }
}

}  // namespace wharf::agent
