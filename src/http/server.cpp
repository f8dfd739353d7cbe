// Beast-based HTTP server: a listener per worker thread sharing the port through SO_REUSEPORT,
// so each connection lives on exactly one loop and needs no locking.
#include "http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/log.hpp"

namespace wharf::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr std::size_t kMaxDrainBytes = 256 * 1024 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Handler& handler, std::size_t body_limit)
      : stream_(std::move(socket)), handler_(handler), body_limit_(body_limit) {}

  void start() { read_request(); }

 private:
  void read_request() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    stream_.expires_after(kIdleTimeout);
    beast_http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == beast_http::error::body_limit) return refuse_oversized();
    if (ec) return close();
    Request request = parser_->release();
    stream_.expires_never();
    auto executor = stream_.get_executor();
    auto self = shared_from_this();
    handler_.handle(std::move(request), [self, executor](Response response) {
      asio::post(executor, [self, response = std::move(response)]() mutable {
        self->write(std::move(response));
      });
    });
  }

  void refuse_oversized() {
    Response response{beast_http::status::payload_too_large, 11};
    response.set(beast_http::field::content_type, "application/json");
    response.body() =
        R"({"__type":"RequestEntityTooLargeException","message":"Request body is larger than the limit of )" +
        std::to_string(body_limit_) + R"( bytes."})";
    response.keep_alive(false);
    draining_ = true;
    write(std::move(response));
  }

  // After refusing a body, read and discard what the client still sends, so it gets to read
  // the 413 instead of a connection reset; bounded in bytes and time.
  void drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(10));
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                              self->drained_ += bytes;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->close();
                              self->drain();
                            });
  }

  void write(Response response) {
    response_ = std::move(response);
    response_.prepare_payload();
    stream_.expires_after(kIdleTimeout);
    beast_http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (!ec && draining_) return drain();
    if (ec || !response_.keep_alive()) return close();
    read_request();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  Response response_;
  Handler& handler_;
  std::size_t body_limit_;
  bool draining_ = false;
  std::size_t drained_ = 0;
  std::array<char, 64 * 1024> drain_buffer_;
};

// One worker: an event loop with its own acceptor on the shared port.
class Worker {
 public:
  Worker(Handler& handler, std::size_t body_limit)
      : acceptor_(io_), handler_(handler), body_limit_(body_limit) {}

  Status bind(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return fail(ErrorCode::kInternal, "binding " + endpoint.address().to_string() + ":" +
                                            std::to_string(endpoint.port()) + ": " + ec.message());
    return {};
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void run() {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop_accepting() {
    asio::post(io_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
  }

  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void accept() {
    acceptor_.async_accept(
        asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted) return;
          if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<Session>(std::move(socket), handler_, body_limit_)->start();
          }
          accept();
        });
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  Handler& handler_;
  std::size_t body_limit_;
  std::thread thread_;
};

class BeastServer final : public Server {
 public:
  BeastServer(const ServerOptions& options, Handler& handler) {
    for (int worker_idx = 0; worker_idx < std::max(1, options.threads); ++worker_idx) {
      workers_.push_back(std::make_unique<Worker>(handler, options.body_limit));
    }
  }
  ~BeastServer() override { stop(); }

  Status bind(const ServerOptions& options) {
    beast::error_code ec;
    auto address = asio::ip::make_address(options.host, ec);
    if (ec) return fail(ErrorCode::kInvalidParameter, "bad listen address '" + options.host + "'");
    uint16_t port = options.port;
    for (auto& worker : workers_) {
      if (auto status = worker->bind(tcp::endpoint(address, port)); !status) return status;
      port = worker->port();  // the first bind picks the port when 0 was asked for
    }
    port_ = port;
    for (auto& worker : workers_) worker->run();
    return {};
  }

  uint16_t port() const override { return port_; }

  void stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& worker : workers_) worker->stop_accepting();
    // In-flight responses get a moment to flush; keep-alive connections are then cut.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& worker : workers_) worker->stop();
  }

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, Handler& handler) {
  auto server = std::make_unique<BeastServer>(options, handler);
  if (auto status = server->bind(options); !status) return std::unexpected(status.error());
  return server;
}

Response make_response(const Request& request, beast_http::status status, std::string body,
                       std::string_view content_type) {
  Response response{status, request.version()};
  response.set(beast_http::field::content_type, content_type);
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  return response;
}

}  // namespace wharf::http
