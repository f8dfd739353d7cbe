// The wharf command line: parses flags and hands over to the libraries.
#include <fmt/format.h>
#include <signal.h>
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string_view>
#include <thread>

#include "agent/agent.hpp"
#include "common/log.hpp"
#include "oci/image_transfer.hpp"
#include "server/control_plane.hpp"

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

void print_connection_help(const wharf::server::ControlPlane& plane) {
  std::string endpoint = fmt::format("http://{}:{}", plane.host(), plane.port());
  const auto& key = plane.admin_key();
  std::cout
      << fmt::format(
             "Wharf is listening on {0}\n\n"
             "Point the aws CLI or any SDK at it:\n"
             "  export AWS_ACCESS_KEY_ID={1}\n"
             "  export AWS_SECRET_ACCESS_KEY={2}\n"
             "  export AWS_DEFAULT_REGION=us-east-1\n"
             "  export AWS_ENDPOINT_URL={0}    # ECS and ECR; or AWS_ENDPOINT_URL_ECS / _ECR\n"
             "  aws ecs list-clusters\n"
             "(or pass --endpoint-url {0} to each aws command)\n",
             endpoint, key.access_key_id, key.secret_access_key)
      << std::flush;
}

// Blocks until SIGINT or SIGTERM; returns which.
int take_stop_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

void wait_for_stop_signal() {
  spdlog::info("received {}, stopping", strsignal(take_stop_signal()));
}

int run_server(const wharf::server::ServerConfig& config) {
  auto plane = wharf::server::ControlPlane::start(config);
  if (!plane) {
    spdlog::error("cannot start: {}", plane.error().message);
    return 1;
  }
  print_connection_help(**plane);
  wait_for_stop_signal();
  (*plane)->stop();
  return 0;
}

// `wharf up`: the server, plus (as root) one agent in the same process, registered in the
// "default" cluster, with its data under DATA_DIR/agent.
int run_up(const wharf::server::ServerConfig& config) {
  auto plane = wharf::server::ControlPlane::start(config);
  if (!plane) {
    spdlog::error("cannot start: {}", plane.error().message);
    return 1;
  }
  print_connection_help(**plane);
  wharf::SystemClock clock;
  std::unique_ptr<wharf::agent::Agent> agent;
  std::thread agent_thread;
  if (geteuid() != 0) {
    spdlog::warn(
        "not root: running without an agent (containers need root); start `wharf "
        "agent` as root to run tasks");
  } else {
    auto opened = wharf::agent::open_local_agent(
        fmt::format("http://{}:{}", (*plane)->host(), (*plane)->port()),
        {(*plane)->admin_key().access_key_id, (*plane)->admin_key().secret_access_key, "",
         "us-east-1"},
        std::filesystem::path(config.data_dir) / "agent", clock);
    if (!opened) {
      spdlog::error("cannot start the agent: {}", opened.error().message);
    } else {
      agent = std::move(*opened);
      agent_thread = std::thread([&] {
        if (auto status = agent->run(); !status) {
          spdlog::error("the agent stopped: {}", status.error().message);
        }
      });
    }
  }
  wait_for_stop_signal();
  if (agent) agent->stop();
  if (agent_thread.joinable()) agent_thread.join();
  (*plane)->stop();
  return 0;
}

// Flags of `wharf agent` beyond AgentConfig: credentials that override the environment's.
struct AgentFlags {
  int heartbeat_seconds = 10;
  std::optional<std::string> access_key_id;
  std::optional<std::string> secret_access_key;
  std::optional<std::string> region;
};

