// libcurl easy handles, pooled so connections are reused across requests and threads.
#include "oci/http_transport.hpp"
#include "common/text.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace wharf::oci {
namespace {

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// State shared with libcurl's callbacks for one exchange.
struct Exchange {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse response;
  uint64_t sent = 0;
  std::optional<Error> error;  // why a callback stopped the transfer

  uint64_t body_length() const {
    return request->file ? request->file->length : request->body.size();
  }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    exchange->response.headers.clear();  // a new response: an interim 100 or a redirect's
    return line.size();
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    exchange->response.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                            std::string(trim(line.substr(colon + 1))));
  }
  return line.size();
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  std::string_view piece(data, size * count);
  long status = 0;
  curl_easy_getinfo(exchange->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 300 && status < 400 && exchange->request->follow_redirects) return piece.size();
  if (status >= 200 && status < 300 && exchange->request->sink != nullptr) {
    auto written = (*exchange->request->sink)(piece);
    if (!written) {
      exchange->error = std::move(written.error());
      return CURL_WRITEFUNC_ERROR;
    }
    return piece.size();
  }
  if (exchange->response.body.size() + piece.size() > exchange->request->max_body) {
    exchange->error =
        Error{ErrorCode::kInternal, "response body is larger than " +
                                        std::to_string(exchange->request->max_body) + " bytes"};
    return CURL_WRITEFUNC_ERROR;
  }
  exchange->response.body.append(piece);
  return piece.size();
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  uint64_t remaining = exchange->body_length() - exchange->sent;
  size_t wanted = static_cast<size_t>(std::min<uint64_t>(size * count, remaining));
  if (wanted == 0) return 0;
  const auto& request = *exchange->request;
  if (!request.file) {
    std::memcpy(buffer, request.body.data() + exchange->sent, wanted);
    exchange->sent += wanted;
    return wanted;
  }
  ssize_t got = ::pread(request.file->fd, buffer, wanted,
                        static_cast<off_t>(request.file->offset + exchange->sent));
  if (got <= 0) {
    exchange->error =
        Error{ErrorCode::kInternal,
              got == 0 ? std::string("the file to send is shorter than expected")
                       : std::string("reading the file to send: ") + std::strerror(errno)};
    return CURL_READFUNC_ABORT;
  }
  exchange->sent += static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* exchange = static_cast<Exchange*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > exchange->body_length()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  exchange->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  void add(const std::string& line) { list = curl_slist_append(list, line.c_str()); }
};

struct UrlHandle {
  CURLU* url = curl_url();
  ~UrlHandle() { curl_url_cleanup(url); }
  std::optional<std::string> part(CURLUPart which) const {
    char* text = nullptr;
    if (curl_url_get(url, which, &text, 0) != CURLUE_OK) return std::nullopt;
    std::string out(text);
    curl_free(text);
    return out;
  }
  Result<std::string> get() const {
    char* text = nullptr;
    if (auto code = curl_url_get(url, CURLUPART_URL, &text, 0); code != CURLUE_OK) {
      return invalid(std::string("cannot form a URL: ") + curl_url_strerror(code));
    }
    std::string out(text);
    curl_free(text);
    return out;
  }
};

int on_progress(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

}  // namespace

struct HttpTransport::Pool {
  std::mutex mutex;
  std::vector<CURL*> idle;

  ~Pool() {
    for (CURL* curl : idle) curl_easy_cleanup(curl);
  }
  CURL* acquire() {
    std::lock_guard lock(mutex);
    if (idle.empty()) return curl_easy_init();
    CURL* curl = idle.back();
    idle.pop_back();
    curl_easy_reset(curl);  // keeps live connections and caches
    return curl;
  }
  void release(CURL* curl) {
    std::lock_guard lock(mutex);
    idle.push_back(curl);
  }
};

HttpRequest make_request(std::string method, std::string url, bool follow_redirects) {
  HttpRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.follow_redirects = follow_redirects;
  return request;
}

