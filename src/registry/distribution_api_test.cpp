// Tests for the /v2/ handler, driven in-process through http::Handler with a temporary data dir:
// every endpoint, every error code the spec names, and auth.
#include "registry/distribution_api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <boost/json.hpp>

#include "common/crypto.hpp"
#include "registry/registry_testing.hpp"

namespace wharf::registry {
namespace {

namespace bj = boost::json;
namespace beast_http = http::beast_http;
using beast_http::verb;
using test_support::kRepo;
using test_support::RegistryFixture;
using test_support::wait_for;

constexpr std::string_view kAccount = "123456789012";

// What came back: the response, and the bytes a file reply would send.
struct Answer {
  http::Response response;
  bool head = false;
  std::string file_bytes;

  int status() const { return response.result_int(); }
  std::string header(std::string_view name) const { return std::string(response[name]); }
  // The first error's code, or "" when the body is not an error.
  std::string error_code() const {
    boost::system::error_code ec;
    bj::value body = bj::parse(response.body(), ec);
    if (ec || !body.is_object() || !body.as_object().contains("errors")) return "";
    return std::string(body.at("errors").at(0).at("code").as_string());
  }
  bj::value json() const { return bj::parse(response.body()); }
};

class DistributionApiTest : public ::testing::Test {
 protected:
  DistributionApiTest()
      : auth_("test secret", "us-east-1"),
        api_(*registry_.state, *registry_.blobs, auth_, registry_.clock,
             DistributionOptions{std::string(kAccount), 64 * 1024, 2}) {
    auto token =
        auth_.issue_authorization_token(kAccount, "us-east-1", "AKIATEST", registry_.clock.now());
    basic_ = "Basic " + token.token;
    EXPECT_TRUE(registry_.create(kRepo));
  }

  // Sends one request the way the listener would: streamed into a sink when the handler asks
  // for one (in small pieces), else buffered into handle().
  Answer send(verb method, std::string target, std::string body = "",
              std::vector<std::pair<std::string, std::string>> headers = {},
              std::optional<std::string> authorization = std::nullopt) {
    http::Request request{method, target, 11};
    request.set(beast_http::field::host, "registry.test:5000");
    std::string credentials = authorization.value_or(basic_);
    if (!credentials.empty()) request.set(beast_http::field::authorization, credentials);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == verb::put || method == verb::post || method == verb::patch) {
      request.content_length(body.size());
    }
    auto promise = std::make_shared<std::promise<http::Reply>>();
    auto future = promise->get_future();
    http::Responder respond = [promise](http::Reply reply) {
      promise->set_value(std::move(reply));
    };
    if (auto sink = api_.stream_body(request.base())) {
      Status written;
      for (std::size_t offset = 0; offset < body.size() && written; offset += 3) {
        written = sink->write(std::string_view(body).substr(offset, 3));
      }
      sink->finish(written, respond);
    } else {
      request.body() = std::move(body);
      api_.handle(std::move(request), respond);
    }
    http::Reply reply = future.get();
    Answer answer{std::move(reply.response), reply.head, ""};
    EXPECT_EQ(answer.header("Docker-Distribution-API-Version"), "registry/2.0");
    if (reply.file) {
      answer.file_bytes.resize(reply.file->length);
      EXPECT_EQ(::pread(reply.file->fd.get(), answer.file_bytes.data(), reply.file->length,
                        static_cast<off_t>(reply.file->offset)),
                static_cast<ssize_t>(reply.file->length));
    }
    return answer;
  }

  Answer anonymous(verb method, std::string target) { return send(method, target, "", {}, ""); }

  // Pushes a blob in one POST; returns its digest.
  oci::Digest push_blob(std::string_view bytes, const std::string& repo = "team/app") {
    oci::Digest digest = oci::digest_of(bytes);
    Answer answer = send(verb::post, "/v2/" + repo + "/blobs/uploads/?digest=" + digest.str(),
                         std::string(bytes));
    EXPECT_EQ(answer.status(), 201) << answer.response.body();
    return digest;
  }

