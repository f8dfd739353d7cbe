// Unit tests for the ECR API operations, called through the JSON service as the router calls
// them (after model validation), over a real store, blob store and registry state.
#include "registry/ecr_api.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <future>

#include "aws/errors.hpp"
#include "aws/json_api_testing.hpp"
#include "aws/service_model.hpp"
#include "common/crypto.hpp"
#include "registry/registry_testing.hpp"
#include "registry/test_layers.hpp"

namespace wharf::registry {
namespace {

namespace bj = boost::json;
using std::chrono::hours;
using test_layers::LayerEntry;

constexpr const char* kVulnerabilities = R"({"updatedAt":"2024-06-01T00:00:00Z",
  "vulnerabilities":[{"id":"CVE-2099-0001","severity":"HIGH","package":"wharf-demo",
  "os":"debian:12","fixedVersion":"1.1","description":"demo","uri":"https://example.test/1"}]})";

class EcrApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::path database = fixture_.dir.path() / "vulnerabilities.json";
    std::ofstream(database) << kVulnerabilities;
    scanner_ = std::make_unique<ImageScanner>(database);
    EcrOptions options;
    options.lifecycle_interval = std::chrono::seconds(0);
    api_ = std::make_unique<EcrApi>(*fixture_.state, *fixture_.blobs, auth_, *scanner_,
                                    fixture_.clock, tokens_, options);
    api_->register_operations(service_);
    api_->set_endpoint("http://127.0.0.1:5000");
  }
  void TearDown() override { api_.reset(); }

  // Calls as the router does (model validation first); see aws/json_api_testing.hpp.
  Result<bj::object> call(const std::string& operation, bj::object input,
                          std::string region = "us-east-1") {
    return aws::testing::JsonServiceCaller(service_).call(operation, std::move(input),
                                                          std::move(region));
  }
  bj::object ok(const std::string& operation, bj::object input) {
    return aws::testing::JsonServiceCaller(service_).ok(operation, std::move(input));
  }
  void expect_error(const std::string& operation, bj::object input, std::string_view type,
                    std::string_view message_part = "") {
    aws::testing::JsonServiceCaller(service_).expect_error(operation, std::move(input), type,
                                                           message_part);
  }

  void create(const std::string& name, bj::object extra = {}) {
    extra["repositoryName"] = name;
    ok("CreateRepository", std::move(extra));
  }

  // Uploads `bytes` through InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload.
  oci::Digest upload(const std::string& repository, const std::string& bytes) {
    auto started = ok("InitiateLayerUpload", {{"repositoryName", repository}});
    std::string upload_id(started["uploadId"].as_string());
    std::size_t half = bytes.size() / 2;
    ok("UploadLayerPart", {{"repositoryName", repository},
                           {"uploadId", upload_id},
                           {"partFirstByte", 0},
                           {"partLastByte", static_cast<int64_t>(half) - 1},
                           {"layerPartBlob", base64_encode(bytes.substr(0, half))}});
    ok("UploadLayerPart", {{"repositoryName", repository},
                           {"uploadId", upload_id},
                           {"partFirstByte", static_cast<int64_t>(half)},
                           {"partLastByte", static_cast<int64_t>(bytes.size()) - 1},
                           {"layerPartBlob", base64_encode(bytes.substr(half))}});
    oci::Digest digest = oci::digest_of(bytes);
    auto completed = ok("CompleteLayerUpload", {{"repositoryName", repository},
                                                {"uploadId", upload_id},
                                                {"layerDigests", bj::array{digest.str()}}});
    EXPECT_EQ(completed["layerDigest"], bj::value(digest.str()));
    return digest;
  }

  // An OCI image whose single layer holds `entries`, uploaded to the repository; returns the
  // manifest.
  std::string image(const std::string& repository, const std::vector<LayerEntry>& entries) {
    std::string layer = test_layers::layer_tar(entries);
    std::string seed = oci::digest_of(layer).hex;
    std::string config = R"({"architecture":"amd64","os":"linux","created":")" + seed +
                         R"(","rootfs":{"type":"layers","diff_ids":[]}})";
    oci::Digest layer_digest = upload(repository, layer);
    oci::Digest config_digest = upload(repository, config);
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           config_digest.str() + R"(","size":)" + std::to_string(config.size()) +
           R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
           layer_digest.str() + R"(","size":)" + std::to_string(layer.size()) + "}]}";
  }

  std::string push(const std::string& repository, const std::string& seed,
                   std::optional<std::string> tag) {
    std::string manifest = image(repository, {{"seed", seed}});
    bj::object input{{"repositoryName", repository}, {"imageManifest", manifest}};
    if (tag) input["imageTag"] = *tag;
    auto pushed = ok("PutImage", std::move(input));
    return std::string(pushed["image"].at("imageId").at("imageDigest").as_string());
  }

  std::vector<std::string> digests(const std::string& repository) {
    auto listed = ok("DescribeImages", {{"repositoryName", repository}});
    std::vector<std::string> result;
    for (const auto& detail : listed["imageDetails"].as_array()) {
      result.emplace_back(detail.at("imageDigest").as_string());
    }
    return result;
  }

  test_support::RegistryFixture fixture_;
  RegistryAuth auth_{"registry-secret", "us-east-1"};
  aws::PageTokens tokens_{"paging-secret"};
  aws::JsonService service_{aws::ServiceModel::ecr(), "ecr", "1.1"};
  std::unique_ptr<ImageScanner> scanner_;
  std::unique_ptr<EcrApi> api_;
};

