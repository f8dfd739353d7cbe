// The registry client against an in-process fake registry (Wharf's HTTP listener): push and
// pull round trips, chunked uploads, mounts, indexes, anonymous/Basic/Bearer auth, registry
// errors and digest verification.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <fstream>
#include <mutex>
#include <sstream>

#include "common/crypto.hpp"
#include "http/server.hpp"
#include "oci/client.hpp"
#include "oci/fake_registry_testing.hpp"
#include "oci/image_builder.hpp"
#include "oci/layout.hpp"
#include "oci/temp_dir.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;
namespace beast_http = http::beast_http;
using Status_ = beast_http::status;
using testing::FakeRegistry;

std::string text(const boost::json::value& value) {
  return value.is_string() ? std::string(value.as_string()) : boost::json::serialize(value);
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("wharf-client-test-");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::move(*dir);
    auto server = http::Server::start(http::ServerOptions{}, registry_);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
    registry_.port = server_->port();
    host_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->stop(); }

  Reference ref(const std::string& repo_and_tag) {
    auto parsed = parse_reference(host_ + "/" + repo_and_tag);
    EXPECT_TRUE(parsed.has_value());
    return *parsed;
  }

  // A small image built from a tree holding `payload`.
  BuiltImage image(const std::string& payload) {
    fs::path root = dir_.path() / ("rootfs-" + std::to_string(++trees_));
    fs::create_directories(root / "bin");
    std::ofstream(root / "bin/payload", std::ios::binary) << payload;
    ImageBuildOptions options;
    options.mtime = TimePoint{};
    options.config.cmd = {"/bin/payload"};
    auto built = build_image(root, options);
    EXPECT_TRUE(built.has_value()) << built.error().message;
    return std::move(*built);
  }

  // A blob file of `size` pseudo-random bytes.
  BlobSource blob_file(std::size_t size) {
    std::string bytes = random_bytes(size);
    fs::path path = dir_.path() / ("blob-" + std::to_string(size));
    std::ofstream(path, std::ios::binary) << bytes;
    return BlobSource{digest_of(bytes), size, path};
  }

  TempDir dir_;
  FakeRegistry registry_;
  std::unique_ptr<http::Server> server_;
  std::string host_;
  int trees_ = 0;
};

TEST_F(ClientTest, PushesAnImageAndPullsItBack) {
  RegistryClient client;
  EXPECT_EQ(client.base_url(host_), "http://" + host_);
  ASSERT_TRUE(client.ping(host_).has_value());
  BuiltImage built = image("hello");
  auto pushed = push_image(client, ref("web:latest"), built);
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message;
  EXPECT_EQ(*pushed, built.manifest_digest);

  fs::path layout = dir_.path() / "pulled";
  auto pulled = client.pull_image(ref("web:latest"), layout);
  ASSERT_TRUE(pulled.has_value()) << pulled.error().message;
  EXPECT_EQ(pulled->manifest.digest, built.manifest_digest);
  EXPECT_EQ(pulled->manifest.media_type, kOciManifest);
  EXPECT_EQ(pulled->reference.digest, built.manifest_digest);
  EXPECT_FALSE(pulled->index.has_value());
  EXPECT_EQ(read_file(layout_blob_path(layout, built.layer.digest)), read_file(built.layer.path));
  EXPECT_EQ(read_file(layout_blob_path(layout, built.config.digest)), read_file(built.config.path));
  EXPECT_EQ(read_file(layout_blob_path(layout, built.manifest_digest)), built.manifest);
  auto index = boost::json::parse(read_file(layout / "index.json")).as_object();
  auto entry = index["manifests"].as_array()[0].as_object();
  EXPECT_EQ(text(entry["digest"]), built.manifest_digest.str());
  EXPECT_EQ(entry["annotations"].as_object()[kRefNameAnnotation], "latest");

  // Pulled by digest too, and blobs already present are not fetched again.
  int blob_gets = registry_.count("GET /v2/web/blobs/");
  auto by_digest = client.pull_image(ref("web@" + built.manifest_digest.str()), layout);
  ASSERT_TRUE(by_digest.has_value()) << by_digest.error().message;
  EXPECT_EQ(registry_.count("GET /v2/web/blobs/"), blob_gets);

  // A second push finds every blob there already.
  auto again = client.push_blob(ref("web:latest"), built.layer.source());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, BlobPush::kExisted);
}