  std::string manifest_over(std::string_view config, std::string_view layer,
                            std::string extra = "") {
    oci::Digest config_digest = push_blob(config);
    oci::Digest layer_digest = push_blob(layer);
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           config_digest.str() + R"(","size":)" + std::to_string(config.size()) +
           R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
           layer_digest.str() + R"(","size":)" + std::to_string(layer.size()) + "}]" + extra + "}";
  }

  Answer put_manifest(const std::string& reference, const std::string& manifest,
                      std::string content_type = "application/vnd.oci.image.manifest.v1+json") {
    return send(verb::put, "/v2/team/app/manifests/" + reference, manifest,
                {{"Content-Type", content_type}});
  }

  RegistryFixture registry_;
  RegistryAuth auth_;
  DistributionApi api_;
  std::string basic_;
};

// ---- base, auth and tokens ----

TEST_F(DistributionApiTest, BaseAnswersWithTheApiVersionAndChallengesStrangers) {
  Answer answer = send(verb::get, "/v2/");
  EXPECT_EQ(answer.status(), 200);
  EXPECT_EQ(answer.response.body(), "{}");

  Answer stranger = anonymous(verb::get, "/v2/");
  EXPECT_EQ(stranger.status(), 401);
  EXPECT_EQ(stranger.error_code(), "UNAUTHORIZED");
  EXPECT_EQ(stranger.header("WWW-Authenticate"),
            R"(Bearer realm="http://registry.test:5000/v2/token",service="wharf")");

  Answer forged = send(verb::get, "/v2/", "", {}, "Basic " + base64_encode("AWS:forged.token"));
  EXPECT_EQ(forged.status(), 401);
  EXPECT_EQ(forged.error_code(), "UNAUTHORIZED");
  registry_.clock.advance(std::chrono::hours(13));
  EXPECT_EQ(send(verb::get, "/v2/").status(), 401) << "the token expired";
}

TEST_F(DistributionApiTest, TokenEndpointIssuesBearerTokens) {
  Answer answer = send(verb::get, "/v2/token?service=wharf&scope=repository:team/app:pull,push");
  ASSERT_EQ(answer.status(), 200);
  bj::value body = answer.json();
  std::string token(body.at("token").as_string());
  EXPECT_EQ(body.at("access_token").as_string(), token);
  EXPECT_EQ(body.at("expires_in").as_int64(), 12 * 3600);
  EXPECT_TRUE(body.at("issued_at").is_string());
  EXPECT_EQ(send(verb::get, "/v2/", "", {}, "Bearer " + token).status(), 200);
  EXPECT_EQ(send(verb::get, "/v2/team/app/tags/list", "", {}, "Bearer " + token).status(), 200);

  EXPECT_EQ(send(verb::get, "/v2/token", "", {}, "Basic " + base64_encode("AWS:x.y")).status(),
            401);
  Answer anonymous_token = anonymous(verb::get, "/v2/token?scope=repository:team/app:pull");
  ASSERT_EQ(anonymous_token.status(), 200);
  std::string anonymous_bearer =
      "Bearer " + std::string(anonymous_token.json().at("token").as_string());
  // An anonymous token is still anonymous: the private repository challenges it.
  Answer denied = send(verb::get, "/v2/team/app/tags/list", "", {}, anonymous_bearer);
  EXPECT_EQ(denied.status(), 401);
  EXPECT_EQ(
      denied.header("WWW-Authenticate"),
      R"(Bearer realm="http://registry.test:5000/v2/token",service="wharf",scope="repository:team/app:pull")");
  EXPECT_EQ(send(verb::post, "/v2/token").status(), 405);
}

TEST_F(DistributionApiTest, PolicyAllowsAnonymousPullOfOneRepositoryOnly) {
  std::string manifest = manifest_over("{}", "public layer");
  ASSERT_EQ(put_manifest("v1", manifest).status(), 201);
  Answer before = anonymous(verb::get, "/v2/team/app/manifests/v1");
  EXPECT_EQ(before.status(), 401);
  EXPECT_EQ(before.error_code(), "UNAUTHORIZED");

  ASSERT_TRUE(wait_for<Repository>([&](auto done) {
    registry_.state->update_repository(
        kRepo,
        [](Repository& repository) -> Status {
          repository.policy =
              R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]})";
          return {};
        },
        std::move(done));
  }));
  EXPECT_EQ(anonymous(verb::get, "/v2/team/app/manifests/v1").status(), 200);
  auto parsed = oci::parse_manifest(manifest, "");
  EXPECT_EQ(anonymous(verb::get, "/v2/team/app/blobs/" + parsed->layers[0].digest.str()).status(),
            200);
  Answer push = send(verb::post, "/v2/team/app/blobs/uploads/", "", {}, "");
  EXPECT_EQ(push.status(), 401);
  EXPECT_NE(push.header("WWW-Authenticate").find(R"(scope="repository:team/app:pull,push")"),
            std::string::npos);
  EXPECT_EQ(anonymous(verb::delete_, "/v2/team/app/manifests/v1").status(), 401);
  Answer missing = anonymous(verb::get, "/v2/team/other/manifests/v1");
  EXPECT_EQ(missing.status(), 401) << "a missing repository looks like a private one";
}

