// The task metadata endpoint (ECS's v4, also answered under v3), served by the agent.
//
// Each container gets ECS_CONTAINER_METADATA_URI_V4 = http://HOST:PORT/v4/<token>, where the
// token is a 128-bit secret of that container and HOST:PORT is how the container reaches the
// agent: the bridge's gateway address and the agent's port in networkMode bridge, 127.0.0.1 and
// that port with host, and ECS's address 169.254.170.2 with that port in awsvpc and none, where
// the agent listens inside the task's own namespace (listen_in()); not on port 80 as ECS does, so
// that a task's own server on 0.0.0.0:80 is not refused. A token answers for its own task only:
//   GET /v4/<token>             the container's metadata
//   GET /v4/<token>/task        the task's metadata, with all its containers
//   GET /v4/<token>/stats       the container's Docker-style stats (cgroup cpu, memory, blkio;
//                               the network counters of its namespace)
//   GET /v4/<token>/task/stats  every container's stats, by DockerId
// Anything else is 404; the listener binds every address so that containers on any bridge of
// the host reach it, which is why the token, not the address, is what grants access.
#pragma once

#include <atomic>
#include <memory>

#include "agent/task_engine.hpp"
#include "common/error.hpp"
#include "http/server.hpp"

namespace wharf::agent {

class MetadataServer final : public http::Handler {
 public:
  // Listens on 0.0.0.0:`port` (0: a free port). Until serve() names the engine, every request
  // is 404 (the engine needs the port before it exists).
  static Result<std::unique_ptr<MetadataServer>> start(std::uint16_t port);
  void serve(const TaskEngine* engine) { engine_ = engine; }
  ~MetadataServer() override;

  std::uint16_t port() const;
  // Also serves on `listening` (a socket bound inside a task's namespace) until release(key).
  void listen_in(const std::string& key, UniqueFd listening);
  void release(const std::string& key);
  void handle(http::Request&& request, http::Responder respond) override;

 private:
  MetadataServer() = default;

  std::atomic<const TaskEngine*> engine_ = nullptr;
  std::unique_ptr<http::Server> server_;
};

// Which view a request path asks for; nullopt when the path is not one of the endpoint's.
struct MetadataRequest {
  std::string token;
  bool task = false;
  bool stats = false;
};
std::optional<MetadataRequest> parse_metadata_path(std::string_view target);

}  // namespace wharf::agent
