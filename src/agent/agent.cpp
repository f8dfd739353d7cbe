// Agent: registration, saved state and heartbeats.
#include "agent/agent.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

constexpr std::chrono::seconds kMaxRetryDelay{30};

std::string errno_text() {
  return std::strerror(errno);
}

// Writes `contents` to `path` so that a crash leaves the old file or the new one, never a mix.
Status write_file_atomically(const fs::path& path, const std::string& contents) {
  fs::path temp = path;
  temp += ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail(ErrorCode::kInternal, "creating " + temp.string() + ": " + errno_text());
  if (::write(fd.get(), contents.data(), contents.size()) !=
          static_cast<ssize_t>(contents.size()) ||
      ::fsync(fd.get()) != 0) {
    return fail(ErrorCode::kInternal, "writing " + temp.string() + ": " + errno_text());
  }
  fd.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(ErrorCode::kInternal, "renaming " + temp.string() + ": " + errno_text());
  }
  UniqueFd dir(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());
  return {};
}

Result<UniqueFd> lock_data_dir(const Layout& layout) {
  std::error_code ec;
  fs::create_directories(layout.state_dir(), ec);
  if (ec) {
    return fail(ErrorCode::kInternal,
                "creating " + layout.state_dir().string() + ": " + ec.message());
  }
  ::chmod(layout.data_dir().c_str(), 0700);
  UniqueFd fd(::open(layout.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    return fail(ErrorCode::kInternal,
                "opening " + layout.lock_file().string() + ": " + errno_text());
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return fail(ErrorCode::kResourceInUse, "another agent is using " + layout.data_dir().string() +
                                               "; give each agent its own --data-dir");
  }
  return fd;
}

Result<SavedRegistration> load_saved(const Layout& layout) {
  std::ifstream file(layout.agent_state_file());
  if (!file) return SavedRegistration{};
  std::stringstream text;
  text << file.rdbuf();
  auto saved = saved_registration_from_json(text.str());
  if (!saved) return std::unexpected(saved.error().context(layout.agent_state_file().string()));
  return saved;
}

std::string new_instance_id() {
  return "i-" + to_hex(random_bytes(9)).substr(0, 17);
}

std::string machine_name() {
  utsname names{};
  if (::uname(&names) != 0) return "unknown";
  return names.machine;
}

EcsClientOptions client_options(const AgentConfig& config) {
  return EcsClientOptions{config.server_url, config.credentials, config.insecure,
                          std::chrono::seconds(10)};
}

}  // namespace

std::string saved_registration_to_json(const SavedRegistration& saved) {
  return bj::serialize(bj::object{{"cluster", saved.cluster},
                                  {"containerInstanceArn", saved.container_instance_arn},
                                  {"instanceId", saved.instance_id}});
}

Result<SavedRegistration> saved_registration_from_json(std::string_view text) {
  boost::system::error_code ec;
  auto parsed = bj::parse(text, ec);
  if (ec || !parsed.is_object()) return invalid("the saved registration is not a JSON object");
  const auto& object = parsed.as_object();
  return SavedRegistration{json::string_or(object, "cluster", ""),
                           json::string_or(object, "containerInstanceArn", ""),
                           json::string_or(object, "instanceId", "")};
}

bj::array builtin_attributes(const AgentConfig& config, std::string_view machine) {
  std::string architecture = machine == "aarch64" ? "arm64" : std::string(machine);
  std::string zone =
      config.availability_zone.empty() ? config.credentials.region + "a" : config.availability_zone;
  auto attribute = [](std::string_view name, std::string_view value) {
    return bj::object{{"name", name}, {"value", value}};
  };
  return bj::array{attribute("ecs.os-type", "linux"),
                   attribute("ecs.cpu-architecture", architecture),
                   attribute("ecs.instance-type", config.instance_type),
                   attribute("ecs.availability-zone", zone)};
}