TEST_F(DistributionApiTest, CredentialsOfAnotherAccountAreDenied) {
  // ECR-style host names name the registry's account and region.
  auto token = auth_.issue_authorization_token("999999999999", "us-east-1", "AKIAOTHER",
                                               registry_.clock.now());
  Answer other =
      send(verb::get, "/v2/team/app/tags/list", "",
           {{"Host", "123456789012.dkr.ecr.us-east-1.wharf.test:5000"}}, "Basic " + token.token);
  EXPECT_EQ(other.status(), 403);
  EXPECT_EQ(other.error_code(), "DENIED");
  Answer owner = send(verb::get, "/v2/team/app/tags/list", "",
                      {{"Host", "123456789012.dkr.ecr.us-east-1.wharf.test:5000"}});
  EXPECT_EQ(owner.status(), 200);
}

// ---- names ----

TEST_F(DistributionApiTest, BadNamesAreInvalidAndMissingRepositoriesUnknown) {
  for (std::string target :
       {"/v2/Team/App/tags/list", "/v2/%2e%2e/tags/list", "/v2/team%2fapp/tags/list",
        "/v2/team/../app/tags/list", "/v2/team/./app/tags/list", "/v2/team//app/tags/list"}) {
    Answer answer = send(verb::get, target);
    EXPECT_EQ(answer.status(), 400) << target;
    EXPECT_EQ(answer.error_code(), "NAME_INVALID") << target;
  }
  Answer long_name = send(verb::get, "/v2/" + std::string(256, 'a') + "/tags/list");
  EXPECT_EQ(long_name.error_code(), "NAME_INVALID");

  Answer pull = send(verb::get, "/v2/team/missing/manifests/v1");
  EXPECT_EQ(pull.status(), 404);
  EXPECT_EQ(pull.error_code(), "NAME_UNKNOWN");
  Answer push = send(verb::post, "/v2/team/missing/blobs/uploads/");
  EXPECT_EQ(push.status(), 404);
  EXPECT_EQ(push.error_code(), "NAME_UNKNOWN");
  Answer monolithic =
      send(verb::post, "/v2/team/missing/blobs/uploads/?digest=" + oci::digest_of("x").str(), "x");
  EXPECT_EQ(monolithic.error_code(), "NAME_UNKNOWN");

  Answer nowhere = send(verb::get, "/v2/team/app/elsewhere/x");
  EXPECT_EQ(nowhere.status(), 404);
  EXPECT_EQ(send(verb::post, "/v2/team/app/tags/list").status(), 405);
}

TEST_F(DistributionApiTest, ErrorBodiesHaveTheSpecShape) {
  Answer answer = send(verb::get, "/v2/team/app/manifests/nope");
  EXPECT_EQ(answer.status(), 404);
  EXPECT_EQ(answer.header("Content-Type"), "application/json");
  bj::value body = answer.json();
  ASSERT_EQ(body.as_object().size(), 1u);
  const bj::object& error = body.at("errors").at(0).as_object();
  EXPECT_EQ(error.at("code").as_string(), "MANIFEST_UNKNOWN");
  EXPECT_TRUE(error.at("message").is_string());
  EXPECT_TRUE(error.contains("detail"));

  Answer head = send(verb::head, "/v2/team/app/manifests/nope");
  EXPECT_EQ(head.status(), 404);
  EXPECT_TRUE(head.head);
  EXPECT_TRUE(head.response.body().empty());
}