TEST_F(ClientTest, UploadsLargeBlobsInChunks) {
  ClientOptions options;
  options.chunk_size = 64 << 10;
  RegistryClient client(options);
  BlobSource blob = blob_file((200 << 10) + 17);
  auto pushed = client.push_blob(ref("big:1"), blob);
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message;
  EXPECT_EQ(*pushed, BlobPush::kUploaded);
  EXPECT_EQ(registry_.count("PATCH /v2/big/blobs/uploads/"), 4);
  EXPECT_TRUE(registry_.has_blob("big", blob.digest));

  fs::path copy = dir_.path() / "copy";
  ASSERT_TRUE(client.fetch_blob(ref("big:1"), blob.digest, copy, blob.size).has_value());
  EXPECT_EQ(read_file(copy), read_file(blob.path));
}

TEST_F(ClientTest, MountsFromAnotherRepository) {
  RegistryClient client;
  BlobSource blob = blob_file(1000);
  ASSERT_EQ(client.push_blob(ref("one:1"), blob), BlobPush::kUploaded);
  auto mounted = client.push_blob(ref("two:1"), blob, "one");
  ASSERT_TRUE(mounted.has_value()) << mounted.error().message;
  EXPECT_EQ(*mounted, BlobPush::kMounted);
  EXPECT_TRUE(registry_.has_blob("two", blob.digest));
  // Nothing to mount from: the upload goes ahead in the session the POST opened.
  BlobSource other = blob_file(2000);
  EXPECT_EQ(client.push_blob(ref("two:1"), other, "nowhere"), BlobPush::kUploaded);
}

TEST_F(ClientTest, PicksThePlatformFromAnIndex) {
  RegistryClient pusher;
  BuiltImage amd64 = image("amd64");
  BuiltImage arm64 = image("arm64");
  ASSERT_TRUE(push_image(pusher, ref("multi:amd64"), amd64).has_value());
  ASSERT_TRUE(push_image(pusher, ref("multi:arm64"), arm64).has_value());
  auto entry = [](const BuiltImage& built, std::string arch, std::string variant) {
    boost::json::object platform{{"architecture", arch}, {"os", "linux"}};
    if (!variant.empty()) platform["variant"] = variant;
    return boost::json::object{{"mediaType", kOciManifest},
                               {"digest", built.manifest_digest.str()},
                               {"size", built.manifest.size()},
                               {"platform", platform}};
  };
  std::string index = boost::json::serialize(boost::json::object{
      {"schemaVersion", 2},
      {"mediaType", kOciIndex},
      {"manifests", boost::json::array{entry(arm64, "arm64", "v8"), entry(amd64, "amd64", "")}}});
  registry_.put_manifest("multi", std::string(kOciIndex), index, "latest");

  RegistryClient client;
  auto resolved = client.resolve(ref("multi:latest"));
  ASSERT_TRUE(resolved.has_value()) << resolved.error().message;
  EXPECT_EQ(resolved->manifest.digest, amd64.manifest_digest);
  ASSERT_TRUE(resolved->index.has_value());
  EXPECT_EQ(resolved->index->digest, digest_of(index));
  EXPECT_EQ(resolved->index->media_type, kOciIndex);

  auto raw = client.fetch_manifest(ref("multi:latest"));
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->bytes, index);

  ClientOptions arm;
  arm.platform.architecture = "arm64";
  auto arm_resolved = RegistryClient(arm).resolve(ref("multi:latest"));
  ASSERT_TRUE(arm_resolved.has_value()) << arm_resolved.error().message;
  EXPECT_EQ(arm_resolved->manifest.digest, arm64.manifest_digest);

  ClientOptions s390x;
  s390x.platform.architecture = "s390x";
  auto missing = RegistryClient(s390x).resolve(ref("multi:latest"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kImageNotFound);
  EXPECT_NE(
      missing.error().message.find("no linux/s390x image (it has linux/arm64/v8, linux/amd64)"),
      std::string::npos)
      << missing.error().message;
}

