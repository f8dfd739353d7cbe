// HTTP requests over libcurl for the registry and ECR clients: bodies from memory or a file
// range, responses into memory or streamed into a sink. Statuses are values; only transport
// failures are errors.
#pragma once

#include <atomic>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace wharf::oci {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// The first header of that name (any case), or nullopt.
std::optional<std::string> find_header(const HttpHeaders& headers, std::string_view name);

// Receives a successful (2xx) response body piece by piece; an error aborts the transfer.
using BodySink = std::function<Status(std::string_view piece)>;

struct FileBody {
  int fd = -1;  // not owned; read with pread, so one fd may serve several requests
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH, DELETE
  std::string url;
  HttpHeaders headers;
  std::string body;                // sent when `file` is empty
  std::optional<FileBody> file;    // the body, streamed from a file
  bool follow_redirects = false;   // GET and HEAD of blobs may be redirected to storage
  BodySink* sink = nullptr;        // where a 2xx body goes; others are kept in `body`
  std::size_t max_body = 8 << 20;  // larger in-memory bodies fail the request
  // When set, the exchange is abandoned (kInternal, "cancelled") within about a second of it
  // turning true: a long poll must not hold up a shutdown.
  const std::atomic<bool>* cancel = nullptr;
};

HttpRequest make_request(std::string method, std::string url, bool follow_redirects = false);

struct HttpResponse {
  long status = 0;
  HttpHeaders headers;  // of the final response (after redirects)
  std::string body;     // empty when a sink took it
};

struct TransportOptions {
  bool insecure = false;  // https without certificate or host name verification
  std::string user_agent = "wharf";
  std::chrono::seconds connect_timeout{30};
  // A transfer slower than one byte a second for this long is abandoned.
  std::chrono::seconds stall_timeout{60};
};

class HttpTransport {
 public:
  explicit HttpTransport(TransportOptions options = {});
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Performs one exchange. Safe to call from several threads; connections are kept alive in a
  // pool of handles. kInternal for connection, TLS and I/O failures; a sink's error as it was.
  Result<HttpResponse> perform(const HttpRequest& request);

 private:
  struct Pool;
  TransportOptions options_;
  std::unique_ptr<Pool> pool_;
};

// What a request signer needs of a URL: the Host header value (host[:port]) and the path ("/"
// when the URL has none).
struct UrlTarget {
  std::string host;
  std::string path;
};
Result<UrlTarget> url_target(std::string_view url);

// Resolves a Location header against the URL it came from.
Result<std::string> resolve_url(std::string_view base, std::string_view location);
// Appends "name=value" (value URL-encoded) to a URL's query.
Result<std::string> append_query(std::string_view url, std::string_view name,
                                 std::string_view value);

}  // namespace wharf::oci
