// Tests for registry tokens (issue, verify, forge, expire) and the anonymous-pull policy check.
#include "registry/auth.hpp"

#include <gtest/gtest.h>

#include "common/crypto.hpp"
#include "registry/registry_testing.hpp"

namespace wharf::registry {
namespace {

const TimePoint kNow = test_support::test_epoch();

std::string basic(std::string_view user_password) {
  return "Basic " + base64_encode(user_password);
}

std::string password_of(const AuthorizationToken& token) {
  return base64_decode(token.token)->substr(4);
}

TEST(RegistryAuthTest, AuthorizationTokensRoundTrip) {
  RegistryAuth auth("secret", "us-east-1");
  auto token = auth.issue_authorization_token("123456789012", "eu-west-1", "AKIAEXAMPLE", kNow);
  EXPECT_EQ(token.expires_at, kNow + std::chrono::hours(12));
  ASSERT_TRUE(base64_decode(token.token)->starts_with("AWS:"));

  auto identity = auth.verify_basic("Basic " + token.token, kNow);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_FALSE(identity->anonymous);
  EXPECT_EQ(identity->account_id, "123456789012");
  EXPECT_EQ(identity->region, "eu-west-1");
  EXPECT_EQ(identity->access_key_id, "AKIAEXAMPLE");
  EXPECT_TRUE(auth.authenticate("basic " + token.token, kNow));
}

TEST(RegistryAuthTest, RefusesExpiredForgedAndMalformedCredentials) {
  RegistryAuth auth("secret", "us-east-1");
  auto token = auth.issue_authorization_token("123456789012", "us-east-1", "AKIA", kNow);
  std::string password = password_of(token);

  auto expired = auth.verify_basic("Basic " + token.token, kNow + std::chrono::hours(13));
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::kInvalidSignature);

  RegistryAuth other("another secret", "us-east-1");
  EXPECT_EQ(other.verify_basic("Basic " + token.token, kNow).error().code,
            ErrorCode::kUnrecognizedClient);

  // Changing the claims (another account) breaks the signature.
  std::string claims = *base64url_decode(password.substr(0, password.find('.')));
  claims.replace(claims.find("123456789012"), 12, "999999999999");
  std::string forged = base64url_encode(claims) + password.substr(password.find('.'));
  EXPECT_EQ(auth.verify_basic(basic("AWS:" + forged), kNow).error().code,
            ErrorCode::kUnrecognizedClient);

  for (const std::string& bad : std::vector<std::string>{
           basic("admin:" + password), basic("AWS:"), basic("AWS:nodot"), std::string("Basic !!!"),
           std::string("Digest abc"), basic("AWS")}) {
    EXPECT_FALSE(auth.verify_basic(bad, kNow)) << bad;
  }
  // A password is not a bearer token, nor the other way round.
  EXPECT_FALSE(auth.verify_bearer("Bearer " + password, kNow));
  BearerToken bearer = auth.issue_bearer(*auth.verify_basic("Basic " + token.token, kNow), kNow);
  EXPECT_FALSE(auth.verify_basic(basic("AWS:" + bearer.token), kNow));
}

TEST(RegistryAuthTest, AuthenticateRemembersOnlyWhatVerifiedAndOnlyUntilItExpires) {
  RegistryAuth auth("secret", "us-east-1");
  auto token = auth.issue_authorization_token("123456789012", "eu-west-1", "AKIA", kNow);
  std::string value = "Basic " + token.token;
  for (int i = 0; i < 3; ++i) {  // verified, then remembered: the same answer
    auto identity = auth.authenticate(value, kNow + std::chrono::hours(i));
    ASSERT_TRUE(identity) << identity.error().message;
    EXPECT_EQ(identity->account_id, "123456789012");
    EXPECT_EQ(identity->region, "eu-west-1");
  }
  auto expired = auth.authenticate(value, kNow + std::chrono::hours(13));
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::kInvalidSignature);

  // A forged value is refused every time, however often it comes.
  std::string forged = basic("AWS:" + password_of(token) + "x");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(auth.authenticate(forged, kNow).error().code, ErrorCode::kUnrecognizedClient);
  }
  // Another server's secret does not share what this one remembered.
  RegistryAuth other("another secret", "us-east-1");
  EXPECT_FALSE(other.authenticate(value, kNow));
}

TEST(RegistryAuthTest, BearerTokensCarryTheIdentity) {
  RegistryAuth auth("secret", "us-east-1");
  auto token = auth.issue_authorization_token("123456789012", "us-west-2", "AKIA", kNow);
  auto identity = auth.verify_basic("Basic " + token.token, kNow);
  BearerToken bearer = auth.issue_bearer(*identity, kNow + std::chrono::hours(2));
  EXPECT_EQ(bearer.expires_in, std::chrono::hours(10)) << "no longer than the password";
  auto verified = auth.authenticate("Bearer " + bearer.token, kNow + std::chrono::hours(3));
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->account_id, "123456789012");
  EXPECT_EQ(verified->region, "us-west-2");
  EXPECT_FALSE(auth.authenticate("Bearer " + bearer.token, kNow + std::chrono::hours(12)));

  BearerToken anonymous = auth.issue_bearer(auth.anonymous(kNow), kNow);
  EXPECT_EQ(anonymous.expires_in, std::chrono::hours(1));
  auto anonymous_identity = auth.verify_bearer("Bearer " + anonymous.token, kNow);
  ASSERT_TRUE(anonymous_identity);
  EXPECT_TRUE(anonymous_identity->anonymous);
  EXPECT_EQ(anonymous_identity->region, "us-east-1");
  EXPECT_TRUE(auth.authenticate("", kNow)->anonymous);
}

TEST(RegistryAuthTest, SecretIsCreatedOnceAndKept) {
  test_support::TempDir dir;
  auto first = load_or_create_secret(dir.path().string());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 64u);
  EXPECT_EQ(*load_or_create_secret(dir.path().string()), *first);
  auto permissions = std::filesystem::status(dir.path() / "registry.key").permissions();
  EXPECT_EQ(permissions & std::filesystem::perms::group_all, std::filesystem::perms::none);
}

TEST(PolicyTest, AnonymousPullNeedsAnAllowForEveryone) {
  struct Case {
    const char* what;
    std::string policy;
    bool allows;
  };
  auto statement = [](std::string body) {
    return R"({"Version":"2012-10-17","Statement":[)" + body + "]}";
  };
  std::vector<Case> cases = {
      {"pull actions",
       statement(
           R"({"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]})"),
       true},
      {"ecr wildcard", statement(R"({"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*"})"),
       true},
      {"lower case action",
       statement(R"({"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"ecr:batchgetimage"})"),
       true},
      {"statement object",
       R"({"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGet*"}})", true},
      {"push only", statement(R"({"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"})"),
       false},
      {"one account",
       statement(
           R"({"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"ecr:*"})"),
       false},
      {"condition",
       statement(
           R"({"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{}}})"),
       false},
      {"deny wins",
       statement(
           R"({"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"})"),
       false},
      {"empty", statement(""), false},
      {"not json", "{", false},
      {"no statement", "{}", false},
  };
  for (const Case& test : cases) {
    EXPECT_EQ(policy_allows_anonymous_pull(test.policy), test.allows) << test.what;
  }
}

}  // namespace
}  // namespace wharf::registry