TEST_F(ClientTest, SurfacesRegistryErrorsWithContext) {
  RegistryClient client;
  auto missing = client.fetch_manifest(ref("web:missing"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kImageNotFound);
  EXPECT_EQ(
      missing.error().message,
      "pulling manifest " + host_ + "/web:missing: HTTP 404: MANIFEST_UNKNOWN: manifest unknown");

  Digest absent = digest_of("absent");
  fs::path destination = dir_.path() / "absent";
  auto blob = client.fetch_blob(ref("web:latest"), absent, destination);
  ASSERT_FALSE(blob.has_value());
  EXPECT_EQ(blob.error().code, ErrorCode::kLayersNotFound);
  EXPECT_EQ(blob.error().message,
            "pulling blob " + absent.str() + " of " + host_ +
                "/web:latest: HTTP 404: BLOB_UNKNOWN: blob unknown to registry");
  EXPECT_FALSE(fs::exists(destination));

  // Content whose digest is not the one claimed is refused by the registry…
  BlobSource blob_source = blob_file(100);
  blob_source.digest = digest_of("something else");
  auto refused = client.push_blob(ref("web:latest"), blob_source);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kImageDigestDoesNotMatch);
  EXPECT_NE(refused.error().message.find("DIGEST_INVALID: provided digest did not match"),
            std::string::npos)
      << refused.error().message;

  // …and a registry that is not there is a transport error naming the URL.
  RegistryClient nowhere;
  auto down = nowhere.ping("127.0.0.1:1");
  ASSERT_FALSE(down.has_value());
  EXPECT_NE(down.error().message.find("pinging registry 127.0.0.1:1: GET http://127.0.0.1:1/v2/"),
            std::string::npos)
      << down.error().message;
}

TEST_F(ClientTest, VerifiesDigestsOfWhatItReceives) {
  RegistryClient client;
  BuiltImage built = image("verified");
  ASSERT_TRUE(push_image(client, ref("web:latest"), built).has_value());

  registry_.corrupt_blobs = true;
  fs::path layout = dir_.path() / "layout";
  auto pulled = client.pull_image(ref("web:latest"), layout);
  ASSERT_FALSE(pulled.has_value());
  EXPECT_EQ(pulled.error().code, ErrorCode::kImageDigestDoesNotMatch);
  EXPECT_NE(pulled.error().message.find("pulling config " + built.config.digest.str() + " of " +
                                        host_ + "/web:latest: the content received has digest"),
            std::string::npos)
      << pulled.error().message;
  // Nothing unverified is left behind: no blob, no temporary file.
  for (const auto& file : fs::recursive_directory_iterator(layout)) {
    EXPECT_FALSE(file.is_regular_file() && file.path().parent_path().filename() == "sha256")
        << file.path();
  }
  auto bytes = client.fetch_blob_bytes(ref("web:latest"), built.config.digest);
  ASSERT_FALSE(bytes.has_value());
  EXPECT_EQ(bytes.error().code, ErrorCode::kImageDigestDoesNotMatch);
  registry_.corrupt_blobs = false;

  registry_.lie_about_manifests = true;
  auto lied = client.fetch_manifest(ref("web:latest"));
  ASSERT_FALSE(lied.has_value());
  EXPECT_EQ(lied.error().code, ErrorCode::kImageDigestDoesNotMatch);
  // By digest the bytes are checked against the digest asked for; the header adds nothing.
  auto by_digest = client.fetch_manifest(ref("web@" + built.manifest_digest.str()));
  EXPECT_TRUE(by_digest.has_value());
  registry_.lie_about_manifests = false;
  EXPECT_FALSE(client.fetch_manifest(ref("web@" + digest_of("x").str())).has_value());

  // A size other than the manifest says.
  auto short_read = client.fetch_blob(ref("web:latest"), built.config.digest,
                                      dir_.path() / "config", built.config.size + 1);
  ASSERT_FALSE(short_read.has_value());
  EXPECT_NE(short_read.error().message.find("received"), std::string::npos);
}