TEST_F(EcrApiTest, RepositoryLifecycle) {
  auto created = ok("CreateRepository",
                    {{"repositoryName", "team/app"},
                     {"imageTagMutability", "IMMUTABLE"},
                     {"imageScanningConfiguration", {{"scanOnPush", true}}},
                     {"encryptionConfiguration", {{"encryptionType", "KMS"}, {"kmsKey", "k1"}}},
                     {"tags", bj::array{{{"Key", "team"}, {"Value", "core"}}}}});
  const auto& repository = created["repository"].as_object();
  EXPECT_EQ(repository.at("repositoryArn"),
            "arn:aws:ecr:us-east-1:123456789012:repository/team/app");
  EXPECT_EQ(repository.at("repositoryUri"), "127.0.0.1:5000/team/app");
  EXPECT_EQ(repository.at("registryId"), "123456789012");
  EXPECT_EQ(repository.at("imageTagMutability"), "IMMUTABLE");
  EXPECT_EQ(repository.at("imageScanningConfiguration").at("scanOnPush"), true);
  EXPECT_EQ(repository.at("encryptionConfiguration").at("encryptionType"), "KMS");

  expect_error("CreateRepository", {{"repositoryName", "team/app"}},
               "RepositoryAlreadyExistsException", "already exists");
  expect_error("CreateRepository", {{"repositoryName", "Upper"}}, "InvalidParameterException",
               "regular expression");
  expect_error("CreateRepository", {{"repositoryName", "a--/b"}}, "InvalidParameterException");
  expect_error("CreateRepository", {{"repositoryName", "x"}}, "InvalidParameterException");
  expect_error(
      "CreateRepository",
      {{"repositoryName", "bad-tags"}, {"tags", bj::array{{{"Key", "aws:x"}, {"Value", ""}}}}},
      "InvalidTagParameterException");
  bj::array many;
  for (int tag_idx = 0; tag_idx < 51; ++tag_idx) {
    many.push_back(bj::object{{"Key", "k" + std::to_string(tag_idx)}, {"Value", "v"}});
  }
  expect_error("CreateRepository", {{"repositoryName", "many-tags"}, {"tags", many}},
               "TooManyTagsException");
  expect_error("CreateRepository",
               {{"repositoryName", "filters"}, {"imageTagMutability", "IMMUTABLE_WITH_EXCLUSION"}},
               "InvalidParameterException");

  auto described = ok("DescribeRepositories", {{"repositoryNames", bj::array{"team/app"}}});
  EXPECT_EQ(described["repositories"].as_array().size(), 1u);
  expect_error("DescribeRepositories", {{"repositoryNames", bj::array{"team/app", "missing"}}},
               "RepositoryNotFoundException", "'missing'");
  expect_error("DeleteRepository", {{"repositoryName", "missing"}}, "RepositoryNotFoundException");

  push("team/app", "one", "v1");
  expect_error("DeleteRepository", {{"repositoryName", "team/app"}}, "RepositoryNotEmptyException");
  auto deleted = ok("DeleteRepository", {{"repositoryName", "team/app"}, {"force", true}});
  EXPECT_EQ(deleted["repository"].at("repositoryName"), "team/app");
  expect_error("DescribeRepositories", {{"repositoryNames", bj::array{"team/app"}}},
               "RepositoryNotFoundException");
}

