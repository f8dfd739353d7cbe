// Unit tests for crypto helpers, ARNs and clocks.
#include <gtest/gtest.h>

#include "common/arn.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/ids.hpp"

namespace wharf {
namespace {

TEST(Crypto, Sha256OfEmptyString) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, Base64RoundTrips) {
  for (std::string text : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(base64_decode(base64_encode(text)).value(), text);
    EXPECT_EQ(base64url_decode(base64url_encode(text)).value(), text);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm9v!").has_value());
}

TEST(Crypto, HmacMatchesRfc4231Case2) {
  EXPECT_EQ(to_hex(hmac_sha256_raw("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Ids, UuidHasVersion4Shape) {
  std::string id = new_uuid();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(new_uuid(), id);
  EXPECT_EQ(new_access_key_id().size(), 20u);
  EXPECT_EQ(new_secret_access_key().size(), 40u);
}

TEST(Arn, ParsesAndFormats) {
  auto arn = parse_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3");
  ASSERT_TRUE(arn.has_value());
  EXPECT_EQ(arn->service, "ecs");
  EXPECT_EQ(arn->region, "us-east-1");
  EXPECT_EQ(arn->account, "123456789012");
  EXPECT_EQ(arn->resource_type(), "task-definition");
  EXPECT_EQ(arn->resource_id(), "web:3");
  EXPECT_EQ(arn->str(), "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3");
  EXPECT_FALSE(parse_arn("arn:aws:ecs").has_value());
  EXPECT_FALSE(parse_arn("cluster/prod").has_value());
}

TEST(Clock, AmzDateRoundTrips) {
  TimePoint t;
  ASSERT_TRUE(parse_amz_date("20150830T123600Z", t));
  EXPECT_EQ(amz_date(t), "20150830T123600Z");
  EXPECT_FALSE(parse_amz_date("2015-08-30T12:36:00Z", t));
  ManualClock clock(t);
  clock.advance(std::chrono::minutes(5));
  EXPECT_EQ(amz_date(clock.now()), "20150830T124100Z");
}

TEST(Clock, HttpDateRoundTrips) {
  auto parsed = parse_http_date(" Sun, 30 Aug 2015 12:36:00 GMT ");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(http_date(*parsed), "Sun, 30 Aug 2015 12:36:00 GMT");
  TimePoint t;
  ASSERT_TRUE(parse_amz_date("20150830T123600Z", t));
  EXPECT_EQ(*parsed, t);
  EXPECT_FALSE(parse_http_date("2015-08-30T12:36:00Z").has_value());
}

TEST(Clock, Iso8601MillisTruncatesToTheMillisecond) {
  TimePoint t = from_epoch_seconds(1714566645.5) + std::chrono::microseconds(999);
  EXPECT_EQ(iso8601_millis(t), "2024-05-01T12:30:45.500Z");
  EXPECT_EQ(iso8601_millis(TimePoint{}), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace wharf
