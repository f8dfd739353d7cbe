// environmentFiles: S3 ARNs, the .env syntax ECS reads, merging order and failure reasons.
#include "agent/task_env_files.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>

namespace wharf::agent {
namespace {

namespace bj = boost::json;

TEST(ParseS3ObjectArn, ReadsBucketAndKey) {
  auto parsed = parse_s3_object_arn("arn:aws:s3:::config/prod/web:v1.env");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, (S3Object{"config", "prod/web:v1.env"}));
  for (std::string bad : {"", "arn:aws:s3:::config", "arn:aws:s3:::config/", "arn:aws:s3:::/a.env",
                          "arn:aws:s3:us-east-1::config/a.env", "arn:aws:ssm:::config/a.env",
                          "s3://config/a.env", "arn::s3:::config/a.env"}) {
    auto refused = parse_s3_object_arn(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidParameter) << bad;
  }
}

TEST(ParseEnvFile, ReadsLinesAsEcsDoes) {
  std::string text =
      "# a comment\n"
      "\n"
      "PLAIN=value\n"
      "SPACED = padded  \r\n"
      "QUOTED=\"kept as is\"\n"
      "EQUALS=a=b=c\n"
      "EMPTY=\n"
      "no equals sign\n"
      "=nameless\n"
      "PLAIN=second\n"
      "   # not a comment=kept\n"
      "LAST=no newline";
  EnvironmentList expected = {
      {"PLAIN", "second"}, {"SPACED ", " padded  "},       {"QUOTED", "\"kept as is\""},
      {"EQUALS", "a=b=c"}, {"   # not a comment", "kept"}, {"LAST", "no newline"}};
  EXPECT_EQ(parse_env_file(text), expected);
  EXPECT_TRUE(parse_env_file("").empty());
}

struct FakeS3 {
  std::map<S3Object, std::string> objects;
  std::vector<S3Object> asked;

  S3ObjectFetcher fetcher() {
    return [this](const S3Object& object) -> Result<std::string> {
      asked.push_back(object);
      auto found = objects.find(object);
      if (found != objects.end()) return found->second;
      return fail(ErrorCode::kNotFound, "GetObject s3://" + object.bucket + "/" + object.key +
                                            ": HTTP 404 NoSuchKey: The specified key does not "
                                            "exist.");
    };
  }
};

bj::object file(const std::string& arn) {
  return bj::object{{"type", "s3"}, {"value", arn}};
}

TEST(FetchEnvironmentFiles, ReadsTopDownAndTheFirstFileWins) {
  FakeS3 s3;
  s3.objects[{"config", "base.env"}] = "A=base\nB=base\n";
  s3.objects[{"config", "prod.env"}] = "B=prod\nC=prod\n";
  bj::object container{{"environmentFiles", bj::array{file("arn:aws:s3:::config/base.env"),
                                                      file("arn:aws:s3:::config/prod.env")}}};
  auto merged = fetch_environment_files(container, {}, s3.fetcher());
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(*merged, (EnvironmentList{{"A", "base"}, {"B", "base"}, {"C", "prod"}}));

  auto none = fetch_environment_files(bj::object{}, {}, S3ObjectFetcher{});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(FetchEnvironmentFiles, AnOverrideReplacesTheDefinitionsFiles) {
  FakeS3 s3;
  s3.objects[{"config", "override.env"}] = "A=override\n";
  bj::object container{{"environmentFiles", bj::array{file("arn:aws:s3:::config/base.env")}}};
  bj::object overrides{{"environmentFiles", bj::array{file("arn:aws:s3:::config/override.env")}}};
  auto merged = fetch_environment_files(container, overrides, s3.fetcher());
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(*merged, (EnvironmentList{{"A", "override"}}));
  EXPECT_EQ(s3.asked, (std::vector<S3Object>{{"config", "override.env"}}));
}

TEST(FetchEnvironmentFiles, FailuresSayWhichFileInEcsWords) {
  FakeS3 s3;
  bj::object container{{"environmentFiles", bj::array{file("arn:aws:s3:::config/gone.env")}}};
  auto missing = fetch_environment_files(container, {}, s3.fetcher());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            "ResourceInitializationError: failed to download env files: s3://config/gone.env: "
            "GetObject s3://config/gone.env: HTTP 404 NoSuchKey: The specified key does not "
            "exist.");

  bj::object wrong_type{
      {"environmentFiles", bj::array{bj::object{{"type", "http"}, {"value", "x.env"}}}}};
  auto refused = fetch_environment_files(wrong_type, {}, s3.fetcher());
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().message.starts_with(std::string(kEnvFilesFailure) + ": "));
  EXPECT_NE(refused.error().message.find("only s3"), std::string::npos);

  auto no_client = fetch_environment_files(container, {}, S3ObjectFetcher{});
  ASSERT_FALSE(no_client);
  EXPECT_NE(no_client.error().message.find("no S3 client"), std::string::npos);
}

}  // namespace
}  // namespace wharf::agent