std::optional<std::string> find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [header_name, value] : headers) {
    if (iequals(header_name, name)) return value;
  }
  return std::nullopt;
}

HttpTransport::HttpTransport(TransportOptions options)
    : options_(std::move(options)), pool_(std::make_unique<Pool>()) {
  init_curl_once();
}

HttpTransport::~HttpTransport() = default;

Result<HttpResponse> HttpTransport::perform(const HttpRequest& request) {
  CURL* curl = pool_->acquire();
  if (curl == nullptr) return fail(ErrorCode::kInternal, "cannot create a curl handle");
  struct Releaser {
    Pool* pool;
    CURL* curl;
    ~Releaser() { pool->release(curl); }
  } releaser{pool_.get(), curl};

  Exchange exchange;
  exchange.curl = curl;
  exchange.request = &request;
  char error_buffer[CURL_ERROR_SIZE] = {};
  HeaderList headers;
  for (const auto& [name, value] : request.headers) {
    headers.add(value.empty() ? name + ";" : name + ": " + value);
  }

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  if (options_.insecure) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &exchange);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &exchange);
  if (request.follow_redirects) {
    // libcurl sends Authorization only to the host first asked, never to a redirect's host.
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  }
  bool has_body = request.file.has_value() || !request.body.empty() || request.method == "PUT" ||
                  request.method == "PATCH" || request.method == "POST";
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    // A body held in memory goes out at once: waiting for "100 Continue" would cost a round
    // trip on every API call. A file's body (a layer) still waits, in case it is refused.
    if (!request.file && !find_header(request.headers, "Expect")) headers.add("Expect:");
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(exchange.body_length()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &exchange);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &exchange);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  if (request.cancel != nullptr) {
    // libcurl calls this at least once a second, also while waiting for an answer.
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, request.cancel);
  }

  CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_ABORTED_BY_CALLBACK && request.cancel != nullptr && request.cancel->load()) {
    return fail(ErrorCode::kInternal, request.method + " " + request.url + ": cancelled");
  }
  if (exchange.error) return std::unexpected(std::move(*exchange.error));
  if (code != CURLE_OK) {
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    return fail(ErrorCode::kInternal, request.method + " " + request.url + ": " + detail);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &exchange.response.status);
  return std::move(exchange.response);
}

Result<UrlTarget> url_target(std::string_view url_text) {
  UrlHandle url;
  if (curl_url_set(url.url, CURLUPART_URL, std::string(url_text).c_str(), 0) != CURLUE_OK) {
    return invalid("'" + std::string(url_text) + "' is not a URL");
  }
  auto host = url.part(CURLUPART_HOST);
  if (!host) return invalid("URL '" + std::string(url_text) + "' has no host");
  UrlTarget target{*host, url.part(CURLUPART_PATH).value_or("/")};
  if (auto port = url.part(CURLUPART_PORT)) target.host += ":" + *port;
  return target;
}

Result<std::string> resolve_url(std::string_view base, std::string_view location) {
  UrlHandle url;
  if (curl_url_set(url.url, CURLUPART_URL, std::string(base).c_str(), 0) != CURLUE_OK ||
      curl_url_set(url.url, CURLUPART_URL, std::string(location).c_str(), 0) != CURLUE_OK) {
    return invalid("cannot resolve location '" + std::string(location) + "' against '" +
                   std::string(base) + "'");
  }
  return url.get();
}

Result<std::string> append_query(std::string_view url_text, std::string_view name,
                                 std::string_view value) {
  UrlHandle url;
  std::string pair = std::string(name) + "=" + std::string(value);
  if (curl_url_set(url.url, CURLUPART_URL, std::string(url_text).c_str(), 0) != CURLUE_OK ||
      curl_url_set(url.url, CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) !=
          CURLUE_OK) {
    return invalid("cannot add " + std::string(name) + " to URL '" + std::string(url_text) + "'");
  }
  return url.get();
}

}  // namespace wharf::oci