// ---- blobs and uploads ----

TEST_F(DistributionApiTest, ChunkedUploadWithStatusAndCompletion) {
  Answer started = send(verb::post, "/v2/team/app/blobs/uploads/");
  ASSERT_EQ(started.status(), 202);
  std::string location = started.header("Location");
  std::string uuid = started.header("Docker-Upload-UUID");
  EXPECT_EQ(location, "/v2/team/app/blobs/uploads/" + uuid);
  EXPECT_EQ(started.header("Range"), "0-0");

  Answer first = send(verb::patch, location, "hello ",
                      {{"Content-Range", "0-5"}, {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(first.status(), 202);
  EXPECT_EQ(first.header("Range"), "0-5");
  EXPECT_EQ(first.header("Location"), location);

  Answer out_of_order = send(verb::patch, location, "world", {{"Content-Range", "3-7"}});
  EXPECT_EQ(out_of_order.status(), 416);
  EXPECT_EQ(out_of_order.header("Range"), "0-5");
  EXPECT_EQ(out_of_order.error_code(), "BLOB_UPLOAD_INVALID");
  Answer inconsistent = send(verb::patch, location, "world", {{"Content-Range", "6-20"}});
  EXPECT_EQ(inconsistent.status(), 416);

  Answer status = send(verb::get, location);
  EXPECT_EQ(status.status(), 204);
  EXPECT_EQ(status.header("Range"), "0-5");
  EXPECT_EQ(status.header("Docker-Upload-UUID"), uuid);

  ASSERT_EQ(send(verb::patch, location, "wor").status(), 202);  // streamed, no Content-Range
  oci::Digest digest = oci::digest_of("hello world");
  Answer done =
      send(verb::put, location + "?digest=" + digest.str(), "ld", {{"Content-Range", "9-10"}});
  ASSERT_EQ(done.status(), 201) << done.response.body();
  EXPECT_EQ(done.header("Location"), "/v2/team/app/blobs/" + digest.str());
  EXPECT_EQ(done.header("Docker-Content-Digest"), digest.str());
  EXPECT_EQ(send(verb::get, location).error_code(), "BLOB_UPLOAD_UNKNOWN");

  Answer head = send(verb::head, "/v2/team/app/blobs/" + digest.str());
  EXPECT_EQ(head.status(), 200);
  EXPECT_TRUE(head.head);
  EXPECT_EQ(head.header("Content-Length"), "11");
  EXPECT_EQ(head.header("Docker-Content-Digest"), digest.str());
  Answer get = send(verb::get, "/v2/team/app/blobs/" + digest.str());
  EXPECT_EQ(get.status(), 200);
  EXPECT_EQ(get.file_bytes, "hello world");
}

TEST_F(DistributionApiTest, MonolithicUploadsAndDigestErrors) {
  oci::Digest digest = push_blob("one shot");
  EXPECT_EQ(registry_.blobs->size(digest), 8u);

  Answer mismatch =
      send(verb::post, "/v2/team/app/blobs/uploads/?digest=" + oci::digest_of("other").str(),
           "one shot!");
  EXPECT_EQ(mismatch.status(), 400);
  EXPECT_EQ(mismatch.error_code(), "DIGEST_INVALID");
  EXPECT_FALSE(registry_.blobs->size(oci::digest_of("other")));
  EXPECT_FALSE(registry_.blobs->size(oci::digest_of("one shot!")));

  Answer malformed = send(verb::post, "/v2/team/app/blobs/uploads/?digest=sha256:zz", "x");
  EXPECT_EQ(malformed.error_code(), "DIGEST_INVALID");
  Answer unsupported = send(verb::post, "/v2/team/app/blobs/uploads/?digest=md5:abc", "x");
  EXPECT_EQ(unsupported.error_code(), "DIGEST_INVALID");

  std::string location = send(verb::post, "/v2/team/app/blobs/uploads/").header("Location");
  Answer no_digest = send(verb::put, location, "abc");
  EXPECT_EQ(no_digest.status(), 400);
  EXPECT_EQ(no_digest.error_code(), "DIGEST_INVALID");
  // PUT ?digest= with the whole body and no PATCH.
  oci::Digest whole = oci::digest_of("abc");
  EXPECT_EQ(send(verb::put, location + "?digest=" + whole.str(), "abc").status(), 201);

  oci::Digest sha512 = oci::digest_of("long hash", "sha512");
  EXPECT_EQ(
      send(verb::post, "/v2/team/app/blobs/uploads/?digest=" + sha512.str(), "long hash").status(),
      201);
  EXPECT_EQ(send(verb::get, "/v2/team/app/blobs/" + sha512.str()).file_bytes, "long hash");
}

TEST_F(DistributionApiTest, UploadsBelongToTheirRepository) {
  RepositoryRef other{"us-east-1", std::string(kAccount), "other"};
  ASSERT_TRUE(registry_.create(other));
  std::string uuid = send(verb::post, "/v2/team/app/blobs/uploads/").header("Docker-Upload-UUID");
  Answer stolen = send(verb::patch, "/v2/other/blobs/uploads/" + uuid, "x");
  EXPECT_EQ(stolen.status(), 404);
  EXPECT_EQ(stolen.error_code(), "BLOB_UPLOAD_UNKNOWN");
  EXPECT_EQ(send(verb::get, "/v2/team/app/blobs/uploads/not-a-session").error_code(),
            "BLOB_UPLOAD_UNKNOWN");

  Answer cancelled = send(verb::delete_, "/v2/team/app/blobs/uploads/" + uuid);
  EXPECT_EQ(cancelled.status(), 204);
  EXPECT_EQ(send(verb::delete_, "/v2/team/app/blobs/uploads/" + uuid).status(), 404);
  EXPECT_EQ(registry_.blobs->upload_count(), 0u);
}

TEST_F(DistributionApiTest, BlobRangesAndUnknownBlobs) {
  oci::Digest digest = push_blob("0123456789");
  std::string path = "/v2/team/app/blobs/" + digest.str();
  Answer partial = send(verb::get, path, "", {{"Range", "bytes=2-5"}});
  EXPECT_EQ(partial.status(), 206);
  EXPECT_EQ(partial.header("Content-Range"), "bytes 2-5/10");
  EXPECT_EQ(partial.file_bytes, "2345");
  Answer tail = send(verb::get, path, "", {{"Range", "bytes=-3"}});
  EXPECT_EQ(tail.file_bytes, "789");
  Answer beyond = send(verb::get, path, "", {{"Range", "bytes=10-"}});
  EXPECT_EQ(beyond.status(), 416);
  EXPECT_EQ(beyond.header("Content-Range"), "bytes */10");

  Answer unknown = send(verb::get, "/v2/team/app/blobs/" + oci::digest_of("nothing").str());
  EXPECT_EQ(unknown.status(), 404);
  EXPECT_EQ(unknown.error_code(), "BLOB_UNKNOWN");
  EXPECT_EQ(send(verb::get, "/v2/team/app/blobs/sha256:nothex").error_code(), "DIGEST_INVALID");

  // Stored, but not part of this repository.
  RepositoryRef other{"us-east-1", std::string(kAccount), "other"};
  ASSERT_TRUE(registry_.create(other));
  EXPECT_EQ(send(verb::head, "/v2/other/blobs/" + digest.str()).status(), 404);

  EXPECT_EQ(send(verb::delete_, path).status(), 202);
  EXPECT_EQ(send(verb::get, path).error_code(), "BLOB_UNKNOWN");
  EXPECT_EQ(send(verb::delete_, path).error_code(), "BLOB_UNKNOWN");
}

TEST_F(DistributionApiTest, CrossRepositoryMount) {
  RepositoryRef other{"us-east-1", std::string(kAccount), "other"};
  ASSERT_TRUE(registry_.create(other));
  oci::Digest digest = push_blob("shared layer");
  Answer mounted =
      send(verb::post, "/v2/other/blobs/uploads/?mount=" + digest.str() + "&from=team/app");
  EXPECT_EQ(mounted.status(), 201);
  EXPECT_EQ(mounted.header("Location"), "/v2/other/blobs/" + digest.str());
  EXPECT_EQ(mounted.header("Docker-Content-Digest"), digest.str());
  EXPECT_EQ(send(verb::get, "/v2/other/blobs/" + digest.str()).file_bytes, "shared layer");

  // Not in the source: a normal upload session instead.
  Answer fallback =
      send(verb::post,
           "/v2/other/blobs/uploads/?mount=" + oci::digest_of("absent").str() + "&from=team/app");
  EXPECT_EQ(fallback.status(), 202);
  EXPECT_FALSE(fallback.header("Docker-Upload-UUID").empty());
  Answer bad_source =
      send(verb::post, "/v2/other/blobs/uploads/?mount=" + digest.str() + "&from=Bad..Name");
  EXPECT_EQ(bad_source.status(), 202);
}

// ---- manifests ----

TEST_F(DistributionApiTest, ManifestPushAndPullByTagAndDigest) {
  std::string manifest = manifest_over(R"({"os":"linux"})", "layer one");
  oci::Digest digest = oci::digest_of(manifest);
  Answer pushed = put_manifest("v1", manifest);
  ASSERT_EQ(pushed.status(), 201) << pushed.response.body();
  EXPECT_EQ(pushed.header("Location"), "/v2/team/app/manifests/" + digest.str());
  EXPECT_EQ(pushed.header("Docker-Content-Digest"), digest.str());

  for (std::string reference : {std::string("v1"), digest.str()}) {
    Answer got = send(verb::get, "/v2/team/app/manifests/" + reference);
    ASSERT_EQ(got.status(), 200) << reference;
    EXPECT_EQ(got.response.body(), manifest);
    EXPECT_EQ(got.header("Content-Type"), "application/vnd.oci.image.manifest.v1+json");
    EXPECT_EQ(got.header("Docker-Content-Digest"), digest.str());
    Answer head = send(verb::head, "/v2/team/app/manifests/" + reference);
    EXPECT_EQ(head.status(), 200);
    EXPECT_TRUE(head.head);
    EXPECT_EQ(head.header("Content-Length"), std::to_string(manifest.size()));
    EXPECT_EQ(head.header("Content-Type"), "application/vnd.oci.image.manifest.v1+json");
  }
  auto image = registry_.state->find_image(kRepo, {digest, {}});
  EXPECT_EQ(image->last_pulled_at, registry_.clock.now()) << "GETs record the pull";

  Answer by_digest = put_manifest(digest.str(), manifest);
  EXPECT_EQ(by_digest.status(), 201);
  Answer wrong_digest = put_manifest(oci::digest_of("other").str(), manifest);
  EXPECT_EQ(wrong_digest.status(), 400);
  EXPECT_EQ(wrong_digest.error_code(), "DIGEST_INVALID");
  EXPECT_EQ(send(verb::get, "/v2/team/app/manifests/sha256:short").error_code(), "DIGEST_INVALID");
  Answer bad_tag = put_manifest("-bad", manifest);
  EXPECT_EQ(bad_tag.status(), 400);
  EXPECT_EQ(bad_tag.error_code(), "TAG_INVALID");
}

TEST_F(DistributionApiTest, ManifestsMustBeValidAndComplete) {
  std::string manifest = manifest_over("{}", "layer");
  std::string missing_layer = manifest;
  auto parsed = oci::parse_manifest(manifest, "");
  std::string layer_hex = parsed->layers[0].digest.hex;
  missing_layer.replace(missing_layer.find(layer_hex), layer_hex.size(), std::string(64, 'e'));
  Answer blob_unknown = put_manifest("v1", missing_layer);
  EXPECT_EQ(blob_unknown.status(), 400);
  EXPECT_EQ(blob_unknown.error_code(), "MANIFEST_BLOB_UNKNOWN");

  Answer invalid = put_manifest("v1", "{not json");
  EXPECT_EQ(invalid.status(), 400);
  EXPECT_EQ(invalid.error_code(), "MANIFEST_INVALID");
  Answer contradicting =
      put_manifest("v1", manifest, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(contradicting.error_code(), "MANIFEST_INVALID");
  Answer schema1 =
      put_manifest("v1", R"({"schemaVersion":1,"name":"team/app","tag":"v1","fsLayers":[]})",
                   "application/vnd.docker.distribution.manifest.v1+prettyjws");
  EXPECT_EQ(schema1.status(), 400);
  EXPECT_EQ(schema1.error_code(), "MANIFEST_INVALID");

  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":"sha256:)" +
                      std::string(64, 'd') + R"(","size":10}]})";
  Answer child_unknown = put_manifest("multi", index, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(child_unknown.status(), 400);
  EXPECT_EQ(child_unknown.error_code(), "MANIFEST_BLOB_UNKNOWN");

  Answer too_big = put_manifest("big", std::string(64 * 1024 + 1, ' '));
  EXPECT_EQ(too_big.status(), 413);
  EXPECT_EQ(registry_.state->image_count(), 0u);
}