TEST_F(EcrApiTest, DescribeRepositoriesPages) {
  for (const char* name : {"r-a", "r-b", "r-c", "r-d", "r-e"}) create(name);
  std::vector<std::string> names;
  bj::object input{{"maxResults", 2}};
  for (int page_idx = 0; page_idx < 10; ++page_idx) {
    auto page = ok("DescribeRepositories", input);
    for (const auto& repository : page["repositories"].as_array()) {
      names.emplace_back(repository.at("repositoryName").as_string());
    }
    if (!page.contains("nextToken")) break;
    input["nextToken"] = page["nextToken"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"r-a", "r-b", "r-c", "r-d", "r-e"}));
  expect_error("DescribeRepositories", {{"repositoryNames", bj::array{"r-a"}}, {"maxResults", 2}},
               "InvalidParameterException");
  // Another region sees none of them.
  auto other = call("DescribeRepositories", {}, "eu-west-1");
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE((*other)["repositories"].as_array().empty());
}

TEST_F(EcrApiTest, LayerUploads) {
  create("layers");
  std::string bytes = "0123456789abcdef";
  oci::Digest digest = upload("layers", bytes);

  auto checked =
      ok("BatchCheckLayerAvailability",
         {{"repositoryName", "layers"},
          {"layerDigests", bj::array{digest.str(), oci::digest_of("other").str(), "bad"}}});
  ASSERT_EQ(checked["layers"].as_array().size(), 1u);
  EXPECT_EQ(checked["layers"].as_array()[0].at("layerAvailability"), "AVAILABLE");
  EXPECT_EQ(checked["layers"].as_array()[0].at("layerSize"), 16);
  ASSERT_EQ(checked["failures"].as_array().size(), 2u);
  EXPECT_EQ(checked["failures"].as_array()[0].at("failureCode"), "MissingLayerDigest");
  EXPECT_EQ(checked["failures"].as_array()[1].at("failureCode"), "InvalidLayerDigest");

  auto url =
      ok("GetDownloadUrlForLayer", {{"repositoryName", "layers"}, {"layerDigest", digest.str()}});
  EXPECT_EQ(url["downloadUrl"], bj::value("http://127.0.0.1:5000/v2/layers/blobs/" + digest.str()));
  expect_error("GetDownloadUrlForLayer",
               {{"repositoryName", "layers"}, {"layerDigest", oci::digest_of("x").str()}},
               "LayersNotFoundException");

  // The same layer again.
  std::string upload_id(
      ok("InitiateLayerUpload", {{"repositoryName", "layers"}})["uploadId"].as_string());
  ok("UploadLayerPart", {{"repositoryName", "layers"},
                         {"uploadId", upload_id},
                         {"partFirstByte", 0},
                         {"partLastByte", 15},
                         {"layerPartBlob", base64_encode(bytes)}});
  expect_error("CompleteLayerUpload",
               {{"repositoryName", "layers"},
                {"uploadId", upload_id},
                {"layerDigests", bj::array{digest.str()}}},
               "LayerAlreadyExistsException");

  // Parts must be contiguous and match their byte range.
  upload_id = ok("InitiateLayerUpload", {{"repositoryName", "layers"}})["uploadId"].as_string();
  expect_error("UploadLayerPart",
               {{"repositoryName", "layers"},
                {"uploadId", upload_id},
                {"partFirstByte", 4},
                {"partLastByte", 7},
                {"layerPartBlob", base64_encode("abcd")}},
               "InvalidLayerPartException", "contiguous");
  expect_error("UploadLayerPart",
               {{"repositoryName", "layers"},
                {"uploadId", upload_id},
                {"partFirstByte", 0},
                {"partLastByte", 9},
                {"layerPartBlob", base64_encode("abcd")}},
               "InvalidLayerPartException");
  // An upload of another repository is not found here.
  create("elsewhere");
  expect_error("UploadLayerPart",
               {{"repositoryName", "elsewhere"},
                {"uploadId", upload_id},
                {"partFirstByte", 0},
                {"partLastByte", 3},
                {"layerPartBlob", base64_encode("abcd")}},
               "UploadNotFoundException");
  expect_error("CompleteLayerUpload",
               {{"repositoryName", "layers"},
                {"uploadId", upload_id},
                {"layerDigests", bj::array{oci::digest_of("").str()}}},
               "EmptyUploadException");

  // A digest that does not match the bytes.
  upload_id = ok("InitiateLayerUpload", {{"repositoryName", "layers"}})["uploadId"].as_string();
  ok("UploadLayerPart", {{"repositoryName", "layers"},
                         {"uploadId", upload_id},
                         {"partFirstByte", 0},
                         {"partLastByte", 3},
                         {"layerPartBlob", base64_encode("abcd")}});
  expect_error("CompleteLayerUpload",
               {{"repositoryName", "layers"},
                {"uploadId", upload_id},
                {"layerDigests", bj::array{oci::digest_of("dcba").str()}}},
               "InvalidLayerException");
  expect_error("CompleteLayerUpload",
               {{"repositoryName", "layers"},
                {"uploadId", "no-such-upload"},
                {"layerDigests", bj::array{digest.str()}}},
               "UploadNotFoundException");
}

