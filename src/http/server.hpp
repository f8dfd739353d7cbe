// The HTTP/1.1 listener every Wharf API is served from: one event loop per worker thread.
#pragma once

#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using RequestHeader = beast_http::request_header<>;
using Response = beast_http::response<beast_http::string_body>;

// A byte range of an open file sent as the response body (with sendfile). The fd is closed
// after sending.
struct FileRange {
  UniqueFd fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What a handler answers: a complete response, or a header whose body is a file range, or (for
// HEAD) a header alone whose Content-Length the handler set.
struct Reply {
  Reply(Response response) : response(std::move(response)) {}  // NOLINT: implicit on purpose
  Reply(Response response, FileRange file) : response(std::move(response)), file(std::move(file)) {}
  static Reply header_only(Response response) {
    Reply reply(std::move(response));
    reply.head = true;
    return reply;
  }

  Response response;
  std::optional<FileRange> file;
  bool head = false;
};

// Delivers the reply for one request; call it exactly once, from any thread.
using Responder = std::function<void(Reply)>;

// Receives one request's body piece by piece on the connection's loop, for bodies too large to
// hold in memory (blob uploads).
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next piece of the body. An error stops reading; finish() then gets that error.
  virtual Status write(std::string_view piece) = 0;
  // The body ended (received is ok) or writing failed (the error from write()). Answer now.
  // A sink destroyed without finish() lost its client midway.
  virtual void finish(Status received, Responder respond) = 0;
};

// Application code behind the listener. Everything runs on a worker's event loop and must not
// block; slow work (a durable write) finishes elsewhere and calls the responder from there.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request&& request, Responder respond) = 0;
  // Called once the header is read: a sink to stream this request's body into (no size limit),
  // or nullptr to have it buffered (up to the body limit) and passed to handle().
  virtual std::unique_ptr<BodySink> stream_body(const RequestHeader& /*header*/) { return nullptr; }
  // The answer to a buffered body over the limit, in the handler's protocol.
  virtual Response payload_too_large(const RequestHeader& header, std::size_t limit);
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
  // Also accepts on `listening`, a socket someone else bound and put in listen state (e.g.
  // inside another network namespace), until close_listener(key). Requests go to the same
  // handler. A key already in use is replaced.
  virtual void adopt_listener(const std::string& key, UniqueFd listening) = 0;
  // Stops accepting on the adopted socket `key` and closes it; connections it accepted go on.
  virtual void close_listener(const std::string& key) = 0;
  // Stops accepting, lets in-flight responses finish briefly, then joins the workers.
  virtual void stop() = 0;
};

// A response with the given status and body, keep-alive and version copied from the request.
Response make_response(const Request& request, beast_http::status status, std::string body,
                       std::string_view content_type);

}  // namespace wharf::http