TEST_F(ClientTest, FollowsTheBearerTokenFlowAndCachesTokens) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  registry_.token_needs_credentials = true;
  ManualClock clock(TimePoint(std::chrono::seconds(1700000000)));
  ClientOptions options;
  options.credentials = RegistryCredentials{"alice", "s3cret"};
  options.clock = &clock;
  RegistryClient client(options);
  BuiltImage built = image("bearer");
  auto pushed = push_image(client, ref("secure:1"), built);
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message;
  // One 401 to learn the realm, one token for pull+push, reused for every request after.
  EXPECT_EQ(registry_.count("GET /token"), 1);
  auto pulled = client.pull_image(ref("secure:1"), dir_.path() / "pulled");
  ASSERT_TRUE(pulled.has_value()) << pulled.error().message;
  EXPECT_EQ(registry_.count("GET /token"), 2);  // a pull scope of its own
  ASSERT_TRUE(client.fetch_manifest(ref("secure:1")).has_value());
  EXPECT_EQ(registry_.count("GET /token"), 2);
  auto token_requests = registry_.log();
  std::erase_if(token_requests, [](const auto& line) { return !line.starts_with("GET /token"); });
  // The scope this client needs (pull,push) and the one the registry named for the HEAD.
  std::string first = token_requests[0];
  std::transform(first.begin(), first.end(), first.begin(), ::tolower);
  EXPECT_NE(first.find("service=fake"), std::string::npos) << first;
  EXPECT_NE(first.find("scope=repository%3asecure%3apull%2cpush"), std::string::npos) << first;
  EXPECT_TRUE(first.ends_with("&scope=repository%3asecure%3apull")) << first;

  // Tokens expire with the clock.
  clock.advance(std::chrono::seconds(301));
  ASSERT_TRUE(client.fetch_manifest(ref("secure:1")).has_value());
  EXPECT_EQ(registry_.count("GET /token"), 3);

  // Without credentials the token server refuses, and the error says where.
  RegistryClient anonymous;
  auto refused = anonymous.fetch_manifest(ref("secure:1"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kAccessDenied);
  EXPECT_NE(
      refused.error().message.find("getting a token from http://" + host_ + "/token: HTTP 401"),
      std::string::npos)
      << refused.error().message;
}

TEST_F(ClientTest, AnonymousBearerTokens) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  RegistryClient client;
  ASSERT_TRUE(client.ping(host_).has_value());  // learns the realm from the 401
  BuiltImage built = image("anonymous");
  ASSERT_TRUE(push_image(client, ref("open:1"), built).has_value());
  EXPECT_EQ(registry_.count("GET /token"), 1);
}

TEST_F(ClientTest, UsesBasicAuthWhenAsked) {
  registry_.auth = FakeRegistry::Auth::kBasic;
  BuiltImage built = image("basic");

  RegistryClient anonymous;
  ASSERT_FALSE(push_image(anonymous, ref("private:1"), built).has_value());
  auto refused = anonymous.fetch_manifest(ref("private:1"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kAccessDenied);
  EXPECT_NE(refused.error().message.find(
                "the registry wants a user name and password (HTTP Basic): HTTP 401: "
                "UNAUTHORIZED: authentication required"),
            std::string::npos)
      << refused.error().message;

  ClientOptions wrong;
  wrong.credentials = RegistryCredentials{"alice", "wrong"};
  auto denied = RegistryClient(wrong).fetch_manifest(ref("private:1"));
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kAccessDenied);
  EXPECT_NE(denied.error().message.find("HTTP 401: UNAUTHORIZED"), std::string::npos);

  ClientOptions right;
  right.credentials = RegistryCredentials{"alice", "s3cret"};
  RegistryClient client(right);
  auto pushed = push_image(client, ref("private:1"), built);
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message;
  int unauthorized_before = registry_.count("GET");
  ASSERT_TRUE(client.pull_image(ref("private:1"), dir_.path() / "pulled").has_value());
  // Once Basic is known, it is sent up front: three GETs (manifest, config, layer), no retries.
  EXPECT_EQ(registry_.count("GET") - unauthorized_before, 3);
}

TEST_F(ClientTest, PingRefusesWhatIsNotARegistry) {
  RegistryClient client;
  auto other = client.ping(host_ + "/not-v2");  // a path: the URL becomes /not-v2/v2/
  ASSERT_FALSE(other.has_value());
  EXPECT_NE(other.error().message.find("HTTP 404"), std::string::npos) << other.error().message;
}

}  // namespace
}  // namespace wharf::oci