TEST_F(EcrApiTest, PutImageRules) {
  create("images");
  std::string manifest = image("images", {{"a", "1"}});
  auto pushed = ok("PutImage",
                   {{"repositoryName", "images"}, {"imageManifest", manifest}, {"imageTag", "v1"}});
  std::string digest = oci::digest_of(manifest).str();
  EXPECT_EQ(pushed["image"].at("imageId").at("imageDigest"), bj::value(digest));
  EXPECT_EQ(pushed["image"].at("imageManifestMediaType"),
            "application/vnd.oci.image.manifest.v1+json");
  expect_error("PutImage",
               {{"repositoryName", "images"}, {"imageManifest", manifest}, {"imageTag", "v1"}},
               "ImageAlreadyExistsException", "already exists");
  expect_error("PutImage",
               {{"repositoryName", "images"},
                {"imageManifest", manifest},
                {"imageDigest", oci::digest_of("other").str()}},
               "ImageDigestDoesNotMatchException");
  std::string missing_layer = manifest;
  missing_layer.replace(missing_layer.rfind("sha256:") + 7, 4, "0000");
  expect_error("PutImage", {{"repositoryName", "images"}, {"imageManifest", missing_layer}},
               "LayersNotFoundException");
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" +
                      oci::digest_of("nope").str() + R"(","size":10}]})";
  expect_error("PutImage", {{"repositoryName", "images"}, {"imageManifest", index}},
               "ReferencedImagesNotFoundException");
  expect_error("PutImage", {{"repositoryName", "nothing-here"}, {"imageManifest", manifest}},
               "RepositoryNotFoundException");

  // Immutable tags cannot move.
  auto mutability = ok("PutImageTagMutability",
                       {{"repositoryName", "images"}, {"imageTagMutability", "IMMUTABLE"}});
  EXPECT_EQ(mutability["imageTagMutability"], "IMMUTABLE");
  std::string second = image("images", {{"b", "2"}});
  expect_error("PutImage",
               {{"repositoryName", "images"}, {"imageManifest", second}, {"imageTag", "v1"}},
               "ImageTagAlreadyExistsException");
  ok("PutImage", {{"repositoryName", "images"}, {"imageManifest", second}, {"imageTag", "v2"}});
  // An exclusion filter makes matching tags mutable again.
  ok("PutImageTagMutability", {{"repositoryName", "images"},
                               {"imageTagMutability", "IMMUTABLE_WITH_EXCLUSION"},
                               {"imageTagMutabilityExclusionFilters",
                                bj::array{{{"filterType", "WILDCARD"}, {"filter", "v*"}}}}});
  ok("PutImage", {{"repositoryName", "images"}, {"imageManifest", second}, {"imageTag", "v1"}});
  auto scanning =
      ok("PutImageScanningConfiguration",
         {{"repositoryName", "images"}, {"imageScanningConfiguration", {{"scanOnPush", true}}}});
  EXPECT_EQ(scanning["imageScanningConfiguration"].at("scanOnPush"), true);
}

