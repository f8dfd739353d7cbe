// ControlPlane: brings the server up in order and down in reverse.
#include "server/control_plane.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "aws/query_api.hpp"
#include "aws/service_model.hpp"
#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "ecs/agent_monitor.hpp"
#include "ecs/ec2_api.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/state.hpp"
#include "http/server.hpp"
#include "registry/ecr_api.hpp"
#include "registry/registry.hpp"
#include "registry/scanner.hpp"
#include "s3/s3_api.hpp"
#include "secrets/secrets_api.hpp"
#include "ssm/ssm_api.hpp"
#include "store/store.hpp"

namespace wharf::server {

namespace fs = std::filesystem;

Result<std::pair<std::string, uint16_t>> parse_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return invalid("listen address '" + text + "' must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  std::string_view port_text = std::string_view(text).substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return invalid("listen address '" + text + "' has a bad port");
  }
  return std::pair{host, static_cast<uint16_t>(port)};
}

namespace {

// Writes `contents` to `path` with mode 0600, atomically (temp file, fsync, rename).
Status write_private_file(const fs::path& path, const std::string& contents) {
  fs::path temp = path;
  temp += ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(ErrorCode::kInternal, "creating " + temp.string() + ": " + strerror(errno));
  bool ok =
      ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(ErrorCode::kInternal, "writing " + path.string() + ": " + strerror(errno));
  }
  return {};
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kInternal, "reading " + path.string() + ": " + strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct AdminKey {
  aws::AccessKey key;
  bool generated = false;
};

Result<AdminKey> admin_key(const ServerConfig& config) {
  std::string root = "arn:aws:iam::" + config.account_id + ":root";
  if (config.admin_access_key_id || config.admin_secret_access_key) {
    if (!config.admin_access_key_id || !config.admin_secret_access_key) {
      return invalid(
          "give both the admin access key id and the admin secret access key, or "
          "neither");
    }
    return AdminKey{
        {*config.admin_access_key_id, *config.admin_secret_access_key, config.account_id, root},
        false};
  }
  fs::path path = fs::path(config.data_dir) / "admin-credentials.json";
  if (fs::exists(path)) {
    auto text = read_file(path);
    if (!text) return std::unexpected(text.error());
    boost::system::error_code ec;
    auto stored = boost::json::parse(*text, ec);
    if (ec || !stored.is_object())
      return fail(ErrorCode::kInternal, path.string() + " is not JSON");
    auto id = json::get_string(stored.as_object(), "accessKeyId");
    auto secret = json::get_string(stored.as_object(), "secretAccessKey");
    if (!id || !secret) return fail(ErrorCode::kInternal, path.string() + " lacks the key");
    return AdminKey{{*id, *secret, config.account_id, root}, false};
  }
  AdminKey generated{{new_access_key_id(), new_secret_access_key(), config.account_id, root}, true};
  boost::json::object stored{{"accessKeyId", generated.key.access_key_id},
                             {"secretAccessKey", generated.key.secret_access_key}};
  if (auto status = write_private_file(path, boost::json::serialize(stored)); !status) {
    return std::unexpected(status.error());
  }
  return generated;
}

// The secret that signs nextToken values; kept so tokens survive a restart.
Result<std::string> paging_secret(const ServerConfig& config) {
  fs::path path = fs::path(config.data_dir) / "paging.key";
  if (fs::exists(path)) return read_file(path);
  std::string secret = to_hex(random_bytes(32));
  if (auto status = write_private_file(path, secret); !status)
    return std::unexpected(status.error());
  return secret;
}

constexpr std::string_view kEc2ApiVersion = "2016-11-15";
constexpr std::string_view kEc2XmlNamespace = "http://ec2.amazonaws.com/doc/2016-11-15/";

class RunningControlPlane final : public ControlPlane {
 public:
  uint16_t port() const override { return listener_->port(); }
  const std::string& host() const override { return host_; }
  const aws::AccessKey& admin_key() const override { return admin_.key; }
  bool generated_admin_key() const override { return admin_.generated; }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    // A start that failed part-way leaves later members unset. Agents' long polls are answered
    // first: the listener's graceful stop waits for in-flight requests.
    if (ecs_api_) ecs_api_->stop_long_polls();
    if (listener_) listener_->stop();
    if (agent_monitor_) agent_monitor_->stop();
    if (ecr_api_) ecr_api_->stop();
    if (registry_) registry_->stop();
    if (s3_api_) s3_api_->stop();
    if (store_) store_->close();
  }
  ~RunningControlPlane() override { stop(); }

