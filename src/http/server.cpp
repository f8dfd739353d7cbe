// Beast-based HTTP server: a listener per worker thread sharing the port through SO_REUSEPORT,
// so each connection lives on exactly one loop and needs no locking.
#include "http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <sys/sendfile.h>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
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
constexpr auto kStopGrace = std::chrono::seconds(10);
constexpr std::size_t kStreamReadSize = 256 * 1024;
constexpr std::size_t kMaxDrainBytes = 256 * 1024 * 1024;

// A request body that flows into a BodySink instead of memory.
struct SinkBody {
  struct value_type {
    BodySink* sink = nullptr;
    Status status;  // the sink's first write error
  };

  class reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(beast_http::header<kIsRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) { ec = {}; }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      std::size_t consumed = 0;
      for (auto buffer : beast::buffers_range_ref(buffers)) {
        auto status = body_.sink->write({static_cast<const char*>(buffer.data()), buffer.size()});
        if (!status) {
          body_.status = std::move(status);
          ec = beast::errc::make_error_code(beast::errc::io_error);
          return consumed;
        }
        consumed += buffer.size();
      }
      ec = {};
      return consumed;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// "HTTP/1.1 200 OK\r\n", then each field, then the blank line, as Beast's serializer writes
// them, into `out` (reused, so its capacity carries over between replies).
void serialize_header(const Response& response, std::string& out) {
  out.clear();
  unsigned version = response.version();
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
  out += ' ';
  out += std::to_string(response.result_int());
  out += ' ';
  out += response.reason();
  out += "\r\n";
  for (const auto& field : response) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Handler& handler, std::size_t body_limit, std::atomic<int>& in_flight)
      : stream_(std::move(socket)),
        handler_(handler),
        body_limit_(body_limit),
        in_flight_(in_flight) {}
  ~Session() { request_done(); }

  void start() { read_request(); }

 private:
  void read_request() {
    header_parser_.emplace();
    header_parser_->body_limit(boost::none);  // the body's own parser applies the limit
    stream_.expires_after(kIdleTimeout);
    beast_http::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return close();
    const auto& header = header_parser_->get();
    bool expect_continue = beast::iequals(header[beast_http::field::expect], "100-continue");
    sink_ = handler_.stream_body(header.base());
    if (sink_) {
      sink_parser_.emplace(std::move(*header_parser_));
      sink_parser_->body_limit(boost::none);
      sink_parser_->get().body().sink = sink_.get();
      return continue_then(expect_continue, [this] { read_sink_body(); });
    }
    string_parser_.emplace(std::move(*header_parser_));
    string_parser_->body_limit(body_limit_);
    auto length = string_parser_->content_length();
    if (length && *length > body_limit_) return refuse_oversized();
    if (string_parser_->is_done()) return on_string_body({});  // no body (most GETs)
    continue_then(expect_continue, [this] { read_string_body(); });
  }

  // Answers "Expect: 100-continue" before the body is read, as clients wait for it.
  void continue_then(bool expect_continue, std::function<void()> next) {
    if (!expect_continue) return next();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(
        stream_, asio::buffer(kContinue.data(), kContinue.size()),
        [self = shared_from_this(), next = std::move(next)](beast::error_code ec, std::size_t) {
          if (ec) return self->close();
          next();
        });
  }

  void read_string_body() {
    beast_http::async_read(stream_, buffer_, *string_parser_,
                           [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->on_string_body(ec);
                           });
  }

  void on_string_body(beast::error_code ec) {
    if (ec == beast_http::error::body_limit) return refuse_oversized();
    if (ec) return close();
    stream_.expires_never();
    request_started();
    handler_.handle(string_parser_->release(), responder(true));
  }