TEST_F(EcrApiTest, ListDescribeGetAndDeleteImages) {
  create("app");
  std::string first = push("app", "one", "v1");
  std::string second = push("app", "two", "v2");
  std::string untagged = push("app", "three", std::nullopt);

  auto tagged =
      ok("ListImages", {{"repositoryName", "app"}, {"filter", {{"tagStatus", "TAGGED"}}}});
  EXPECT_EQ(tagged["imageIds"].as_array().size(), 2u);
  auto bare =
      ok("ListImages", {{"repositoryName", "app"}, {"filter", {{"tagStatus", "UNTAGGED"}}}});
  ASSERT_EQ(bare["imageIds"].as_array().size(), 1u);
  EXPECT_EQ(bare["imageIds"].as_array()[0].at("imageDigest"), bj::value(untagged));
  auto paged = ok("ListImages", {{"repositoryName", "app"}, {"maxResults", 2}});
  EXPECT_EQ(paged["imageIds"].as_array().size(), 2u);
  auto rest = ok("ListImages",
                 {{"repositoryName", "app"}, {"maxResults", 2}, {"nextToken", paged["nextToken"]}});
  EXPECT_EQ(rest["imageIds"].as_array().size(), 1u);
  EXPECT_FALSE(rest.contains("nextToken"));

  auto described = ok("DescribeImages",
                      {{"repositoryName", "app"}, {"imageIds", bj::array{{{"imageTag", "v1"}}}}});
  const auto& detail = described["imageDetails"].as_array()[0].as_object();
  EXPECT_EQ(detail.at("imageDigest"), bj::value(first));
  EXPECT_EQ(detail.at("imageTags"), bj::array{"v1"});
  EXPECT_GT(detail.at("imageSizeInBytes").as_int64(), 0);
  EXPECT_EQ(detail.at("imagePushedAt").as_double(), epoch_seconds(fixture_.clock.now()));
  EXPECT_EQ(detail.at("artifactMediaType"), "application/vnd.oci.image.config.v1+json");
  EXPECT_FALSE(detail.contains("lastRecordedPullTime"));
  expect_error("DescribeImages",
               {{"repositoryName", "app"}, {"imageIds", bj::array{{{"imageTag", "nope"}}}}},
               "ImageNotFoundException", "imageTag:'nope'");

  auto got =
      ok("BatchGetImage",
         {{"repositoryName", "app"},
          {"imageIds", bj::array{{{"imageTag", "v2"}}, {{"imageTag", "missing"}}, bj::object{}}}});
  ASSERT_EQ(got["images"].as_array().size(), 1u);
  EXPECT_EQ(got["images"].as_array()[0].at("imageId").at("imageDigest"), bj::value(second));
  EXPECT_TRUE(got["images"].as_array()[0].at("imageManifest").is_string());
  ASSERT_EQ(got["failures"].as_array().size(), 2u);
  EXPECT_EQ(got["failures"].as_array()[0].at("failureCode"), "ImageNotFound");
  EXPECT_EQ(got["failures"].as_array()[1].at("failureCode"), "MissingDigestAndTag");
  auto mismatched =
      ok("BatchGetImage", {{"repositoryName", "app"},
                           {"imageIds", bj::array{{{"imageTag", "v2"}, {"imageDigest", first}}}}});
  EXPECT_EQ(mismatched["failures"].as_array()[0].at("failureCode"), "ImageTagDoesNotMatchDigest");
  auto refused = ok(
      "BatchGetImage",
      {{"repositoryName", "app"},
       {"imageIds", bj::array{{{"imageTag", "v2"}}}},
       {"acceptedMediaTypes", bj::array{"application/vnd.docker.distribution.manifest.v2+json"}}});
  EXPECT_EQ(refused["failures"].as_array().size(), 1u);
  // The pull is recorded.
  described = ok("DescribeImages",
                 {{"repositoryName", "app"}, {"imageIds", bj::array{{{"imageDigest", second}}}}});
  EXPECT_TRUE(described["imageDetails"].as_array()[0].as_object().contains("lastRecordedPullTime"));

  // By tag untags; the last tag going deletes the image; by digest deletes.
  auto deleted =
      ok("BatchDeleteImage",
         {{"repositoryName", "app"},
          {"imageIds",
           bj::array{{{"imageTag", "v1"}}, {{"imageDigest", untagged}}, {{"imageTag", "gone"}}}}});
  ASSERT_EQ(deleted["imageIds"].as_array().size(), 2u);
  EXPECT_EQ(deleted["imageIds"].as_array()[0].at("imageTag"), "v1");
  EXPECT_EQ(deleted["imageIds"].as_array()[1].at("imageDigest"), bj::value(untagged));
  ASSERT_EQ(deleted["failures"].as_array().size(), 1u);
  EXPECT_EQ(deleted["failures"].as_array()[0].at("failureCode"), "ImageNotFound");
  EXPECT_EQ(digests("app"), std::vector<std::string>{second});
  expect_error("BatchDeleteImage",
               {{"repositoryName", "none"}, {"imageIds", bj::array{{{"imageTag", "v1"}}}}},
               "RepositoryNotFoundException");
}