TEST_F(DistributionApiTest, IndexesAndDockerTypesKeepTheirMediaType) {
  std::string docker = manifest_over("{}", "docker layer");
  docker.replace(docker.find("application/vnd.oci.image.manifest.v1+json"),
                 std::string_view("application/vnd.oci.image.manifest.v1+json").size(),
                 "application/vnd.docker.distribution.manifest.v2+json");
  const std::string docker_type = "application/vnd.docker.distribution.manifest.v2+json";
  ASSERT_EQ(put_manifest("docker", docker, docker_type).status(), 201);
  oci::Digest child = oci::digest_of(docker);
  std::string list =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",)"
      R"("manifests":[{"mediaType":")" +
      docker_type + R"(","digest":")" + child.str() + R"(","size":)" +
      std::to_string(docker.size()) + R"(,"platform":{"architecture":"amd64","os":"linux"}}]})";
  const std::string list_type = "application/vnd.docker.distribution.manifest.list.v2+json";
  ASSERT_EQ(put_manifest("multi", list, list_type).status(), 201);
  EXPECT_EQ(send(verb::get, "/v2/team/app/manifests/docker").header("Content-Type"), docker_type);
  EXPECT_EQ(send(verb::get, "/v2/team/app/manifests/multi").header("Content-Type"), list_type);
}