  Status start(const ServerConfig& config) {
    std::error_code fs_error;
    fs::create_directories(config.data_dir, fs_error);
    if (fs_error) {
      return fail(ErrorCode::kInvalidParameter,
                  "creating data dir " + config.data_dir + ": " + fs_error.message());
    }
    ::chmod(config.data_dir.c_str(), 0700);
    auto address = parse_listen_address(config.listen);
    if (!address) return std::unexpected(address.error());
    host_ = address->first;

    auto admin = server::admin_key(config);
    if (!admin) return std::unexpected(admin.error().context("admin credentials"));
    admin_ = *admin;
    credentials_.add(admin_.key);
    auto secret = paging_secret(config);
    if (!secret) return std::unexpected(secret.error());
    tokens_ = std::make_unique<aws::PageTokens>(*secret);

    auto store = store::open_sqlite_store((fs::path(config.data_dir) / "wharf.db").string());
    if (!store) return std::unexpected(store.error().context("opening the store"));
    store_ = std::move(*store);
    auto started = std::chrono::steady_clock::now();
    ecs_state_ = std::make_unique<ecs::EcsState>(*store_);
    if (auto status = ecs_state_->load(); !status) return status;
    spdlog::info("loaded state in {} ms ({} task definition revisions)",
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count(),
                 ecs_state_->task_definition_count());
    // Loading parses every record once; hand the parser's freed memory back to the system.
    ::malloc_trim(0);

    if (config.agent_heartbeat_seconds <= 0) {
      return invalid("the agent heartbeat interval must be at least one second");
    }
    ecs_api_ = std::make_unique<ecs::EcsApi>(*ecs_state_, clock_, *tokens_);
    ecs_service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::ecs(), "ecs", "1.1");
    ecs_api_->register_operations(*ecs_service_);
    router_ = std::make_unique<aws::ApiRouter>(credentials_, clock_);
    router_->add_service(*ecs_service_);
    // The EC2 networking awsvpc tasks draw from (default VPC, subnets, security groups), over
    // EC2's Query protocol.
    ec2_api_ = std::make_unique<ecs::Ec2Api>(*ecs_state_, clock_);
    ec2_service_ = std::make_unique<aws::QueryService>(aws::ServiceModel::ec2(), "ec2",
                                                       std::string(kEc2ApiVersion),
                                                       std::string(kEc2XmlNamespace));
    ec2_api_->register_operations(*ec2_service_);
    // Agents enforce their awsvpc tasks' groups: a rule change reaches them at once.
    ec2_api_->on_security_groups_changed(
        [this](const std::string& region) { ecs_api_->security_groups_changed(region); });
    router_->add_query_service(*ec2_service_);

    auto registry = registry::Registry::open({config.data_dir, config.account_id}, *store_, clock_);
    if (!registry) return std::unexpected(registry.error());
    registry_ = std::move(*registry);
    router_->add_path_handler("/v2/", registry_->distribution());