TEST_F(EcrApiTest, LifecyclePoliciesExpireImages) {
  create("life");
  expect_error("GetLifecyclePolicy", {{"repositoryName", "life"}},
               "LifecyclePolicyNotFoundException");
  expect_error(
      "PutLifecyclePolicy",
      {{"repositoryName", "life"},
       {"lifecyclePolicyText",
        R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]})"}},
      "InvalidParameterException", "exactly one of");

  std::string old_untagged = push("life", "one", std::nullopt);
  fixture_.clock.advance(hours(24 * 3));
  std::string newer_untagged = push("life", "two", std::nullopt);
  fixture_.clock.advance(hours(1));
  std::string tagged = push("life", "three", "keep");

  std::string policy = R"({"rules":[{"rulePriority":1,"description":"one untagged",)"
                       R"("selection":{"tagStatus":"untagged","countType":"imageCountMoreThan",)"
                       R"("countNumber":1},"action":{"type":"expire"}}]})";
  auto put =
      ok("PutLifecyclePolicy", {{"repositoryName", "life"}, {"lifecyclePolicyText", policy}});
  EXPECT_EQ(put["lifecyclePolicyText"], bj::value(policy));

  expect_error("GetLifecyclePolicyPreview", {{"repositoryName", "life"}},
               "LifecyclePolicyPreviewNotFoundException");
  auto started = ok("StartLifecyclePolicyPreview", {{"repositoryName", "life"}});
  EXPECT_EQ(started["status"], "COMPLETE");
  auto preview = ok("GetLifecyclePolicyPreview", {{"repositoryName", "life"}});
  EXPECT_EQ(preview["status"], "COMPLETE");
  ASSERT_EQ(preview["previewResults"].as_array().size(), 1u);
  const auto& result = preview["previewResults"].as_array()[0].as_object();
  EXPECT_EQ(result.at("imageDigest"), bj::value(old_untagged));
  EXPECT_EQ(result.at("action").at("type"), "EXPIRE");
  EXPECT_EQ(result.at("appliedRulePriority"), 1);
  EXPECT_EQ(preview["summary"].at("expiringImageTotalCount"), 1);
  // Previewing is not applying.
  EXPECT_EQ(digests("life").size(), 3u);

  auto applied = api_->apply_lifecycle_policy({"us-east-1", "123456789012", "life"});
  ASSERT_TRUE(applied.has_value()) << applied.error().message;
  ASSERT_EQ(applied->size(), 1u);
  auto remaining = digests("life");
  std::sort(remaining.begin(), remaining.end());
  std::vector<std::string> expected{newer_untagged, tagged};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(remaining, expected);
  auto got = ok("GetLifecyclePolicy", {{"repositoryName", "life"}});
  EXPECT_EQ(got["lastEvaluatedAt"].as_double(), epoch_seconds(fixture_.clock.now()));

  // After a push the policy runs by itself: the previously newest untagged image goes.
  fixture_.clock.advance(hours(1));
  std::string newest_untagged = push("life", "four", std::nullopt);
  api_->drain();
  remaining = digests("life");
  std::sort(remaining.begin(), remaining.end());
  expected = {newest_untagged, tagged};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(remaining, expected);

  // The periodic round: an age rule on an injected clock.
  ok("PutLifecyclePolicy",
     {{"repositoryName", "life"},
      {"lifecyclePolicyText",
       R"({"rules":[{"rulePriority":5,"selection":{"tagStatus":"any",)"
       R"("countType":"sinceImagePushed","countUnit":"days","countNumber":30},)"
       R"("action":{"type":"expire"}}]})"}});
  EXPECT_EQ(api_->apply_lifecycle_policies(), 0u);
  fixture_.clock.advance(hours(24 * 31));
  EXPECT_EQ(api_->apply_lifecycle_policies(), 2u);
  EXPECT_TRUE(digests("life").empty());

  auto removed = ok("DeleteLifecyclePolicy", {{"repositoryName", "life"}});
  EXPECT_TRUE(removed["lifecyclePolicyText"].is_string());
  expect_error("DeleteLifecyclePolicy", {{"repositoryName", "life"}},
               "LifecyclePolicyNotFoundException");
}

