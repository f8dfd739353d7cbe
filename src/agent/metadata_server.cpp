// MetadataServer: the task metadata endpoint (see metadata_server.hpp).
#include "agent/metadata_server.hpp"

#include <boost/json.hpp>

namespace wharf::agent {

namespace bj = boost::json;

std::optional<MetadataRequest> parse_metadata_path(std::string_view target) {
  if (auto query = target.find('?'); query != std::string_view::npos) {
    target = target.substr(0, query);
  }
  for (std::string_view prefix : {"/v4/", "/v3/"}) {
    if (!target.starts_with(prefix)) continue;
    std::string_view rest = target.substr(prefix.size());
    auto slash = rest.find('/');
    MetadataRequest request{std::string(rest.substr(0, slash)), false, false};
    if (request.token.empty()) return std::nullopt;
    std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (tail.empty() || tail == "/") return request;
    if (tail == "/task") {
      request.task = true;
    } else if (tail == "/stats") {
      request.stats = true;
    } else if (tail == "/task/stats") {
      request.task = request.stats = true;
    } else {
      return std::nullopt;
    }
    return request;
  }
  return std::nullopt;
}

Result<std::unique_ptr<MetadataServer>> MetadataServer::start(std::uint16_t port) {
  std::unique_ptr<MetadataServer> server(new MetadataServer());
  http::ServerOptions options;
  options.host = "0.0.0.0";
  options.port = port;
  options.threads = 1;
  options.body_limit = 4096;
  auto listening = http::Server::start(options, *server);
  if (!listening) return std::unexpected(listening.error());
  server->server_ = std::move(*listening);
  return server;
}

MetadataServer::~MetadataServer() {
  if (server_) server_->stop();
}

std::uint16_t MetadataServer::port() const {
  return server_->port();
}

void MetadataServer::listen_in(const std::string& key, UniqueFd listening) {
  server_->adopt_listener(key, std::move(listening));
}

void MetadataServer::release(const std::string& key) {
  server_->close_listener(key);
}

void MetadataServer::handle(http::Request&& request, http::Responder respond) {
  auto not_found = [&](std::string message) {
    respond(http::make_response(request, http::beast_http::status::not_found,
                                bj::serialize(bj::object{{"error", std::move(message)}}),
                                "application/json"));
  };
  if (request.method() != http::beast_http::verb::get) return not_found("only GET is served");
  auto asked = parse_metadata_path(request.target());
  if (!asked) return not_found("no such metadata path");
  const TaskEngine* engine = engine_;
  if (engine == nullptr) return not_found("the agent is starting");
  auto view = engine->metadata(asked->token, asked->stats);
  if (!view) return not_found("no container has this metadata token");
  const bj::object& body = asked->task ? (asked->stats ? view->task_stats : view->task)
                                       : (asked->stats ? view->stats : view->container);
  respond(http::make_response(request, http::beast_http::status::ok, bj::serialize(body),
                              "application/json"));
}

}  // namespace wharf::agent