  void read_sink_body() {
    // Large reads: after the header the buffer's free space is small, and reads are sized by it.
    buffer_.reserve(kStreamReadSize);
    beast_http::async_read(
        stream_, buffer_, *sink_parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_sink_body(ec); });
  }

  void on_sink_body(beast::error_code ec) {
    auto& body = sink_parser_->get().body();
    if (!body.status) {
      // The sink refused the body: answer, then discard whatever else the client sends.
      draining_ = true;
      stream_.expires_never();
      request_started();
      return sink_->finish(std::move(body.status), responder());
    }
    if (ec) {
      sink_.reset();  // the client went away midway
      return close();
    }
    stream_.expires_never();
    request_started();
    sink_->finish({}, responder());
  }

  // A reply given on the connection's own loop thread is written at once when `direct`; else,
  // and from other threads, it is posted to the loop. A body sink's finish() is not direct:
  // writing destroys the sink, which is still running then.
  Responder responder(bool direct = false) {
    auto executor = stream_.get_executor();
    return [self = shared_from_this(), executor, direct](Reply reply) {
      if (direct && std::this_thread::get_id() == self->loop_thread_) {
        return self->write(std::move(reply));
      }
      asio::post(executor,
                 [self, reply = std::move(reply)]() mutable { self->write(std::move(reply)); });
    };
  }

  void refuse_oversized() {
    Response response = handler_.payload_too_large(string_parser_->get().base(), body_limit_);
    response.keep_alive(false);
    draining_ = true;
    write(std::move(response));
  }

  // After refusing a body, read and discard what the client still sends, so it gets to read
  // the answer instead of a connection reset; bounded in bytes and time.
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

  void write(Reply reply) {
    sink_.reset();
    reply_.emplace(std::move(reply));
    if (draining_) reply_->response.keep_alive(false);
    stream_.expires_after(kIdleTimeout);
    if (!reply_->file && !reply_->head) {
      // A string body always gets a Content-Length here, never chunked encoding.
      reply_->response.prepare_payload();
      // The header as one flat buffer beside the body: one two-piece sendmsg, where Beast's
      // serializer hands the kernel a piece per field name, separator and value.
      serialize_header(reply_->response, head_);
      std::array<asio::const_buffer, 2> pieces{asio::buffer(head_),
                                               asio::buffer(reply_->response.body())};
      return asio::async_write(
          stream_, pieces,
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }
    if (reply_->file) reply_->response.content_length(reply_->file->length);
    header_serializer_.emplace(reply_->response);
    beast_http::async_write_header(stream_, *header_serializer_,
                                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                     if (ec) return self->close();
                                     if (self->reply_->file) return self->send_file();
                                     self->on_write(ec);
                                   });
  }

  // Streams the reply's file range straight from the page cache to the socket.
  void send_file() {
    FileRange& file = *reply_->file;
    auto& socket = stream_.socket();
    beast::error_code ec;
    socket.native_non_blocking(true, ec);
    while (file.length > 0) {
      off_t offset = static_cast<off_t>(file.offset);
      std::size_t chunk = std::min<uint64_t>(file.length, 1u << 30);
      ssize_t sent = ::sendfile(socket.native_handle(), file.fd.get(), &offset, chunk);
      if (sent > 0) {
        file.offset += static_cast<uint64_t>(sent);
        file.length -= static_cast<uint64_t>(sent);
        continue;
      }
      if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
        socket.async_wait(tcp::socket::wait_write,
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec) return self->close();
                            self->send_file();
                          });
        return;
      }
      return close();  // the file ended early or the socket failed: the response is cut
    }
    on_write({});
  }

  // A request is in flight from its dispatch to the handler until its reply is written; a
  // graceful stop waits for those.
  void request_started() {
    in_flight_.fetch_add(1);
    dispatched_ = true;
  }
  void request_done() {
    if (std::exchange(dispatched_, false)) in_flight_.fetch_sub(1);
  }

  void on_write(beast::error_code ec) {
    request_done();
    if (!ec && draining_) return drain();
    bool keep_alive = reply_->response.keep_alive();
    reply_.reset();
    header_serializer_.reset();
    if (ec || !keep_alive) return close();
    read_request();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string head_;  // the reply's status line and fields, serialised
  std::optional<beast_http::request_parser<beast_http::empty_body>> header_parser_;
  std::optional<beast_http::request_parser<beast_http::string_body>> string_parser_;
  std::optional<beast_http::request_parser<SinkBody>> sink_parser_;
  std::unique_ptr<BodySink> sink_;
  std::optional<Reply> reply_;
  std::optional<beast_http::response_serializer<beast_http::string_body>> header_serializer_;
  Handler& handler_;
  std::size_t body_limit_;
  std::atomic<int>& in_flight_;
  std::thread::id loop_thread_ = std::this_thread::get_id();  // made on its loop's thread
  bool dispatched_ = false;
  bool draining_ = false;
  std::size_t drained_ = 0;
  std::array<char, 64 * 1024> drain_buffer_;
};