TEST_F(EcrApiTest, ThePeriodicRoundCoversRegionsUnseenSinceStartUp) {
  ASSERT_TRUE(call("CreateRepository", {{"repositoryName", "far"}}, "eu-west-1").has_value());
  std::string untagged_policy =
      R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged",)"
      R"("countType":"sinceImagePushed","countUnit":"days","countNumber":1},)"
      R"("action":{"type":"expire"}}]})";
  ASSERT_TRUE(call("PutLifecyclePolicy",
                   {{"repositoryName", "far"}, {"lifecyclePolicyText", untagged_policy}},
                   "eu-west-1")
                  .has_value());
  auto manifest = fixture_.image_manifest({"eu-west-1", "123456789012", "far"}, "far");
  ASSERT_TRUE(fixture_.put({"eu-west-1", "123456789012", "far"}, manifest, std::nullopt));
  api_->drain();
  // As after a restart: a fresh API that has seen no call in eu-west-1.
  api_.reset();
  EcrOptions options;
  options.lifecycle_interval = std::chrono::seconds(0);
  api_ = std::make_unique<EcrApi>(*fixture_.state, *fixture_.blobs, auth_, *scanner_,
                                  fixture_.clock, tokens_, options);
  fixture_.clock.advance(hours(49));
  EXPECT_EQ(api_->apply_lifecycle_policies(), 1u);
}

TEST_F(EcrApiTest, ScansFindVulnerablePackages) {
  create("scanned");
  std::vector<LayerEntry> debian{
      {"etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"},
      {"var/lib/dpkg/status",
       "Package: wharf-demo\nStatus: install ok installed\nVersion: 1.0-1\n\n"
       "Package: safe\nStatus: install ok installed\nVersion: 3\n"}};
  std::string manifest = image("scanned", debian);
  auto pushed = ok(
      "PutImage", {{"repositoryName", "scanned"}, {"imageManifest", manifest}, {"imageTag", "v1"}});
  expect_error("DescribeImageScanFindings",
               {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "v1"}}}},
               "ScanNotFoundException");
  auto started =
      ok("StartImageScan", {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "v1"}}}});
  EXPECT_EQ(started["imageScanStatus"].at("status"), "IN_PROGRESS");
  EXPECT_EQ(started["imageId"].at("imageTag"), "v1");
  api_->drain();

  auto findings = ok("DescribeImageScanFindings",
                     {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "v1"}}}});
  EXPECT_EQ(findings["imageScanStatus"].at("status"), "COMPLETE");
  const auto& scan = findings["imageScanFindings"].as_object();
  EXPECT_EQ(scan.at("findingSeverityCounts"), (bj::value{{"HIGH", 1}}));
  EXPECT_EQ(scan.at("vulnerabilitySourceUpdatedAt").as_double(), 1717200000.0);
  ASSERT_EQ(scan.at("findings").as_array().size(), 1u);
  const auto& finding = scan.at("findings").as_array()[0].as_object();
  EXPECT_EQ(finding.at("name"), "CVE-2099-0001");
  EXPECT_EQ(finding.at("uri"), "https://example.test/1");
  EXPECT_EQ(finding.at("attributes").as_array()[1].at("value"), "wharf-demo");

  auto described = ok("DescribeImages", {{"repositoryName", "scanned"}});
  const auto& detail = described["imageDetails"].as_array()[0].as_object();
  EXPECT_EQ(detail.at("imageScanStatus").at("status"), "COMPLETE");
  EXPECT_EQ(detail.at("imageScanFindingsSummary").at("findingSeverityCounts"),
            (bj::value{{"HIGH", 1}}));

  // Scan on push: an image with no package database is unsupported, never guessed at.
  ok("PutImageScanningConfiguration",
     {{"repositoryName", "scanned"}, {"imageScanningConfiguration", {{"scanOnPush", true}}}});
  std::string busybox = image("scanned", {{"bin/busybox", "ELF"}});
  ok("PutImage", {{"repositoryName", "scanned"}, {"imageManifest", busybox}, {"imageTag", "bare"}});
  api_->drain();
  auto bare = ok("DescribeImageScanFindings",
                 {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "bare"}}}});
  EXPECT_EQ(bare["imageScanStatus"].at("status"), "UNSUPPORTED_IMAGE");

  // A manifest list cannot be scanned.
  std::string child = std::string(pushed["image"].at("imageId").at("imageDigest").as_string());
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" +
                      child + R"(","size":)" + std::to_string(manifest.size()) + "}]}";
  ok("PutImage", {{"repositoryName", "scanned"}, {"imageManifest", index}, {"imageTag", "multi"}});
  expect_error("StartImageScan",
               {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "multi"}}}},
               "UnsupportedImageTypeException");
  expect_error("StartImageScan",
               {{"repositoryName", "scanned"}, {"imageId", {{"imageTag", "nope"}}}},
               "ImageNotFoundException");
}

