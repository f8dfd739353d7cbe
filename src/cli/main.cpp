// The wharf command line: parses flags and hands over to the libraries.
#include <fmt/format.h>
#include <signal.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "common/log.hpp"
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
  std::cout << fmt::format(
                   "Wharf is listening on {0}\n\n"
                   "Point the aws CLI or any SDK at it:\n"
                   "  export AWS_ACCESS_KEY_ID={1}\n"
                   "  export AWS_SECRET_ACCESS_KEY={2}\n"
                   "  export AWS_DEFAULT_REGION=us-east-1\n"
                   "  export AWS_ENDPOINT_URL_ECS={0}\n"
                   "  aws ecs list-clusters\n"
                   "(or pass --endpoint-url {0} to each aws command)\n",
                   endpoint, key.access_key_id, key.secret_access_key)
            << std::flush;
}

// Blocks until SIGINT or SIGTERM.
void wait_for_stop_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}, stopping", strsignal(received));
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

  wharf::server::ServerConfig up_config;
  up_config.listen = "127.0.0.1:8910";
  up_config.data_dir = default_data_dir();
  auto* up = app.add_subcommand("up", "Run everything on this machine (server with defaults)");
  up->add_option("--listen", up_config.listen, "HOST:PORT to listen on")->capture_default_str();
  up->add_option("--data-dir", up_config.data_dir, "Directory for durable state")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  wharf::init_logging(log_level);

  for (auto* config : {&server_config, &up_config}) {
    if (!config->admin_access_key_id)
      config->admin_access_key_id = env("WHARF_ADMIN_ACCESS_KEY_ID");
    if (!config->admin_secret_access_key) {
      config->admin_secret_access_key = env("WHARF_ADMIN_SECRET_ACCESS_KEY");
    }
  }
  if (server->parsed()) return run_server(server_config);
  return run_server(up_config);
}