int run_agent(wharf::agent::AgentConfig config, const AgentFlags& flags) {
  // A thread per task, mostly asleep, and short-lived scratch threads: glibc would give many of
  // them an arena of their own (up to 8 per core), each keeping freed pages. The agent allocates
  // little and rarely at once; two arenas keep its memory down (bench/RESULTS.md).
  ::mallopt(M_ARENA_MAX, 2);
  auto credentials = wharf::oci::load_aws_credentials(wharf::oci::process_environment());
  if (credentials) config.credentials = *credentials;
  if (flags.access_key_id) config.credentials.access_key_id = *flags.access_key_id;
  if (flags.secret_access_key) config.credentials.secret_access_key = *flags.secret_access_key;
  if (flags.region) config.credentials.region = *flags.region;
  if (config.credentials.region.empty()) config.credentials.region = "us-east-1";
  if (config.credentials.access_key_id.empty() || config.credentials.secret_access_key.empty()) {
    std::cerr << "wharf agent: no AWS credentials: set AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY, or pass --access-key-id and --secret-access-key\n";
    return 1;
  }
  config.heartbeat_interval = std::chrono::seconds(flags.heartbeat_seconds);
  wharf::SystemClock clock;
  auto agent = wharf::agent::Agent::open(std::move(config), clock);
  if (!agent) {
    std::cerr << "wharf agent: " << agent.error().message << "\n";
    return 1;
  }
  // A stop signal ends the run; when the run ends first, a signal to the waiting thread ends it.
  std::atomic<bool> run_ended = false;
  std::thread signals([&] {
    int received = take_stop_signal();
    if (run_ended) return;
    spdlog::info("received {}, stopping", strsignal(received));
    (*agent)->stop();
  });
  auto status = (*agent)->run();
  run_ended = true;
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  if (!status) {
    std::cerr << "wharf agent: " << status.error().message << "\n";
    return 1;
  }
  return 0;
}

// Flags of `wharf image import` and `wharf image pull`.
struct ImageFlags {
  std::string rootfs;
  std::string reference;
  std::string layout_dir;
  std::string entrypoint;
  std::string cmd;
  std::vector<std::string> env;
  std::string workdir;
  std::vector<std::string> expose;
  std::string user;
  std::vector<std::string> labels;
  bool insecure = false;
  bool plain_http = false;
  bool https = false;
  std::string username;
  bool password_stdin = false;
  uint64_t chunk_size = wharf::oci::kDefaultChunkSize;
};

int image_failure(std::string_view command, const wharf::Error& error) {
  std::cerr << "wharf image " << command << ": " << error.message << "\n";
  return 1;
}

std::optional<wharf::oci::RegistryAccess> registry_access(const ImageFlags& flags) {
  wharf::oci::RegistryAccess access;
  access.insecure = flags.insecure;
  access.chunk_size = flags.chunk_size;
  if (flags.plain_http) access.plain_http = true;
  if (flags.https) access.plain_http = false;
  if (flags.username.empty()) return access;
  std::string password;
  if (flags.password_stdin) std::getline(std::cin, password);
  access.credentials = wharf::oci::RegistryCredentials{flags.username, password};
  return access;
}

int run_image_import(const ImageFlags& flags) {
  wharf::oci::ImageBuildOptions build;
  for (auto [text, words] : {std::pair{&flags.entrypoint, &build.config.entrypoint},
                             std::pair{&flags.cmd, &build.config.cmd}}) {
    if (text->empty()) continue;
    auto parsed = wharf::oci::parse_command_words(*text);
    if (!parsed) return image_failure("import", parsed.error());
    *words = std::move(*parsed);
  }
  build.config.env = flags.env;
  build.config.working_dir = flags.workdir;
  build.config.exposed_ports = flags.expose;
  build.config.user = flags.user;
  for (const auto& label : flags.labels) {
    auto equals = label.find('=');
    build.config.labels[label.substr(0, equals)] =
        equals == std::string::npos ? "" : label.substr(equals + 1);
  }
  wharf::SystemClock clock;
  build.created = clock.now();
  // SOURCE_DATE_EPOCH (reproducible-builds.org) pins creation and file times.
  if (auto epoch = env("SOURCE_DATE_EPOCH")) {
    build.created =
        wharf::TimePoint(std::chrono::seconds(std::strtoll(epoch->c_str(), nullptr, 10)));
    build.mtime = build.created;
  }
  auto access = registry_access(flags);
  auto imported = wharf::oci::import_image(flags.rootfs, flags.reference, build, *access,
                                           wharf::oci::process_environment(), clock);
  if (!imported) return image_failure("import", imported.error());
  std::cout << imported->digest.str() << std::endl;
  return 0;
}