TEST_F(EcrApiTest, PoliciesTagsAndAuthorization) {
  create("tagged");
  std::string arn = "arn:aws:ecr:us-east-1:123456789012:repository/tagged";
  ok("TagResource",
     {{"resourceArn", arn},
      {"tags", bj::array{{{"Key", "a"}, {"Value", "1"}}, {{"Key", "b"}, {"Value", "2"}}}}});
  ok("UntagResource", {{"resourceArn", arn}, {"tagKeys", bj::array{"a"}}});
  auto listed = ok("ListTagsForResource", {{"resourceArn", arn}});
  EXPECT_EQ(listed["tags"], (bj::array{{{"Key", "b"}, {"Value", "2"}}}));
  expect_error(
      "TagResource",
      {{"resourceArn", "arn:aws:ecs:us-east-1:123456789012:cluster/x"}, {"tags", bj::array{}}},
      "InvalidParameterException");
  expect_error("TagResource",
               {{"resourceArn", "arn:aws:ecr:us-east-1:123456789012:repository/none"},
                {"tags", bj::array{{{"Key", "a"}, {"Value", "1"}}}}},
               "RepositoryNotFoundException");
  expect_error("TagResource",
               {{"resourceArn", arn}, {"tags", bj::array{{{"Key", "aws:a"}, {"Value", "1"}}}}},
               "InvalidTagParameterException");

  expect_error("GetRepositoryPolicy", {{"repositoryName", "tagged"}},
               "RepositoryPolicyNotFoundException");
  expect_error("SetRepositoryPolicy", {{"repositoryName", "tagged"}, {"policyText", "{}"}},
               "InvalidParameterException");
  std::string policy = R"({"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow",)"
                       R"("Principal":"*","Action":["ecr:BatchGetImage"]}]})";
  ok("SetRepositoryPolicy", {{"repositoryName", "tagged"}, {"policyText", policy}});
  EXPECT_EQ(ok("GetRepositoryPolicy", {{"repositoryName", "tagged"}})["policyText"],
            bj::value(policy));
  EXPECT_EQ(ok("DeleteRepositoryPolicy", {{"repositoryName", "tagged"}})["policyText"],
            bj::value(policy));
  expect_error("DeleteRepositoryPolicy", {{"repositoryName", "tagged"}},
               "RepositoryPolicyNotFoundException");

  auto registry = ok("DescribeRegistry", {});
  EXPECT_EQ(registry["registryId"], "123456789012");
  auto token = ok("GetAuthorizationToken", {});
  const auto& data = token["authorizationData"].as_array()[0].as_object();
  EXPECT_EQ(data.at("proxyEndpoint"), "http://127.0.0.1:5000");
  auto identity = auth_.verify_basic(
      "Basic " + std::string(data.at("authorizationToken").as_string()), fixture_.clock.now());
  ASSERT_TRUE(identity.has_value()) << identity.error().message;
  EXPECT_EQ(identity->account_id, "123456789012");
  EXPECT_EQ(data.at("expiresAt").as_double(), epoch_seconds(fixture_.clock.now() + hours(12)));
}

}  // namespace
}  // namespace wharf::registry
