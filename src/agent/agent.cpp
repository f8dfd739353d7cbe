// Agent: registration, saved state and heartbeats.
#include "agent/agent.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/files.hpp"
#include "agent/nftables.hpp"
#include "agent/process_reaper.hpp"
#include "agent/rootfs.hpp"
#include "agent/s3_client.hpp"
#include "agent/task_secrets.hpp"
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

// How often unused images and old task directories are looked for.
constexpr std::chrono::minutes kCleanUpInterval{1};

// How long nft's context (and its cache) is kept unused; a heartbeat frees it after that.
constexpr std::chrono::seconds kNftContextIdle{5};

// How many state reports are in flight at once.
constexpr std::size_t kReportWorkers = 8;

// How long the server may hold a WharfPollTasks call.
constexpr std::chrono::seconds kPollWait{20};

// The AWS environment the image store's ECR logins read: the agent's own credentials.
oci::EnvLookup credentials_environment(const oci::AwsCredentials& credentials) {
  return [credentials](std::string_view name) -> std::optional<std::string> {
    auto value = [](const std::string& text) {
      return text.empty() ? std::nullopt : std::optional<std::string>(text);
    };
    if (name == "AWS_ACCESS_KEY_ID") return value(credentials.access_key_id);
    if (name == "AWS_SECRET_ACCESS_KEY") return value(credentials.secret_access_key);
    if (name == "AWS_SESSION_TOKEN") return value(credentials.session_token);
    if (name == "AWS_REGION" || name == "AWS_DEFAULT_REGION") return value(credentials.region);
    return std::nullopt;
  };
}

// arn:…:cluster/NAME from the instance's arn:…:container-instance/NAME/ID.
std::string cluster_arn_of(const std::string& instance_arn, const std::string& cluster) {
  auto resource = instance_arn.find(":container-instance/");
  if (resource == std::string::npos) return cluster;
  return instance_arn.substr(0, resource) + ":cluster/" + cluster;
}

// wharf-shim beside the running executable, or "" when there is none.
fs::path default_shim() {
  std::error_code error;
  fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return {};
  fs::path shim = self.parent_path() / "wharf-shim";
  return ::access(shim.c_str(), X_OK) == 0 ? shim : fs::path();
}

// The control plane's `service` (ECS unless told), called with the agent's own credentials.
AwsJsonClientOptions client_options(const AgentConfig& config,
                                    AwsJsonService service = kEcsService) {
  AwsJsonClientOptions options{config.server_url, config.credentials, config.insecure,
                               std::chrono::seconds(10)};
  options.service = service;
  return options;
}

// GetSecretValue and SSM's GetParameters with the agent's own credentials, for the task
// threads (the clients are thread-safe). No cancel flag: a fetch cut short by stop() would fail
// its task, while a task left PENDING is prepared again by the next agent.
SecretFetcher secret_fetcher(const AgentConfig& config, const Clock& clock) {
  auto secrets =
      std::make_shared<AwsJsonClient>(client_options(config, kSecretsManagerService), clock);
  auto parameters = std::make_shared<AwsJsonClient>(client_options(config, kSsmService), clock);
  return [secrets, parameters](const SecretRef& secret) {
    if (secret.source == SecretSource::kParameterStore) {
      return get_parameter_value(*parameters, secret);
    }
    return get_secret_value(*secrets, secret);
  };
}

// GetObject from the control plane's S3, for environmentFiles (no cancel flag, likewise).
S3ObjectFetcher s3_object_fetcher(const AgentConfig& config, const Clock& clock) {
  S3ClientOptions options;
  options.endpoint = config.server_url;
  options.credentials = config.credentials;
  options.insecure = config.insecure;
  auto client = std::make_shared<S3Client>(std::move(options), clock);
  return [client](const S3Object& object) { return client->get_object(object); };
}