int run_image_pull(const ImageFlags& flags) {
  wharf::SystemClock clock;
  auto access = registry_access(flags);
  auto pulled = wharf::oci::pull_to_layout(flags.reference, flags.layout_dir, *access,
                                           wharf::oci::process_environment(), clock);
  if (!pulled) return image_failure("pull", pulled.error());
  std::cout << pulled->manifest.digest.str() << std::endl;
  return 0;
}

void add_registry_flags(CLI::App* command, ImageFlags& flags) {
  command->add_flag("--insecure", flags.insecure, "Accept any TLS certificate from the registry");
  auto* plain = command->add_flag("--plain-http", flags.plain_http,
                                  "Use http (the default for localhost and 127.0.0.0/8)");
  command->add_flag("--https", flags.https, "Use https even for a loopback registry")
      ->excludes(plain);
  auto* username = command->add_option(
      "--username", flags.username,
      "Registry user name (default: ECR credentials from the AWS configuration, else anonymous)");
  command->add_flag("--password-stdin", flags.password_stdin, "Read the password from stdin")
      ->needs(username);
}

// The agent keeps a thread per task, mostly idle. glibc gives each thread a cache of the chunks
// it freed (tcache) that only that thread reuses, so hundreds of runners hoard megabytes: with
// 200 tasks the agent's RSS was 31 MiB with the caches and 27 MiB without (bench/RESULTS.md).
// The cache can only be turned off before malloc first runs, through GLIBC_TUNABLES, so the
// agent executes itself again (same pid and arguments) with that set first, unless the caller
// chose a tcache setting already (which also ends the second run's check).
//
// The same second start keeps GnuTLS from initialising itself when it is loaded: libcurl needs
// it only for rtmp:// and ldap:// (TLS goes through OpenSSL), and its load-time set-up alone
// made 0.6 MiB of the agent resident. A caller's own GNUTLS_NO_IMPLICIT_INIT is kept.
//
// Each marker carries the caller's value of its variable across ("=" and the value, or
// "none"), so the programs the agent starts (crun, runc, nft) get the environment it was given.
constexpr std::string_view kNoThreadCaches = "glibc.malloc.tcache_count=0";
struct OwnSetting {
  const char* variable;
  const char* marker;
};
constexpr OwnSetting kTunables{"GLIBC_TUNABLES", "WHARF_AGENT_MALLOC"};
constexpr OwnSetting kGnutls{"GNUTLS_NO_IMPLICIT_INIT", "WHARF_AGENT_GNUTLS"};
constexpr OwnSetting kOwnSettings[] = {kTunables, kGnutls};

// Sets `value` for this process and keeps the caller's value in the setting's marker.
void set_own(const OwnSetting& setting, const std::string& value) {
  auto caller = env(setting.variable);
  ::setenv(setting.marker, caller ? ("=" + *caller).c_str() : "none", 1);
  ::setenv(setting.variable, value.c_str(), 1);
}

// Puts the caller's values back as the settings' markers hold them.
void restore_caller_values() {
  for (const OwnSetting& setting : kOwnSettings) {
    auto marker = env(setting.marker);
    if (!marker) continue;
    ::unsetenv(setting.marker);
    if (marker->starts_with("=")) {
      ::setenv(setting.variable, marker->c_str() + 1, 1);
    } else {
      ::unsetenv(setting.variable);
    }
  }
}

void exec_with_own_settings(char** argv) {
  if (env(kTunables.marker)) return restore_caller_values();  // the second start
  std::string tunables = env(kTunables.variable).value_or("");
  if (tunables.find("glibc.malloc.tcache_count=") != std::string::npos) return;
  set_own(kTunables, tunables.empty() ? std::string(kNoThreadCaches)
                                      : std::string(kNoThreadCaches) + ":" + tunables);
  if (!env(kGnutls.variable)) set_own(kGnutls, "1");
  // By its real path, so the process keeps its name ("exe" otherwise); /proc/self/exe when
  // the binary was replaced meanwhile.
  std::error_code unreadable;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", unreadable);
  if (!unreadable) ::execv(self.c_str(), argv);
  ::execv("/proc/self/exe", argv);
  int error = errno;
  restore_caller_values();
  std::cerr << "wharf agent: running with malloc's per-thread caches (exec /proc/self/exe: "
            << std::strerror(error) << ")\n";
}

