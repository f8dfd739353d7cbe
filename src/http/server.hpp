// The HTTP/1.1 listener every Wharf API is served from: one event loop per worker thread.
#pragma once

#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.hpp"

namespace wharf::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
// Delivers the response for one request; call it exactly once, from any thread.
using Responder = std::function<void(Response)>;

// Application code behind the listener. handle() runs on a worker's event loop and must not
// block; slow work (a durable write) finishes elsewhere and calls the responder from there.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request&& request, Responder respond) = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 chooses a free port
  int threads = 2;
  std::size_t body_limit = 10 * 1024 * 1024;  // larger bodies are refused with 413
};

class Server {
 public:
  // Binds and starts the worker threads; requests flow to `handler` until stop().
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, Handler& handler);
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, lets in-flight responses finish briefly, then joins the workers.
  virtual void stop() = 0;
};

// A response with the given status and body, keep-alive and version copied from the request.
Response make_response(const Request& request, beast_http::status status, std::string body,
                       std::string_view content_type);

}  // namespace wharf::http
