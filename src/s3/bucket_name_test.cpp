// Bucket name rules, as a table.
#include "s3/bucket_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace wharf::s3 {
namespace {

struct NameCase {
  std::string name;
  bool valid;
  std::string complaint;  // part of the message when invalid
};

TEST(BucketName, FollowsS3Rules) {
  const NameCase cases[] = {
      {"abc", true, ""},
      {"my-bucket.2024", true, ""},
      {std::string(63, 'a'), true, ""},
      {"ab", false, "between 3 and 63"},
      {std::string(64, 'a'), false, "between 3 and 63"},
      {"My-Bucket", false, "lower-case letters"},
      {"my_bucket", false, "lower-case letters"},
      {"-bucket", false, "begin and end"},
      {"bucket.", false, "begin and end"},
      {"my..bucket", false, "two adjacent dots"},
      {"192.168.5.4", false, "IP address"},
      {"1.2.3.bucket", true, ""},
      {"xn--bucket", false, "reserved prefix 'xn--'"},
      {"sthree-bucket", false, "reserved prefix"},
      {"bucket-s3alias", false, "reserved suffix '-s3alias'"},
      {"bucket--ol-s3", false, "reserved suffix"},
  };
  for (const auto& test_case : cases) {
    auto status = check_bucket_name(test_case.name);
    EXPECT_EQ(status.has_value(), test_case.valid) << test_case.name;
    if (status || test_case.valid) continue;
    EXPECT_EQ(status.error().wire_type, "InvalidBucketName");
    EXPECT_NE(status.error().message.find(test_case.complaint), std::string::npos)
        << status.error().message;
  }
}

}  // namespace
}  // namespace wharf::s3
