// Part selection rules and the multipart ETag.
#include "s3/multipart.hpp"

#include <gtest/gtest.h>

namespace wharf::s3 {
namespace {

std::map<int, PartRecord> parts() {
  std::map<int, PartRecord> out;
  out[1] = PartRecord{1, kMinPartSize, "0cc175b9c0f1b6a831c399e269772661", {}, "f1"};  // md5("a")
  out[2] = PartRecord{2, 10, "92eb5ffee6ae2fec3ad71c777531578f", {}, "f2"};            // md5("b")
  out[3] = PartRecord{3, 10, "4a8a08f09d37b73795649038408b5f33", {}, "f3"};            // md5("c")
  return out;
}

TEST(Multipart, EtagIsTheMd5OfThePartMd5sAndTheCount) {
  auto uploaded = parts();
  // md5(md5("a") || md5("b")), as S3 computes it.
  auto selected = select_parts(
      {{1, "\"0cc175b9c0f1b6a831c399e269772661\""}, {2, "92eb5ffee6ae2fec3ad71c777531578f"}},
      uploaded);
  ASSERT_TRUE(selected.has_value()) << selected.error().message;
  EXPECT_EQ(multipart_etag(*selected), "96e024ba2074fe77e8e965ba43a704be-2");
}

TEST(Multipart, SelectionErrors) {
  auto uploaded = parts();
  struct Case {
    std::vector<RequestedPart> requested;
    std::string code;
  };
  const Case cases[] = {
      {{}, "MalformedXML"},
      {{{2, "92eb5ffee6ae2fec3ad71c777531578f"}, {1, "0cc175b9c0f1b6a831c399e269772661"}},
       "InvalidPartOrder"},
      {{{4, "x"}}, "InvalidPart"},
      {{{1, "ffff"}}, "InvalidPart"},
      {{{2, "92eb5ffee6ae2fec3ad71c777531578f"}, {3, "4a8a08f09d37b73795649038408b5f33"}},
       "EntityTooSmall"},
  };
  for (const auto& test_case : cases) {
    auto selected = select_parts(test_case.requested, uploaded);
    ASSERT_FALSE(selected.has_value()) << test_case.code;
    EXPECT_EQ(selected.error().wire_type, test_case.code);
  }
}

}  // namespace
}  // namespace wharf::s3
