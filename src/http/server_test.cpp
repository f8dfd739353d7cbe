// Unit tests for the listener: buffered and streamed bodies, file replies, HEAD, limits.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "common/crypto.hpp"
#include "http/server.hpp"

namespace wharf::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

class CountingSink final : public BodySink {
 public:
  CountingSink(std::string* received, bool refuse_after_1mb)
      : received_(received), refuse_(refuse_after_1mb) {}
  Status write(std::string_view piece) override {
    received_->append(piece);
    if (refuse_ && received_->size() > (1u << 20)) {
      return fail(ErrorCode::kInvalidParameter, "too much");
    }
    return {};
  }
  void finish(Status received, Responder respond) override {
    Response response{received ? beast_http::status::created : beast_http::status::bad_request, 11};
    response.body() = received ? sha256_hex(*received_) : received.error().message;
    respond(std::move(response));
  }

 private:
  std::string* received_;
  bool refuse_;
};

class TestHandler final : public Handler {
 public:
  explicit TestHandler(std::string file_path) : file_path_(std::move(file_path)) {}

  void handle(Request&& request, Responder respond) override {
    if (request.target() == "/file") {
      Response response{beast_http::status::ok, request.version()};
      UniqueFd fd(::open(file_path_.c_str(), O_RDONLY | O_CLOEXEC));
      if (request.method() == beast_http::verb::head) {
        response.content_length(10);
        return respond(Reply::header_only(std::move(response)));
      }
      return respond(Reply(std::move(response), FileRange{std::move(fd), 2, 10}));
    }
    respond(make_response(request, beast_http::status::ok, "echo:" + request.body(), "text/plain"));
  }

  std::unique_ptr<BodySink> stream_body(const RequestHeader& header) override {
    if (header.target() == "/sink") return std::make_unique<CountingSink>(&received_, false);
    if (header.target() == "/refuse") return std::make_unique<CountingSink>(&received_, true);
    return nullptr;
  }

  std::string received_;

 private:
  std::string file_path_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/wharf-http-test-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "0123456789abcdef", 16), 16);
    ::close(fd);
    file_path_ = path;
    handler_ = std::make_unique<TestHandler>(file_path_);
    ServerOptions options;
    options.body_limit = 1024;
    auto server = Server::start(options, *handler_);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_->stop();
    std::remove(file_path_.c_str());
  }

  beast_http::response<beast_http::string_body> send(Request request, uint16_t port = 0) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port == 0 ? server_->port() : port));
    request.prepare_payload();
    beast_http::write(socket, request);
    beast::flat_buffer buffer;
    beast_http::response_parser<beast_http::string_body> parser;
    parser.skip(request.method() == beast_http::verb::head);
    beast_http::read(socket, buffer, parser);
    return parser.release();
  }

  std::string file_path_;
  std::unique_ptr<TestHandler> handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, BuffersSmallBodies) {
  Request request{beast_http::verb::post, "/echo", 11};
  request.body() = "hello";
  auto response = send(std::move(request));
  EXPECT_EQ(response.result(), beast_http::status::ok);
  EXPECT_EQ(response.body(), "echo:hello");
}

// Bodiless GETs, pipelined: each is answered at once, with the header bytes Beast's serializer
// would write; the HTTP/1.0 one closes the connection.
TEST_F(ServerTest, AnswersPipelinedBodilessRequestsByteForByte) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  asio::write(socket, asio::buffer(std::string("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                               "GET /b HTTP/1.0\r\n\r\n")));
  std::string received;
  beast::error_code ec;
  char buffer[4096];
  while (!ec) {
    std::size_t got = socket.read_some(asio::buffer(buffer), ec);
    received.append(buffer, got);
  }
  EXPECT_EQ(ec, asio::error::eof);
  Response expected{beast_http::status::ok, 11};
  expected.set(beast_http::field::content_type, "text/plain");
  expected.body() = "echo:";
  expected.prepare_payload();
  std::ostringstream beast_bytes;
  beast_bytes << expected;
  expected.version(10);
  expected.keep_alive(false);
  beast_bytes << expected;
  EXPECT_EQ(received, beast_bytes.str());
}

// A listening socket on a free loopback port, as a caller in another namespace would hand over.
std::pair<UniqueFd, uint16_t> listening_socket() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(fd.get(), 16) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return {UniqueFd(), 0};
  }
  return {std::move(fd), ntohs(address.sin_port)};
}

TEST_F(ServerTest, ServesAdoptedListenersUntilClosed) {
  auto [fd, port] = listening_socket();
  ASSERT_NE(port, 0);
  server_->adopt_listener("task-1", std::move(fd));
  Request request{beast_http::verb::post, "/echo", 11};
  request.body() = "adopted";
  EXPECT_EQ(send(request, port).body(), "echo:adopted");

  server_->close_listener("task-1");
  // The close runs on the loop; a connection attempt soon after is refused.
  bool refused = false;
  for (int attempt = 0; attempt < 100 && !refused; ++attempt) {
    asio::io_context io;
    tcp::socket socket(io);
    beast::error_code ec;
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    refused = static_cast<bool>(ec);
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(send(request).body(), "echo:adopted");  // the main listener is untouched
}

TEST_F(ServerTest, RefusesBodiesOverTheLimitWith413) {
  Request request{beast_http::verb::post, "/echo", 11};
  request.body() = std::string(2048, 'x');
  EXPECT_EQ(send(std::move(request)).result(), beast_http::status::payload_too_large);
}

TEST_F(ServerTest, StreamsLargeBodiesIntoASink) {
  Request request{beast_http::verb::put, "/sink", 11};
  request.body() = std::string(5 << 20, 'y');  // far over the buffered limit
  std::string expected = sha256_hex(request.body());
  auto response = send(std::move(request));
  EXPECT_EQ(response.result(), beast_http::status::created);
  EXPECT_EQ(response.body(), expected);
}

TEST_F(ServerTest, AnswersExpectContinue) {
  Request request{beast_http::verb::put, "/sink", 11};
  request.set(beast_http::field::expect, "100-continue");
  request.body() = "abc";
  request.prepare_payload();
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  beast_http::request_serializer<beast_http::string_body> serializer(request);
  beast_http::write_header(socket, serializer);
  beast::flat_buffer buffer;
  beast_http::response<beast_http::empty_body> interim;
  beast_http::read(socket, buffer, interim);
  EXPECT_EQ(interim.result(), beast_http::status::continue_);
  beast_http::write(socket, serializer);
  beast_http::response<beast_http::string_body> response;
  beast_http::read(socket, buffer, response);
  EXPECT_EQ(response.result(), beast_http::status::created);
}

TEST_F(ServerTest, SinkErrorsAreAnswered) {
  Request request{beast_http::verb::put, "/refuse", 11};
  request.body() = std::string(3 << 20, 'z');
  auto response = send(std::move(request));
  EXPECT_EQ(response.result(), beast_http::status::bad_request);
  EXPECT_EQ(response.body(), "too much");
}

TEST_F(ServerTest, SendsFileRangesAndHeadHeaders) {
  auto response = send(Request{beast_http::verb::get, "/file", 11});
  EXPECT_EQ(response.result(), beast_http::status::ok);
  EXPECT_EQ(response.body(), "23456789ab");
  auto head = send(Request{beast_http::verb::head, "/file", 11});
  EXPECT_EQ(head.result(), beast_http::status::ok);
  EXPECT_EQ(head[beast_http::field::content_length], "10");
  EXPECT_TRUE(head.body().empty());
}

}  // namespace
}  // namespace wharf::http