    std::optional<fs::path> scan_database;
    if (config.scan_database) scan_database = *config.scan_database;
    scanner_ = std::make_unique<registry::ImageScanner>(scan_database);
    if (auto status = scanner_->check_database(); !status) return status;
    registry::EcrOptions ecr_options;
    ecr_options.lifecycle_interval = std::chrono::seconds(config.lifecycle_interval_seconds);
    ecr_options.account_id = config.account_id;
    ecr_api_ = std::make_unique<registry::EcrApi>(registry_->state(), registry_->blobs(),
                                                  registry_->auth(), *scanner_, clock_, *tokens_,
                                                  ecr_options);
    ecr_service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::ecr(), "ecr", "1.1");
    ecr_api_->register_operations(*ecr_service_);
    router_->add_service(*ecr_service_);

    secrets_api_ = std::make_unique<secrets::SecretsApi>(*store_, clock_, *tokens_);
    if (auto status = secrets_api_->load(); !status) return status;
    secrets_service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::secretsmanager(),
                                                          "secretsmanager", "1.1");
    secrets_api_->register_operations(*secrets_service_);
    router_->add_service(*secrets_service_);

    ssm_api_ = std::make_unique<ssm::SsmApi>(*store_, clock_, *tokens_);
    if (auto status = ssm_api_->load(); !status) return status;
    ssm_service_ = std::make_unique<aws::JsonService>(aws::ServiceModel::ssm(), "ssm", "1.1");
    ssm_api_->register_operations(*ssm_service_);
    router_->add_service(*ssm_service_);

    // S3 for tasks' environmentFiles: bodies under DATA_DIR/s3, records in the store.
    auto s3 = s3::S3Api::open({fs::path(config.data_dir) / "s3", config.account_id}, *store_,
                              credentials_, clock_);
    if (!s3) return std::unexpected(s3.error().context("starting S3"));
    s3_api_ = std::move(*s3);
    router_->add_s3_handler(*s3_api_);

    http::ServerOptions options;
    options.host = address->first;
    options.port = address->second;
    options.threads = config.threads;
    auto listener = http::Server::start(options, *router_);
    if (!listener) return std::unexpected(listener.error());
    listener_ = std::move(*listener);
    std::string endpoint_host = host_.find(':') == std::string::npos ? host_ : "[" + host_ + "]";
    std::string endpoint = "http://" + endpoint_host + ":" + std::to_string(listener_->port());
    ecr_api_->set_endpoint(endpoint);
    ecr_api_->start();
    ecs_api_->set_endpoint(endpoint);
    agent_monitor_ = std::make_unique<ecs::AgentMonitor>(
        *ecs_state_, clock_, std::chrono::seconds(config.agent_heartbeat_seconds));
    agent_monitor_->start();
    ecs_api_->start_long_polls();
    return {};
  }

 private:
  SystemClock clock_;
  std::string host_;
  AdminKey admin_;
  aws::CredentialStore credentials_;
  std::unique_ptr<aws::PageTokens> tokens_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ecs::EcsState> ecs_state_;
  std::unique_ptr<ecs::EcsApi> ecs_api_;
  std::unique_ptr<aws::JsonService> ecs_service_;
  std::unique_ptr<ecs::Ec2Api> ec2_api_;
  std::unique_ptr<aws::QueryService> ec2_service_;
  std::unique_ptr<ecs::AgentMonitor> agent_monitor_;
  std::unique_ptr<registry::Registry> registry_;
  std::unique_ptr<registry::ImageScanner> scanner_;
  std::unique_ptr<registry::EcrApi> ecr_api_;
  std::unique_ptr<aws::JsonService> ecr_service_;
  std::unique_ptr<secrets::SecretsApi> secrets_api_;
  std::unique_ptr<aws::JsonService> secrets_service_;
  std::unique_ptr<ssm::SsmApi> ssm_api_;
  std::unique_ptr<aws::JsonService> ssm_service_;
  std::unique_ptr<s3::S3Api> s3_api_;
  std::unique_ptr<aws::ApiRouter> router_;
  std::unique_ptr<http::Server> listener_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<ControlPlane>> ControlPlane::start(const ServerConfig& config) {
  auto plane = std::make_unique<RunningControlPlane>();
  if (auto status = plane->start(config); !status) return std::unexpected(status.error());
  return plane;
}

}  // namespace wharf::server
