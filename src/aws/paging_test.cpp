// Unit tests for nextToken issuing and redemption.
#include <gtest/gtest.h>

#include "aws/paging.hpp"

namespace wharf::aws {
namespace {

const TimePoint kNow = TimePoint(std::chrono::seconds(1'700'000'000));

TEST(PageTokens, RoundTripsTheLastKey) {
  PageTokens tokens("secret");
  std::string token = tokens.issue("ListClusters", "prod", kNow);
  auto key = tokens.redeem("ListClusters", token, kNow + std::chrono::minutes(1));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(*key, "prod");
}

TEST(PageTokens, RefusesForgedStaleAndForeignTokens) {
  PageTokens tokens("secret");
  std::string token = tokens.issue("ListClusters", "prod", kNow);
  struct Case {
    const char* name;
    std::string scope;
    std::string token;
    TimePoint now;
  };
  std::string flipped = token;
  flipped[3] = flipped[3] == 'A' ? 'B' : 'A';
  const Case cases[] = {
      {"garbage", "ListClusters", "not-a-token", kNow},
      {"empty", "ListClusters", "", kNow},
      {"tampered payload", "ListClusters", flipped, kNow},
      {"another listing", "ListTaskDefinitions", token, kNow},
      {"stale", "ListClusters", token, kNow + std::chrono::hours(25)},
      {"from the future", "ListClusters", token, kNow - std::chrono::hours(1)},
      {"signed by another server", "ListClusters",
       PageTokens("other").issue("ListClusters", "prod", kNow), kNow},
  };
  for (const auto& test_case : cases) {
    auto key = tokens.redeem(test_case.scope, test_case.token, test_case.now);
    ASSERT_FALSE(key.has_value()) << test_case.name;
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidParameter) << test_case.name;
  }
}

TEST(PageRequest, ReadsMaxResultsAndToken) {
  PageTokens tokens("secret");
  boost::json::object input{{"maxResults", 5}, {"nextToken", tokens.issue("scope", "k", kNow)}};
  auto page = read_page_request(tokens, kNow, input, "scope", 100, 100);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->max_results, 5);
  EXPECT_EQ(page->after, "k");

  auto defaults = read_page_request(tokens, kNow, {}, "scope", 10, 100);
  ASSERT_TRUE(defaults.has_value());
  EXPECT_EQ(defaults->max_results, 10);
  EXPECT_FALSE(defaults->after.has_value());

  for (int bad : {0, -1, 101}) {
    auto refused = read_page_request(tokens, kNow, {{"maxResults", bad}}, "scope", 100, 100);
    ASSERT_FALSE(refused.has_value()) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidParameter);
  }
}

}  // namespace
}  // namespace wharf::aws
