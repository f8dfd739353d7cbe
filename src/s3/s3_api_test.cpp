// S3Api driven through its handler with signed requests: what a failed store commit leaves.
#include "s3/s3_api.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>

#include "aws/sigv4.hpp"
#include "common/clock.hpp"
#include "store/store.hpp"

namespace wharf::s3 {
namespace {

namespace fs = std::filesystem;
namespace beast_http = boost::beast::http;

// A SQLite store whose commits of objects and uploads fail while `fail_uploads` is set (a full
// disk).
class FlakyStore final : public store::Store {
 public:
  explicit FlakyStore(std::unique_ptr<store::Store> real) : real_(std::move(real)) {}
  Result<std::vector<store::Record>> load(const std::string& kind) override {
    return real_->load(kind);
  }
  void commit(std::vector<store::Mutation> mutations, store::CommitCallback done) override {
    bool uploads = std::ranges::any_of(mutations, [](const store::Mutation& mutation) {
      return mutation.kind == "s3.object" || mutation.kind == "s3.upload";
    });
    if (uploads && fail_uploads) return done(fail(ErrorCode::kInternal, "the disk is full"));
    real_->commit(std::move(mutations), std::move(done));
  }
  void close() override { real_->close(); }

  std::atomic<bool> fail_uploads = false;

 private:
  std::unique_ptr<store::Store> real_;
};

struct Answer {
  unsigned status = 0;
  std::string body;
};

class S3ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "wharf-s3-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto real = store::open_sqlite_store((root_ / "wharf.db").string());
    ASSERT_TRUE(real) << real.error().message;
    store_ = std::make_unique<FlakyStore>(std::move(*real));
    credentials_.add({"AKIDEXAMPLE", "secret", "123456789012", "arn:aws:iam::123456789012:root"});
    S3Options options;
    options.root = root_ / "s3";
    options.account_id = "123456789012";
    auto api = S3Api::open(options, *store_, credentials_, clock_);
    ASSERT_TRUE(api) << api.error().message;
    api_ = std::move(*api);
  }
  void TearDown() override {
    if (api_) api_->stop();
    api_.reset();
    if (store_) store_->close();
    fs::remove_all(root_);
  }

  // Sends a signed request through the handler (streaming the body where S3 streams one).
  Answer send(beast_http::verb method, const std::string& target, const std::string& body = "") {
    http::Request request{method, target, 11};
    request.set(beast_http::field::host, "127.0.0.1");
    request.body() = body;
    request.prepare_payload();
    aws::SignableRequest signable{
        std::string(request.method_string()), target, {{"Host", "127.0.0.1"}}, body};
    aws::sign_request(signable, "AKIDEXAMPLE", "secret", "us-east-1", "s3", clock_.now());
    for (const auto& [name, value] : signable.headers) request.set(name, value);
    std::promise<Answer> answered;
    auto respond = [&answered](http::Reply reply) {
      answered.set_value({reply.response.result_int(), reply.response.body()});
    };
    if (auto sink = api_->stream_body(request)) {
      EXPECT_TRUE(sink->write(body));
      sink->finish({}, respond);
    } else {
      api_->handle(std::move(request), respond);
    }
    auto future = answered.get_future();
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }

  static std::string element(const std::string& xml, const std::string& name) {
    auto start = xml.find("<" + name + ">");
    if (start == std::string::npos) return "";
    start += name.size() + 2;
    return xml.substr(start, xml.find("</" + name + ">", start) - start);
  }

  fs::path root_;
  SystemClock clock_;
  aws::CredentialStore credentials_;
  std::unique_ptr<FlakyStore> store_;
  std::unique_ptr<S3Api> api_;
};

TEST_F(S3ApiTest, AFailedAbortLeavesTheUploadForARetry) {
  ASSERT_EQ(send(beast_http::verb::put, "/bucket").status, 200u);
  auto created = send(beast_http::verb::post, "/bucket/key?uploads");
  std::string upload = element(created.body, "UploadId");
  ASSERT_FALSE(upload.empty()) << created.body;
  store_->fail_uploads = true;
  EXPECT_EQ(send(beast_http::verb::delete_, "/bucket/key?uploadId=" + upload).status, 500u);
  store_->fail_uploads = false;
  EXPECT_EQ(send(beast_http::verb::delete_, "/bucket/key?uploadId=" + upload).status, 204u);
  EXPECT_EQ(send(beast_http::verb::delete_, "/bucket/key?uploadId=" + upload).status, 404u);
}

TEST_F(S3ApiTest, AFailedCompleteLeavesTheUploadForARetry) {
  ASSERT_EQ(send(beast_http::verb::put, "/bucket").status, 200u);
  auto created = send(beast_http::verb::post, "/bucket/key?uploads");
  ASSERT_EQ(created.status, 200u) << created.body;
  std::string upload = element(created.body, "UploadId");
  ASSERT_FALSE(upload.empty());
  auto part = send(beast_http::verb::put, "/bucket/key?partNumber=1&uploadId=" + upload, "hello");
  ASSERT_EQ(part.status, 200u) << part.body;
  std::string complete =
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
      "\"5d41402abc4b2a76b9719d911017c592\"</ETag></Part></CompleteMultipartUpload>";

  store_->fail_uploads = true;
  auto failed = send(beast_http::verb::post, "/bucket/key?uploadId=" + upload, complete);
  EXPECT_EQ(failed.status, 500u) << failed.body;
  EXPECT_EQ(send(beast_http::verb::get, "/bucket/key").status, 404u);

  store_->fail_uploads = false;
  auto retried = send(beast_http::verb::post, "/bucket/key?uploadId=" + upload, complete);
  EXPECT_EQ(retried.status, 200u) << retried.body;
  auto got = send(beast_http::verb::get, "/bucket/key");
  EXPECT_EQ(got.status, 200u);
}

}  // namespace
}  // namespace wharf::s3