// The run directory once no container is left in it (close_run_dir keeps it otherwise).
void remove_run_dir(const Layout& layout) {
  if (auto closed = close_run_dir(layout); !closed) {
    spdlog::warn("removing the run directory: {}", closed.error().message);
  }
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

bj::array capability_attributes(bool have_init_binary, bool have_nftables) {
  bj::array attributes;
  auto add = [&](std::string name) { attributes.push_back(bj::object{{"name", std::move(name)}}); };
  int newest = have_init_binary ? 29 : 24;
  for (int minor = 17; minor <= newest; ++minor) {
    add("com.amazonaws.ecs.capability.docker-remote-api.1." + std::to_string(minor));
  }
  add("com.amazonaws.ecs.capability.ecr-auth");
  // Secrets Manager secrets as registry logins and environment variables, SSM parameters as
  // environment variables, and environment files from S3.
  add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
  add("ecs.capability.secrets.asm.environment-variables");
  add("ecs.capability.secrets.ssm.environment-variables");
  add("ecs.capability.env-files.s3");
  add("ecs.capability.container-health-check");
  add("ecs.capability.container-ordering");
  add("ecs.capability.task-cpu-mem-limit");
  // awsvpc: a namespace per task with the ENI's address, its groups enforced with nftables.
  if (have_nftables) add("ecs.capability.task-eni");
  return attributes;
}

bool have_nftables() {
  for (const char* candidate : {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"}) {
    if (::access(candidate, X_OK) == 0) return true;
  }
  return false;
}

fs::path find_init_binary() {
  for (const char* candidate : {"/usr/bin/tini-static", "/usr/libexec/docker/docker-init",
                                "/usr/bin/docker-init", "/usr/bin/catatonit"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
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
  if (config.init_binary.empty()) config.init_binary = find_init_binary();
  if (saved->instance_id.empty()) saved->instance_id = new_instance_id();
  // Per agent, so that several agents on one host never see each other's containers.
  auto with_run_dir = Layout::create(data_dir, fs::path("/run/wharf") / saved->instance_id);
  if (!with_run_dir) return std::unexpected(with_run_dir.error());
  return std::unique_ptr<Agent>(
      new Agent(std::move(config), clock, std::move(*with_run_dir), std::move(*lock), *saved));
}

Result<std::unique_ptr<Agent>> open_local_agent(std::string server_url,
                                                oci::AwsCredentials credentials,
                                                std::filesystem::path data_dir,
                                                const Clock& clock) {
  AgentConfig config;
  config.server_url = std::move(server_url);
  config.cluster = "default";
  config.data_dir = std::move(data_dir);
  config.credentials = std::move(credentials);
  AwsJsonClient client(client_options(config), clock);
  if (auto created = client.call("CreateCluster", {{"clusterName", config.cluster}}); !created) {
    return std::unexpected(created.error().context("creating the default cluster"));
  }
  return Agent::open(std::move(config), clock);
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
  cancel_calls_ = true;
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

bj::array Agent::all_attributes() const {
  bj::array attributes = builtin_attributes(config_, machine_name());
  for (auto& capability : capability_attributes(!config_.init_binary.empty(), have_nftables())) {
    attributes.push_back(std::move(capability));
  }
  return attributes;
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
                   {"attributes", all_attributes()},
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
  if (auto started = start_engine(); !started) {
    remove_run_dir(layout_);  // no container was started: leave no tmpfs behind
    return started;
  }

  std::thread watcher([this] { watch_loop(); });
  std::thread reporter([this] { report_loop(); });
  heartbeat_loop();
  stop();
  watcher.join();
  reporter.join();
  if (metadata_) metadata_->serve(nullptr);
  bool idle = engine_->active_task_count() == 0;
  engine_.reset();  // ends the runner threads; the containers keep running
  if (idle && bridge_) {
    // Nothing runs: leave no bridge, table or namespace behind (the next start makes them again).
    if (auto destroyed = bridge_->destroy(); !destroyed) {
      spdlog::warn("removing the bridge network: {}", destroyed.error().message);
    }
  }
  if (idle && awsvpc_) {
    if (auto destroyed = awsvpc_->destroy(); !destroyed) {
      spdlog::warn("removing the awsvpc network: {}", destroyed.error().message);
    }
  }
  if (idle) remove_run_dir(layout_);
  std::lock_guard lock(mutex_);
  if (fatal_) return std::unexpected(*fatal_);
  return {};
}

Status Agent::start_engine() {
  auto cgroups = Cgroups::detect();
  if (!cgroups) return std::unexpected(cgroups.error().context("finding cgroups"));
  cgroups_.emplace(std::move(*cgroups));
  if (config_.favor_dynamic_cgroup_moves) {
    favor_dynamic_cgroup_moves(cgroups_->mounts());
  } else {
    spdlog::info("leaving the cgroup2 mount's options as they are (--no-cgroup-favordynmods)");
  }

  auto run_dir = open_run_dir(layout_);
  if (!run_dir) return std::unexpected(run_dir.error().context("preparing the run directory"));
  if (*run_dir) spdlog::info("mounted a tmpfs on {}", layout_.run_dir().string());

  RuntimeOptions runtime_options;
  runtime_options.name = config_.runtime;
  runtime_options.binary = config_.runtime_binary;
  runtime_options.state_root = layout_.runtime_state_dir();
  runtime_options.shim = config_.shim.empty() ? default_shim() : config_.shim;
  if (runtime_options.shim.empty()) {
    spdlog::warn(
        "no wharf-shim beside this executable: exit codes of containers that end while "
        "the agent is down will be unknown");
  }
  auto runtime = make_runtime(runtime_options, ProcessReaper::instance());
  if (!runtime) return std::unexpected(runtime.error().context("choosing an OCI runtime"));
  runtime_ = std::move(*runtime);

  ImageStoreOptions image_options;
  image_options.behavior = config_.pull_behavior;
  image_options.max_unused_age = config_.image_cleanup_age;
  image_options.min_unused_age = std::min(image_options.min_unused_age, config_.image_cleanup_age);
  image_options.max_cache_bytes = config_.image_cache_max_mib << 20;
  image_options.access.insecure = config_.insecure;
  image_options.env = credentials_environment(config_.credentials);
  images_ = std::make_unique<ImageStore>(layout_, std::move(image_options), clock_);
  if (auto loaded = images_->load(); !loaded) {
    return std::unexpected(loaded.error().context("reading the image cache"));
  }

  // Names on the host carry the end of this instance's id, so agents sharing a host never meet.
  std::string suffix = saved_.instance_id.substr(saved_.instance_id.size() - 10);
  BridgeOptions bridge_options;
  bridge_options.name = "wharf" + suffix;  // 15 characters, the kernel's limit
  bridge_options.subnet = config_.bridge_subnet;
  bridge_options.nft_table = "wharf_" + suffix;
  bridge_options.netns_prefix = "wharf-" + suffix + "-";
  bridge_options.state_file = layout_.network_state_file();
  std::string bridge_unavailable;
  if (auto bridge = BridgeNetwork::open(bridge_options); bridge) {
    bridge_ = std::move(*bridge);
    spdlog::info("bridge network {} on {}", bridge_options.name, bridge_->subnet());
  } else {
    bridge_unavailable = bridge.error().message;
    spdlog::warn("no bridge network ({}); tasks with networkMode bridge will not start",
                 bridge_unavailable);
  }

  AwsvpcOptions awsvpc_options;
  awsvpc_options.nft_table = "wharfvpc_" + suffix;
  awsvpc_options.netns_prefix = "wharfvpc-" + suffix + "-";
  awsvpc_options.veth_prefix = "wv";
  awsvpc_options.state_file = layout_.awsvpc_state_file();
  std::string awsvpc_unavailable;
  if (auto awsvpc = AwsvpcNetwork::open(awsvpc_options); awsvpc) {
    awsvpc_ = std::move(*awsvpc);
  } else {
    awsvpc_unavailable = awsvpc.error().message;
    spdlog::warn("no awsvpc network ({}); tasks with networkMode awsvpc will not start",
                 awsvpc_unavailable);
  }

  TaskEngineOptions engine_options;
  if (!bridge_unavailable.empty()) engine_options.bridge_unavailable = bridge_unavailable;
  if (!awsvpc_unavailable.empty()) engine_options.awsvpc_unavailable = awsvpc_unavailable;
  if (config_.metadata_port >= 0) start_metadata_server();
  if (metadata_) {
    engine_options.metadata_port = metadata_->port();
    engine_options.serve_metadata_in = [this](const std::string& key, UniqueFd listening) {
      metadata_->listen_in(key, std::move(listening));
    };
    engine_options.release_metadata = [this](const std::string& key) { metadata_->release(key); };
  }
  engine_options.cluster_arn = cluster_arn_of(container_instance_arn(), config_.cluster);
  engine_options.availability_zone = config_.availability_zone.empty()
                                         ? config_.credentials.region + "a"
                                         : config_.availability_zone;
  engine_options.cluster = config_.cluster;
  engine_options.default_stop_timeout = config_.default_stop_timeout;
  engine_options.task_cleanup_wait = config_.task_cleanup_wait;
  engine_options.init_binary = config_.init_binary;
  engine_options.fetch_secret = secret_fetcher(config_, clock_);
  engine_options.fetch_s3_object = s3_object_fetcher(config_, clock_);
  engine_ = std::make_unique<TaskEngine>(layout_, *runtime_, *cgroups_, *images_, bridge_.get(),
                                         awsvpc_.get(), clock_, std::move(engine_options), [this] {
                                           {
                                             std::lock_guard lock(mutex_);
                                             reports_due_ = true;
                                           }
                                           wake_.notify_all();
                                         });
  if (metadata_) metadata_->serve(engine_.get());
  if (auto recovered = engine_->recover(); !recovered) return recovered;
  spdlog::info("running containers with {} ({} cgroups)", runtime_->name(),
               to_string(cgroups_->version()));
  return {};
}

void Agent::start_metadata_server() {
  auto port = static_cast<std::uint16_t>(config_.metadata_port);
  if (port == 0) {
    // The same port after a restart: running containers keep the URI they were given.
    port = static_cast<std::uint16_t>(51700 + std::hash<std::string>{}(saved_.instance_id) % 1000);
  }
  auto server = MetadataServer::start(port);
  if (!server && config_.metadata_port == 0) {
    spdlog::warn("task metadata endpoint: port {} is taken ({}); using a free one", port,
                 server.error().message);
    server = MetadataServer::start(0);
  }
  if (!server) {
    spdlog::warn("no task metadata endpoint: {}", server.error().message);
    return;
  }
  metadata_ = std::move(*server);
  spdlog::info("task metadata endpoint on port {}", metadata_->port());
}

void Agent::fail_run(Error error) {
  {
    std::lock_guard lock(mutex_);
    if (!fatal_) fatal_ = std::move(error);
  }
  stop();
}

void Agent::heartbeat_loop() {
  bj::object heartbeat{{"cluster", config_.cluster},
                       {"containerInstance", container_instance_arn()}};
  bool failing = false;
  TimePoint next_clean_up = clock_.now();
  while (!wait_for_stop(config_.heartbeat_interval)) {
    if (clock_.now() >= next_clean_up) {
      if (auto removed = images_->clean_up(); !removed) {
        spdlog::warn("cleaning up images: {}", removed.error().message);
      }
      engine_->clean_up();
      next_clean_up = clock_.now() + kCleanUpInterval;
    }
    // nft's cache of the kernel's tables is worth keeping while bridge and awsvpc tasks come
    // and go, not while none do. Starting and stopping tasks leaves freed memory in malloc's
    // arenas; hand it back so a steady agent stays small.
    release_idle_nft_context(kNftContextIdle);
    ::malloc_trim(0);
    auto answer = client_.call("DiscoverPollEndpoint", heartbeat);
    if (answer) {
      if (failing) spdlog::info("the control plane answers again");
      failing = false;
      continue;
    }
    if (!is_transient(answer.error())) return fail_run(answer.error().context("calling in"));
    if (!failing) spdlog::warn("calling in: {}; will keep trying", answer.error().message);
    failing = true;
  }
}

void Agent::watch_loop() {
  AwsJsonClientOptions options = client_options(config_);
  options.timeout = kPollWait + std::chrono::seconds(10);
  options.cancel = &cancel_calls_;
  AwsJsonClient client(options, clock_);
  std::int64_t version = 0;
  DesiredState desired;
  bool failing = false;
  while (!stopping()) {
    bj::object input{{"cluster", config_.cluster},
                     {"containerInstance", container_instance_arn()},
                     {"version", version},
                     {"waitSeconds", version == 0 ? 0 : kPollWait.count()}};
    auto answer = client.call("WharfPollTasks", input);
    if (!answer) {
      if (stopping()) return;  // the call was cancelled
      if (!is_transient(answer.error())) return fail_run(answer.error().context("watching tasks"));
      if (!failing) spdlog::warn("watching tasks: {}; will keep trying", answer.error().message);
      failing = true;
      version = 0;  // after any disconnect: the whole desired state again
      if (wait_for_stop(std::chrono::seconds(1))) return;
      continue;
    }
    if (failing || version == 0) engine_->report_everything();
    failing = false;
    auto update = desired.merge(*answer);
    if (!update) {
      spdlog::warn("watching tasks: {}; asking for the whole desired state",
                   update.error().message);
    }
    if (!update || !engine_->apply(*update)) {
      desired.clear();
      version = 0;  // the whole desired state again
      continue;
    }
    version = json::get_int(*answer, "version").value_or(0);
  }
}

void Agent::report_loop() {
  AwsJsonClient client(client_options(config_), clock_);  // thread-safe: the workers share it
  std::optional<TimePoint> held_until;  // when a report the engine holds back falls due
  while (true) {
    {
      std::unique_lock lock(mutex_);
      auto woken = [this] { return stopping_ || reports_due_; };
      if (held_until) {
        // Never longer than a hold lasts, should the wall clock be set back meanwhile.
        auto wait =
            std::clamp<TimePoint::duration>(*held_until - clock_.now(), TimePoint::duration::zero(),
                                            TaskEngine::kStartingReportHold);
        wake_.wait_for(lock, wait, woken);
      } else {
        wake_.wait(lock, woken);
      }
      if (stopping_) return;
      reports_due_ = false;
    }
    // Each report waits for the server's durable commit; sending several at once lets the
    // server's group commit write them together (a launch of 200 tasks makes hundreds).
    auto [reports, next_due] = engine_->pending_reports();
    held_until = next_due;
    std::atomic<std::size_t> next = 0;
    std::atomic<bool> retry = false;
    auto send = [&] {
      for (std::size_t index; !retry && (index = next++) < reports.size();) {
        const auto& report = reports[index];
        auto answer = client.call("SubmitTaskStateChange", report.change);
        if (answer) {
          engine_->acknowledge(report.task_arn, report.version);
          continue;
        }
        spdlog::warn("reporting task {}: {}", report.task_arn, answer.error().message);
        if (is_transient(answer.error())) {
          retry = true;
        } else {
          // The server refuses this report (it no longer knows the task): drop it.
          engine_->acknowledge(report.task_arn, report.version);
        }
      }
    };
    std::vector<std::thread> workers;
    for (std::size_t worker = 1; worker < std::min(kReportWorkers, reports.size()); ++worker) {
      workers.emplace_back(send);
    }
    send();
    for (auto& worker : workers) worker.join();
    if (retry) {
      if (wait_for_stop(std::chrono::seconds(1))) return;
      std::lock_guard lock(mutex_);
      reports_due_ = true;
    }
  }
}

bool Agent::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

}  // namespace wharf::agent
