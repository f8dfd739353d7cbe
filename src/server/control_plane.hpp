// The control plane assembled: data dir, store, state, APIs and the listener.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "aws/credentials.hpp"
#include "common/error.hpp"

namespace wharf::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one
  std::string data_dir;
  std::string account_id = "123456789012";
  std::optional<std::string> admin_access_key_id;  // from flags or the environment
  std::optional<std::string> admin_secret_access_key;
  int threads = 2;
  // ECR: how often lifecycle policies are applied (0: only after pushes), and the operator's
  // vulnerability database for image scans (docs/scanning.md; none: scans find nothing).
  int lifecycle_interval_seconds = 300;
  std::optional<std::string> scan_database;
  // How often container agents call in; an agent silent for three intervals is reported
  // disconnected. Agents must use this interval or a shorter one.
  int agent_heartbeat_seconds = 10;
};

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> start(const ServerConfig& config);
  virtual ~ControlPlane() = default;

  virtual uint16_t port() const = 0;
  virtual const std::string& host() const = 0;
  virtual const aws::AccessKey& admin_key() const = 0;
  // True when this start generated the admin key (first start without given credentials).
  virtual bool generated_admin_key() const = 0;
  // Stops serving and waits for every acknowledged write to be durable.
  virtual void stop() = 0;
};

// Splits "HOST:PORT" ("[::1]:80" too); error when malformed.
Result<std::pair<std::string, uint16_t>> parse_listen_address(const std::string& text);

}  // namespace wharf::server