Result<std::unique_ptr<Agent>> Agent::open(AgentConfig config, const Clock& clock) {
  std::error_code ec;
  fs::path data_dir = fs::absolute(config.data_dir, ec);
  if (ec) return invalid("data directory '" + config.data_dir.string() + "': " + ec.message());
  auto layout = Layout::create(data_dir);
  if (!layout) return std::unexpected(layout.error());
  auto lock = lock_data_dir(*layout);
  if (!lock) return std::unexpected(lock.error());
  auto saved = load_saved(*layout);
  if (!saved) return std::unexpected(saved.error());
  if (!saved->cluster.empty() && saved->cluster != config.cluster) {
    return invalid(data_dir.string() + " belongs to an agent of cluster '" + saved->cluster +
                   "', not '" + config.cluster +
                   "'; use another --data-dir, or remove its state/ to register anew");
  }
  saved->cluster = config.cluster;
  if (saved->instance_id.empty()) saved->instance_id = new_instance_id();
  return std::unique_ptr<Agent>(
      new Agent(std::move(config), clock, std::move(*layout), std::move(*lock), *saved));
}

Agent::Agent(AgentConfig config, const Clock& clock, Layout layout, UniqueFd lock,
             SavedRegistration saved)
    : config_(std::move(config)),
      clock_(clock),
      layout_(std::move(layout)),
      lock_(std::move(lock)),
      client_(client_options(config_), clock),
      saved_(std::move(saved)) {}

std::string Agent::container_instance_arn() const {
  std::lock_guard lock(mutex_);
  return saved_.container_instance_arn;
}

void Agent::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

bool Agent::wait_for_stop(std::chrono::seconds duration) {
  std::unique_lock lock(mutex_);
  return wake_.wait_for(lock, duration, [this] { return stopping_; });
}

Status Agent::save() const {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text = saved_registration_to_json(saved_);
  }
  return write_file_atomically(layout_.agent_state_file(), text);
}

Status Agent::register_instance(const HostResources& resources) {
  std::string zone = config_.availability_zone.empty() ? config_.credentials.region + "a"
                                                       : config_.availability_zone;
  bj::object identity{{"instanceId", saved_.instance_id},
                      {"availabilityZone", zone},
                      {"instanceType", config_.instance_type},
                      {"region", config_.credentials.region}};
  bj::object input{{"cluster", config_.cluster},
                   {"totalResources", resources_to_wire(resources)},
                   {"versionInfo", bj::object{{"agentVersion", kAgentVersion}}},
                   {"attributes", builtin_attributes(config_, machine_name())},
                   {"instanceIdentityDocument", bj::serialize(identity)}};
  std::string previous = container_instance_arn();
  if (!previous.empty()) input["containerInstanceArn"] = previous;
  auto output = client_.call("RegisterContainerInstance", input);
  if (!output) return std::unexpected(output.error());
  const auto* instance = json::get_object(*output, "containerInstance");
  auto arn = instance ? json::get_string(*instance, "containerInstanceArn") : std::nullopt;
  if (!arn) return fail(ErrorCode::kInternal, "RegisterContainerInstance answered without an ARN");
  {
    std::lock_guard lock(mutex_);
    saved_.container_instance_arn = *arn;
  }
  if (auto status = save(); !status) return status;
  spdlog::info("{} container instance {} in cluster {} ({} CPU units, {} MiB)",
               previous.empty() ? "registered" : "re-registered", *arn, config_.cluster,
               resources.cpu_units, resources.memory_mib);
  return {};
}

Status Agent::run() {
  auto resources = measure_host(config_.memory_reserve_mib);
  if (!resources) return std::unexpected(resources.error());
  if (auto status = save(); !status) return status;  // keeps the instance id from now on

  std::chrono::seconds retry_delay{1};
  while (true) {
    auto registered = register_instance(*resources);
    if (registered) break;
    bool retry =
        is_transient(registered.error()) || registered.error().code == ErrorCode::kClusterNotFound;
    if (!retry) return std::unexpected(registered.error().context("registering"));
    spdlog::warn("registering: {}; retrying in {} s", registered.error().message,
                 retry_delay.count());
    if (wait_for_stop(retry_delay)) return {};
    retry_delay = std::min(retry_delay * 2, kMaxRetryDelay);
  }

  bj::object heartbeat{{"cluster", config_.cluster},
                       {"containerInstance", container_instance_arn()}};
  bool failing = false;
  while (!wait_for_stop(config_.heartbeat_interval)) {
    auto answer = client_.call("DiscoverPollEndpoint", heartbeat);
    if (answer) {
      if (failing) spdlog::info("the control plane answers again");
      failing = false;
      continue;
    }
    if (!is_transient(answer.error())) {
      return std::unexpected(answer.error().context("calling in"));
    }
    if (!failing) spdlog::warn("calling in: {}; will keep trying", answer.error().message);
    failing = true;
  }
  return {};
}

}  // namespace wharf::agent
