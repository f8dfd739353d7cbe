// S3Client against a fake S3: the signed, path-style GET and how error documents read.
#include "agent/s3_client.hpp"

#include <gtest/gtest.h>

#include "agent/test_aws_service.hpp"

namespace wharf::agent {
namespace {

class S3ClientTest : public testkit::FakeAwsServiceTest {
 protected:
  S3Client client() const {
    S3ClientOptions options;
    options.endpoint = endpoint();
    options.credentials = {"AKIDEXAMPLE", "secret", "", "eu-west-1"};
    return S3Client(options, clock_);
  }

  SystemClock clock_;
};

TEST_F(S3ClientTest, GetsTheObjectByPathSignedForS3) {
  service_.answer(200, "A=1\nB=2\n", "binary/octet-stream");
  S3Client s3 = client();
  auto body = s3.get_object({"config", "prod/web app+1.env"});
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(*body, "A=1\nB=2\n");
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path, "/config/prod/web%20app%2B1.env");
  EXPECT_NE(requests[0].authorization.find("/eu-west-1/s3/aws4_request"), std::string::npos)
      << requests[0].authorization;
  EXPECT_NE(requests[0].authorization.find("x-amz-content-sha256"), std::string::npos);
}

// Nothing on the way may resolve "." or ".." in a key: what is signed is what arrives.
TEST_F(S3ClientTest, DotSegmentsOfAKeyAreEscaped) {
  service_.answer(200, "A=1\n", "binary/octet-stream");
  S3Client s3 = client();
  ASSERT_TRUE(s3.get_object({"config", "cfg/../app.env"}));
  ASSERT_TRUE(s3.get_object({"config", "./a..b/.env"}));
  auto requests = service_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].path, "/config/cfg/%2E%2E/app.env");
  EXPECT_EQ(requests[1].path, "/config/%2E/a..b/.env");
}

TEST_F(S3ClientTest, ErrorsCarryS3sCodeAndMessage) {
  service_.answer(404,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                  "<Message>The specified key does not exist.</Message><Key>a.env</Key></Error>",
                  "application/xml");
  S3Client s3 = client();
  auto missing = s3.get_object({"config", "a.env"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            "GetObject s3://config/a.env: HTTP 404 NoSuchKey: The specified key does not exist.");

  service_.answer(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                  "application/xml");
  auto denied = s3.get_object({"config", "a.env"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, ErrorCode::kAccessDenied);

  service_.answer(500, "", "application/xml");
  auto broken = s3.get_object({"config", "a.env"});
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kInternal);
  EXPECT_EQ(broken.error().message, "GetObject s3://config/a.env: HTTP 500");
}

}  // namespace
}  // namespace wharf::agent