std::string default_data_dir() {
  auto home = env("HOME");
  return (home ? *home : std::string(".")) + "/.wharf";
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals in every thread; the main thread takes them with sigwait().
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"Wharf: a self-hosted container orchestrator that speaks the Amazon ECS API"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error");

  wharf::server::ServerConfig server_config;
  auto* server = app.add_subcommand("server", "Run the control plane");
  server->add_option("--listen", server_config.listen, "HOST:PORT to listen on")->required();
  server->add_option("--data-dir", server_config.data_dir, "Directory for durable state")
      ->required();
  server->add_option("--account-id", server_config.account_id, "The AWS account id to present");
  server->add_option("--admin-access-key-id", server_config.admin_access_key_id,
                     "Admin access key id (or WHARF_ADMIN_ACCESS_KEY_ID)");
  server->add_option("--admin-secret-access-key", server_config.admin_secret_access_key,
                     "Admin secret access key (or WHARF_ADMIN_SECRET_ACCESS_KEY)");
  server->add_option("--threads", server_config.threads, "Listener threads");
  server->add_option("--lifecycle-interval-seconds", server_config.lifecycle_interval_seconds,
                     "How often ECR lifecycle policies are applied (0: only after pushes)");
  server->add_option("--scan-database", server_config.scan_database,
                     "Vulnerability database for ECR image scans (JSON, see docs/scanning.md)");

  server
      ->add_option("--agent-heartbeat-seconds", server_config.agent_heartbeat_seconds,
                   "How often agents call in; silent for three intervals means disconnected")
      ->capture_default_str();

  wharf::agent::AgentConfig agent_config;
  AgentFlags agent_flags;
  auto* agent = app.add_subcommand("agent", "Run the container agent on this host");
  agent->add_option("--server", agent_config.server_url, "The control plane's URL")->required();
  agent->add_option("--cluster", agent_config.cluster, "The cluster to join")
      ->capture_default_str();
  agent->add_option("--data-dir", agent_config.data_dir, "The agent's own directory")->required();
  agent->add_option("--availability-zone", agent_config.availability_zone,
                    "Reported as ecs.availability-zone (default: the region's 'a' zone)");
  agent->add_option("--instance-type", agent_config.instance_type, "Reported as ecs.instance-type")
      ->capture_default_str();
  agent
      ->add_option("--memory-reserve-mib", agent_config.memory_reserve_mib,
                   "Memory kept back from tasks for the system and the agent")
      ->capture_default_str();
  agent
      ->add_option("--heartbeat-seconds", agent_flags.heartbeat_seconds,
                   "How often to call in (at most the server's --agent-heartbeat-seconds)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  agent->add_option("--access-key-id", agent_flags.access_key_id,
                    "Access key id (default: AWS_ACCESS_KEY_ID or the AWS configuration)");
  agent->add_option("--secret-access-key", agent_flags.secret_access_key,
                    "Secret access key (default: AWS_SECRET_ACCESS_KEY or the AWS configuration)");
  agent->add_option("--region", agent_flags.region,
                    "Region (default: AWS_REGION, AWS_DEFAULT_REGION or the AWS configuration)");
  agent->add_option("--bridge-subnet", agent_config.bridge_subnet,
                    "IPv4 subnet of the bridge network (default: a free 172.30.x.0/24, kept)");
  agent
      ->add_option("--metadata-port", agent_config.metadata_port,
                   "Port of the task metadata endpoint (0: derived from the instance id, "
                   "-1: off)")
      ->check(CLI::Range(-1, 65535));
  agent->add_option("--runtime", agent_config.runtime,
                    "OCI runtime: runc or crun (default: the first that works here)");
  agent->add_option_function<std::string>(
      "--image-pull-behavior",
      [&](const std::string& text) {
        auto behavior = wharf::agent::parse_pull_behavior(text);
        if (!behavior)
          throw CLI::ValidationError("--image-pull-behavior", behavior.error().message);
        agent_config.pull_behavior = *behavior;
      },
      "default, always, once or prefer-cached (as ECS_IMAGE_PULL_BEHAVIOR)");
  agent
      ->add_option_function<int>(
          "--stop-timeout-seconds",
          [&](int seconds) { agent_config.default_stop_timeout = std::chrono::seconds(seconds); },
          "SIGTERM to SIGKILL for containers without a stopTimeout (default 30)")
      ->check(CLI::Range(1, 3600));
  agent
      ->add_option_function<int>(
          "--image-cleanup-minutes",
          [&](int minutes) { agent_config.image_cleanup_age = std::chrono::minutes(minutes); },
          "Remove images no task has used for this long (default 180)")
      ->check(CLI::Range(1, 525600));
  agent->add_option("--image-cache-max-mib", agent_config.image_cache_max_mib,
                    "Also remove unused images, oldest first, while the layer cache is larger");
  agent->add_flag("--insecure", agent_config.insecure,
                  "Accept any TLS certificate from the control plane");
  agent->add_flag_callback(
      "--no-cgroup-favordynmods", [&] { agent_config.favor_dynamic_cgroup_moves = false; },
      "Leave the host's cgroup2 mount as it is; by default the agent turns on its "
      "favordynmods, so containers move into their cgroups without waiting for the kernel");

  wharf::server::ServerConfig up_config;
  up_config.listen = "127.0.0.1:8910";
  up_config.data_dir = default_data_dir();
  auto* up = app.add_subcommand(
      "up", "Run everything on this machine: the server and, as root, one agent");
  up->add_option("--listen", up_config.listen, "HOST:PORT to listen on")->capture_default_str();
  up->add_option("--data-dir", up_config.data_dir, "Directory for durable state")
      ->capture_default_str();

  ImageFlags image_flags;
  auto* image = app.add_subcommand("image", "Build, push and pull container images");
  image->require_subcommand(1);
  auto* image_import = image->add_subcommand(
      "import", "Build a one-layer image from a root filesystem and push it; prints its digest");
  image_import->add_option("ROOTFS", image_flags.rootfs, "A directory or a tar file")->required();
  image_import->add_option("REF", image_flags.reference, "Where to push: HOST[:PORT]/REPO[:TAG]")
      ->required();
  image_import->add_option("--entrypoint", image_flags.entrypoint,
                           "JSON array, or words separated by spaces");
  image_import->add_option("--cmd", image_flags.cmd, "JSON array, or words separated by spaces");
  image_import->add_option("--env", image_flags.env, "K=V (repeatable)")->allow_extra_args(false);
  image_import->add_option("--workdir", image_flags.workdir, "Working directory");
  image_import->add_option("--expose", image_flags.expose, "PORT[/PROTO] (repeatable)")
      ->allow_extra_args(false);
  image_import->add_option("--user", image_flags.user, "User (and group) to run as");
  image_import->add_option("--label", image_flags.labels, "K=V (repeatable)")
      ->allow_extra_args(false);
  image_import
      ->add_option("--chunk-size", image_flags.chunk_size,
                   "Push larger blobs in PATCH chunks of this many bytes (0: one PUT each)")
      ->capture_default_str();
  add_registry_flags(image_import, image_flags);
  auto* image_pull = image->add_subcommand(
      "pull", "Pull an image into an OCI layout directory; prints its digest");
  image_pull->add_option("REF", image_flags.reference, "HOST[:PORT]/REPO[:TAG|@DIGEST]")
      ->required();
  image_pull->add_option("DIR", image_flags.layout_dir, "OCI image layout directory")->required();
  add_registry_flags(image_pull, image_flags);

  CLI11_PARSE(app, argc, argv);
  if (agent->parsed()) exec_with_own_settings(argv);
  wharf::init_logging(log_level);

  for (auto* config : {&server_config, &up_config}) {
    if (!config->admin_access_key_id)
      config->admin_access_key_id = env("WHARF_ADMIN_ACCESS_KEY_ID");
    if (!config->admin_secret_access_key) {
      config->admin_secret_access_key = env("WHARF_ADMIN_SECRET_ACCESS_KEY");
    }
  }
  if (image_import->parsed()) return run_image_import(image_flags);
  if (image_pull->parsed()) return run_image_pull(image_flags);
  if (server->parsed()) return run_server(server_config);
  if (agent->parsed()) return run_agent(std::move(agent_config), agent_flags);
  return run_up(up_config);
}