// One worker: an event loop with its own acceptor on the shared port.
class Worker {
 public:
  Worker(Handler& handler, std::size_t body_limit, std::atomic<int>& in_flight)
      : acceptor_(io_), handler_(handler), body_limit_(body_limit), in_flight_(in_flight) {}

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
      for (auto& [key, adopted] : adopted_) adopted->close(ignored);
      adopted_.clear();
    });
  }

  void adopt(const std::string& key, UniqueFd listening) {
    // Owned by the handler until assigned: a loop that already stopped destroys the handler
    // unrun, and the socket is closed with it.
    auto owned = std::make_shared<UniqueFd>(std::move(listening));
    asio::post(io_, [this, key, owned] {
      auto acceptor = std::make_shared<tcp::acceptor>(io_);
      beast::error_code ec;
      int fd = owned->release();
      acceptor->assign(tcp::v4(), fd, ec);
      if (ec) {
        ::close(fd);
        spdlog::warn("adopting listener {}: {}", key, ec.message());
        return;
      }
      if (auto old = adopted_.find(key); old != adopted_.end()) old->second->close(ec);
      adopted_[key] = acceptor;
      accept_on(acceptor);
    });
  }

  void close_adopted(const std::string& key) {
    asio::post(io_, [this, key] {
      auto found = adopted_.find(key);
      if (found == adopted_.end()) return;
      beast::error_code ignored;
      found->second->close(ignored);
      adopted_.erase(found);
    });
  }

  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void accept() {
    // No strand: each loop has one thread, so a connection's handlers never run concurrently.
    acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) start_session(std::move(socket));
      accept();
    });
  }

  // Accepts on an adopted socket until it is closed; the handler keeps the acceptor alive.
  void accept_on(std::shared_ptr<tcp::acceptor> acceptor) {
    acceptor->async_accept(io_, [this, acceptor](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) return;
      if (!ec) start_session(std::move(socket));
      if (acceptor->is_open()) accept_on(acceptor);
    });
  }

  void start_session(tcp::socket socket) {
    // A socket that refuses no_delay still serves, only with Nagle's delay on small responses.
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), handler_, body_limit_, in_flight_)->start();
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  std::map<std::string, std::shared_ptr<tcp::acceptor>> adopted_;  // loop thread only
  Handler& handler_;
  std::size_t body_limit_;
  std::atomic<int>& in_flight_;
  std::thread thread_;
};

class BeastServer final : public Server {
 public:
  BeastServer(const ServerOptions& options, Handler& handler) {
    for (int worker_idx = 0; worker_idx < std::max(1, options.threads); ++worker_idx) {
      workers_.push_back(std::make_unique<Worker>(handler, options.body_limit, in_flight_));
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

  // Adopted sockets are few and quiet (one per task namespace): the first loop takes them all.
  void adopt_listener(const std::string& key, UniqueFd listening) override {
    workers_.front()->adopt(key, std::move(listening));
  }
  void close_listener(const std::string& key) override { workers_.front()->close_adopted(key); }

  void stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& worker : workers_) worker->stop_accepting();
    // Requests already dispatched get their answers (bounded); idle keep-alive connections and
    // requests still being read are then cut.
    auto deadline = std::chrono::steady_clock::now() + kStopGrace;
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& worker : workers_) worker->stop();
  }

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<int> in_flight_{0};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, Handler& handler) {
  auto server = std::make_unique<BeastServer>(options, handler);
  if (auto status = server->bind(options); !status) return std::unexpected(status.error());
  return server;
}

Response Handler::payload_too_large(const RequestHeader& header, std::size_t limit) {
  Response response{beast_http::status::payload_too_large, header.version()};
  response.set(beast_http::field::content_type, "text/plain");
  response.body() = "Request body is larger than the limit of " + std::to_string(limit) + " bytes.";
  return response;
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