TEST_F(DistributionApiTest, ImmutableTagsRefuseToMove) {
  ASSERT_TRUE(wait_for<Repository>([&](auto done) {
    registry_.state->update_repository(
        kRepo,
        [](Repository& repository) -> Status {
          repository.tag_mutability = "IMMUTABLE";
          return {};
        },
        std::move(done));
  }));
  std::string first = manifest_over("{}", "first");
  std::string second = manifest_over("{}", "second");
  ASSERT_EQ(put_manifest("v1", first).status(), 201);
  EXPECT_EQ(put_manifest("v1", first).status(), 201) << "re-pushing the same image";
  Answer moved = put_manifest("v1", second);
  EXPECT_EQ(moved.status(), 400);
  EXPECT_EQ(moved.error_code(), "TAG_INVALID");
  EXPECT_NE(moved.response.body().find("immutable"), std::string::npos);
}

TEST_F(DistributionApiTest, DeletingByTagUntagsAndByDigestDeletes) {
  std::string manifest = manifest_over("{}", "doomed");
  oci::Digest digest = oci::digest_of(manifest);
  ASSERT_EQ(put_manifest("v1", manifest).status(), 201);
  EXPECT_EQ(send(verb::delete_, "/v2/team/app/manifests/v1").status(), 202);
  EXPECT_EQ(send(verb::get, "/v2/team/app/manifests/v1").error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(send(verb::get, "/v2/team/app/manifests/" + digest.str()).status(), 200);
  EXPECT_EQ(send(verb::delete_, "/v2/team/app/manifests/" + digest.str()).status(), 202);
  Answer gone = send(verb::get, "/v2/team/app/manifests/" + digest.str());
  EXPECT_EQ(gone.status(), 404);
  EXPECT_EQ(gone.error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(send(verb::delete_, "/v2/team/app/manifests/" + digest.str()).status(), 404);
}

// ---- tags, referrers, catalog ----

TEST_F(DistributionApiTest, TagsListPages) {
  std::string manifest = manifest_over("{}", "tagged");
  for (std::string tag : {"c", "a", "e", "b", "d"}) {
    ASSERT_EQ(put_manifest(tag, manifest).status(), 201);
  }
  Answer all = send(verb::get, "/v2/team/app/tags/list");
  EXPECT_EQ(all.response.body(), R"({"name":"team/app","tags":["a","b","c","d","e"]})");
  EXPECT_EQ(all.header("Link"), "");

  Answer first = send(verb::get, "/v2/team/app/tags/list?n=2");
  EXPECT_EQ(first.response.body(), R"({"name":"team/app","tags":["a","b"]})");
  EXPECT_EQ(first.header("Link"), R"(</v2/team/app/tags/list?n=2&last=b>; rel="next")");
  Answer second = send(verb::get, "/v2/team/app/tags/list?n=2&last=b");
  EXPECT_EQ(second.response.body(), R"({"name":"team/app","tags":["c","d"]})");
  Answer last = send(verb::get, "/v2/team/app/tags/list?n=2&last=d");
  EXPECT_EQ(last.response.body(), R"({"name":"team/app","tags":["e"]})");
  EXPECT_EQ(last.header("Link"), "");
  EXPECT_EQ(send(verb::get, "/v2/team/app/tags/list?n=0").response.body(),
            R"({"name":"team/app","tags":[]})");
}

TEST_F(DistributionApiTest, ReferrersListManifestsWithASubject) {
  std::string subject = manifest_over("{}", "subject layer");
  oci::Digest subject_digest = oci::digest_of(subject);
  ASSERT_EQ(put_manifest("v1", subject).status(), 201);
  auto referrer = [&](std::string type, std::string seed) {
    std::string extra =
        R"(,"artifactType":")" + type + R"(","annotations":{"org.example.seed":")" + seed +
        R"("},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
        subject_digest.str() + R"(","size":)" + std::to_string(subject.size()) + "}";
    return manifest_over("{}", seed, extra);
  };
  std::string signature = referrer("application/vnd.example.signature", "sig");
  std::string sbom = referrer("application/vnd.example.sbom", "sbom");
  Answer pushed = put_manifest(oci::digest_of(signature).str(), signature);
  ASSERT_EQ(pushed.status(), 201);
  EXPECT_EQ(pushed.header("OCI-Subject"), subject_digest.str());
  ASSERT_EQ(put_manifest(oci::digest_of(sbom).str(), sbom).status(), 201);

  Answer all = send(verb::get, "/v2/team/app/referrers/" + subject_digest.str());
  ASSERT_EQ(all.status(), 200);
  EXPECT_EQ(all.header("Content-Type"), "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(all.header("OCI-Filters-Applied"), "");
  bj::value index = all.json();
  EXPECT_EQ(index.at("schemaVersion").as_int64(), 2);
  EXPECT_EQ(index.at("mediaType").as_string(), "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(index.at("manifests").as_array().size(), 2u);

  Answer filtered = send(verb::get, "/v2/team/app/referrers/" + subject_digest.str() +
                                        "?artifactType=application/vnd.example.sbom");
  EXPECT_EQ(filtered.header("OCI-Filters-Applied"), "artifactType");
  bj::value filtered_index = filtered.json();
  const bj::array& only = filtered_index.at("manifests").as_array();
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].at("digest").as_string(), oci::digest_of(sbom).str());
  EXPECT_EQ(only[0].at("artifactType").as_string(), "application/vnd.example.sbom");
  EXPECT_EQ(only[0].at("size").as_int64(), static_cast<int64_t>(sbom.size()));
  EXPECT_EQ(only[0].at("annotations").at("org.example.seed").as_string(), "sbom");

  Answer none = send(verb::get, "/v2/team/app/referrers/" + oci::digest_of("x").str());
  EXPECT_EQ(none.status(), 200);
  EXPECT_TRUE(none.json().at("manifests").as_array().empty());
  EXPECT_EQ(send(verb::get, "/v2/team/app/referrers/latest").error_code(), "DIGEST_INVALID");
}

TEST_F(DistributionApiTest, CatalogListsTheCallersRepositories) {
  ASSERT_TRUE(registry_.create({"us-east-1", std::string(kAccount), "alpha"}));
  ASSERT_TRUE(registry_.create({"eu-west-1", std::string(kAccount), "elsewhere"}));
  EXPECT_EQ(send(verb::get, "/v2/_catalog").response.body(),
            R"({"repositories":["alpha","team/app"]})");
  EXPECT_EQ(anonymous(verb::get, "/v2/_catalog").status(), 401);
}

}  // namespace
}  // namespace wharf::registry
