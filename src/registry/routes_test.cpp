// Tests for /v2/ path parsing and the Range / Content-Range headers.
#include "registry/routes.hpp"

#include <gtest/gtest.h>

namespace wharf::registry {
namespace {

TEST(RouteTest, ReadsEndpointsFromTheEnd) {
  struct Case {
    std::string path;
    Endpoint endpoint;
    std::string name;
    std::string reference;
  };
  std::vector<Case> cases = {
      {"/v2/", Endpoint::kBase, "", ""},
      {"/v2/token", Endpoint::kToken, "", ""},
      {"/v2/_catalog", Endpoint::kCatalog, "", ""},
      {"/v2/app/manifests/latest", Endpoint::kManifest, "app", "latest"},
      {"/v2/team/app/manifests/sha256:abc", Endpoint::kManifest, "team/app", "sha256:abc"},
      {"/v2/team/app/manifests/sha256%3Aabc", Endpoint::kManifest, "team/app", "sha256:abc"},
      {"/v2/a/b/c/blobs/sha256:abc", Endpoint::kBlob, "a/b/c", "sha256:abc"},
      {"/v2/app/blobs/uploads/", Endpoint::kUploadStart, "app", ""},
      {"/v2/app/blobs/uploads", Endpoint::kUploadStart, "app", ""},
      {"/v2/app/blobs/uploads/1234-abcd", Endpoint::kUpload, "app", "1234-abcd"},
      {"/v2/x/blobs/blobs/uploads/", Endpoint::kUploadStart, "x/blobs", ""},
      {"/v2/manifests/manifests/v1", Endpoint::kManifest, "manifests", "v1"},
      {"/v2/app/tags/list", Endpoint::kTags, "app", "list"},
      {"/v2/app/referrers/sha256:abc", Endpoint::kReferrers, "app", "sha256:abc"},
      {"/v2/%2e%2e/manifests/v1", Endpoint::kManifest, "%2e%2e", "v1"},
      {"/v2/app", Endpoint::kUnknown, "", ""},
      {"/v2/app/manifests/", Endpoint::kUnknown, "", ""},
      {"/v2//manifests/v1", Endpoint::kUnknown, "", ""},
      {"/v2/app/other/v1", Endpoint::kUnknown, "", ""},
      {"/v2/app/manifests/%zz", Endpoint::kUnknown, "", ""},
      {"/v3/app/manifests/v1", Endpoint::kUnknown, "", ""},
  };
  for (const Case& test : cases) {
    Route route = parse_route(test.path);
    EXPECT_EQ(route.endpoint, test.endpoint) << test.path;
    EXPECT_EQ(route.name, test.name) << test.path;
    if (test.endpoint != Endpoint::kUnknown && test.endpoint != Endpoint::kTags) {
      EXPECT_EQ(route.reference, test.reference) << test.path;
    }
  }
}

TEST(RangeTest, ParsesSingleByteRanges) {
  struct Case {
    std::string header;
    std::optional<ByteRange> range;
  };
  std::vector<Case> cases = {
      {"", std::nullopt},
      {"bytes=0-99", ByteRange{0, 99}},
      {"bytes=100-", ByteRange{100, 999}},
      {"bytes=900-5000", ByteRange{900, 999}},
      {"bytes=-50", ByteRange{950, 999}},
      {"bytes=-5000", ByteRange{0, 999}},
      {"bytes=0-0", ByteRange{0, 0}},
      {"bytes=0-1,5-6", std::nullopt},  // several ranges: the whole blob
      {"bytes=5-1", std::nullopt},
      {"bytes=abc", std::nullopt},
      {"items=0-1", std::nullopt},
  };
  for (const Case& test : cases) {
    auto range = parse_range(test.header, 1000);
    ASSERT_TRUE(range) << test.header;
    EXPECT_EQ(*range, test.range) << test.header;
  }
  EXPECT_FALSE(parse_range("bytes=1000-", 1000));
  EXPECT_FALSE(parse_range("bytes=-0", 1000));
  EXPECT_FALSE(parse_range("bytes=0-", 0));
}

TEST(ContentRangeTest, AcceptsTheSpecFormAndCommonVariants) {
  EXPECT_EQ(*parse_content_range("0-99"), (ByteRange{0, 99}));
  EXPECT_EQ(*parse_content_range("bytes 100-199/*"), (ByteRange{100, 199}));
  EXPECT_EQ(*parse_content_range("bytes=5-5"), (ByteRange{5, 5}));
  EXPECT_EQ(parse_content_range("0-99")->length(), 100u);
  for (std::string bad : std::vector<std::string>{"", "5", "-5", "9-1", "a-b", "bytes */100"}) {
    EXPECT_FALSE(parse_content_range(bad)) << bad;
  }
}

}  // namespace
}  // namespace wharf::registry
