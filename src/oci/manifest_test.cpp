// Tests for manifest parsing: the four kinds, media-type resolution, schema 1 and bad shapes.
#include "oci/manifest.hpp"

#include <gtest/gtest.h>

namespace wharf::oci {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

std::string image_manifest(std::string_view media_type_member, std::string extra = "") {
  std::string media_type = media_type_member.empty()
                               ? ""
                               : R"("mediaType":")" + std::string(media_type_member) + R"(",)";
  return R"({"schemaVersion":2,)" + media_type +
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         kDigestA +
         R"(","size":7},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         kDigestB + R"(","size":100}])" + extra + "}";
}

TEST(ManifestTest, ParsesAnOciImageManifest) {
  auto manifest = parse_manifest(image_manifest(kOciManifest), "");
  ASSERT_TRUE(manifest) << manifest.error().message;
  EXPECT_EQ(manifest->kind, ManifestKind::kImage);
  EXPECT_EQ(manifest->media_type, kOciManifest);
  ASSERT_TRUE(manifest->config);
  EXPECT_EQ(manifest->config->digest.str(), kDigestA);
  ASSERT_EQ(manifest->layers.size(), 1u);
  EXPECT_EQ(manifest->blob_bytes(), 107);
  EXPECT_EQ(manifest->blobs().size(), 2u);
  EXPECT_EQ(manifest->effective_artifact_type(), kOciImageConfig);
}

TEST(ManifestTest, TakesTheTypeFromContentTypeWhenTheBodyHasNone) {
  auto manifest = parse_manifest(image_manifest(""), std::string(kOciManifest) + "; charset=utf-8");
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->media_type, kOciManifest);
  auto guessed = parse_manifest(image_manifest(""), "application/octet-stream");
  ASSERT_TRUE(guessed);
  EXPECT_EQ(guessed->media_type, kOciManifest);
}

TEST(ManifestTest, RefusesABodyTypeThatContradictsTheContentType) {
  auto manifest = parse_manifest(image_manifest(kOciManifest), kDockerManifest);
  ASSERT_FALSE(manifest);
  EXPECT_EQ(manifest.error().code, ErrorCode::kInvalidParameter);
}

TEST(ManifestTest, ParsesDockerSchema2AndIndexes) {
  auto docker = parse_manifest(image_manifest(kDockerManifest), kDockerManifest);
  ASSERT_TRUE(docker);
  EXPECT_EQ(docker->kind, ManifestKind::kImage);

  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" +
                      kDigestC +
                      R"(","size":500,"platform":{"architecture":"amd64","os":"linux"}}],)"
                      R"("annotations":{"org.example":"yes"}})";
  auto parsed = parse_manifest(index, "");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->is_index());
  ASSERT_EQ(parsed->manifests.size(), 1u);
  ASSERT_TRUE(parsed->manifests[0].platform);
  EXPECT_EQ(parsed->manifests[0].platform->architecture, "amd64");
  EXPECT_EQ(parsed->annotations.at("org.example"), "yes");
  EXPECT_TRUE(parsed->blobs().empty());

  std::string list =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]})";
  auto docker_list = parse_manifest(list, kDockerManifestList);
  ASSERT_TRUE(docker_list);
  EXPECT_TRUE(docker_list->is_index());
}

TEST(ManifestTest, ReadsSubjectAndArtifactType) {
  std::string extra =
      R"(,"artifactType":"application/vnd.example.sbom","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kDigestC + R"(","size":3})";
  auto manifest = parse_manifest(image_manifest(kOciManifest, extra), "");
  ASSERT_TRUE(manifest);
  ASSERT_TRUE(manifest->subject);
  EXPECT_EQ(manifest->subject->digest.str(), kDigestC);
  EXPECT_EQ(manifest->effective_artifact_type(), "application/vnd.example.sbom");
}

TEST(ManifestTest, RefusesSchema1AsUnsupported) {
  auto by_type = parse_manifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})",
                                kDockerSchema1SignedManifest);
  ASSERT_FALSE(by_type);
  EXPECT_EQ(by_type.error().code, ErrorCode::kUnsupportedImageType);
  auto by_version = parse_manifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "");
  ASSERT_FALSE(by_version);
  EXPECT_EQ(by_version.error().code, ErrorCode::kUnsupportedImageType);
  auto unknown = parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.example"})", "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnsupportedImageType);
}

TEST(ManifestTest, RefusesMalformedManifests) {
  struct Case {
    const char* what;
    std::string body;
  };
  std::vector<Case> cases = {
      {"not json", "{"},
      {"not an object", "[]"},
      {"schemaVersion 3", R"({"schemaVersion":3,"config":{}})"},
      {"no config",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})"},
      {"bad digest",
       R"({"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:xyz","size":1},"layers":[]})"},
      {"negative size", R"({"schemaVersion":2,"config":{"mediaType":"a","digest":")" + kDigestA +
                            R"(","size":-1},"layers":[]})"},
      {"layers not array", R"({"schemaVersion":2,"config":{"mediaType":"a","digest":")" + kDigestA +
                               R"(","size":1},"layers":{}})"},
      {"annotation not string", image_manifest(kOciManifest, R"(,"annotations":{"a":1})")},
      {"index without manifests",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})"},
      {"unknown shape", R"({"schemaVersion":2})"},
  };
  for (const Case& bad : cases) {
    auto manifest = parse_manifest(bad.body, "");
    ASSERT_FALSE(manifest) << bad.what;
    EXPECT_EQ(manifest.error().code, ErrorCode::kInvalidParameter) << bad.what;
  }
}

}  // namespace
}  // namespace wharf::oci
