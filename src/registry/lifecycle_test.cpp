// Unit tests for lifecycle policy validation and evaluation, with the examples of the ECR user
// guide ("Examples of lifecycle policies in Amazon ECR").
#include "registry/lifecycle.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>

namespace wharf::registry {
namespace {

using std::chrono::days;
using std::chrono::hours;

const TimePoint kNow = from_epoch_seconds(1'700'000'000);

std::string rule(int priority, std::string selection, std::string action = R"({"type":"expire"})") {
  return R"({"rulePriority":)" + std::to_string(priority) + R"(,"selection":)" + selection +
         R"(,"action":)" + action + "}";
}

std::string policy(std::initializer_list<std::string> rules) {
  std::string text = R"({"rules":[)";
  bool first = true;
  for (const auto& each : rules) {
    if (!first) text += ",";
    text += each;
    first = false;
  }
  return text + "]}";
}

TEST(LifecyclePolicyValidation, AcceptsAndRefusesLikeEcr) {
  struct Case {
    const char* name;
    std::string text;
    const char* error;  // nullptr when valid; else a piece of the message
  };
  const std::string untagged_age =
      R"({"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14})";
  const std::string prod_count =
      R"({"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1})";
  const std::string any_count =
      R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})";
  const Case cases[] = {
      {"untagged by age", policy({rule(1, untagged_age)}), nullptr},
      {"tagged by prefix", policy({rule(1, prod_count)}), nullptr},
      {"patterns with four wildcards",
       policy({rule(1, R"({"tagStatus":"tagged","tagPatternList":["*a*b*c*"],)"
                       R"("countType":"imageCountMoreThan","countNumber":3})")}),
       nullptr},
      {"priorities need not be sequential",
       policy({rule(10, prod_count), rule(20, untagged_age), rule(99, any_count)}), nullptr},
      {"rules in any order", policy({rule(99, any_count), rule(1, prod_count)}), nullptr},
      {"description and standard storage class",
       policy({R"({"rulePriority":1,"description":"keep","selection":{"tagStatus":"any",)"
               R"("storageClass":"standard","countType":"imageCountMoreThan","countNumber":5},)"
               R"("action":{"type":"expire"}})"}),
       nullptr},
      {"not JSON", "{rules", "not valid JSON"},
      {"no rules", R"({"rules":[]})", "at least one rule"},
      {"rules missing", R"({"other":1})", "unknown property \"other\""},
      {"unknown rule member",
       policy({R"({"rulePriority":1,"selection":)" + prod_count +
               R"(,"action":{"type":"expire"},"x":1})"}),
       "unknown property \"x\""},
      {"priority zero", policy({rule(0, prod_count)}), "from 1 to"},
      {"priority not integer",
       policy({R"({"rulePriority":"1","selection":)" + prod_count +
               R"(,"action":{"type":"expire"}})"}),
       "must be an integer"},
      {"priority missing",
       policy({R"({"selection":)" + prod_count + R"(,"action":{"type":"expire"}})"}),
       "missing required property \"rulePriority\""},
      {"duplicate priority", policy({rule(1, prod_count), rule(1, untagged_age)}),
       "unique priority"},
      {"tagged without filters",
       policy(
           {rule(1, R"({"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1})")}),
       "exactly one of"},
      {"tagged with both filters",
       policy({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b*"],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})")}),
       "exactly one of"},
      {"untagged with prefixes",
       policy({rule(1, R"({"tagStatus":"untagged","tagPrefixList":["a"],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})")}),
       "must not specify"},
      {"empty prefix list",
       policy({rule(1, R"({"tagStatus":"tagged","tagPrefixList":[],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})")}),
       "must not be empty"},
      {"five wildcards",
       policy({rule(1, R"({"tagStatus":"tagged","tagPatternList":["*a*b*c*d*"],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})")}),
       "more than 4 wildcards"},
      {"bad tag status",
       policy(
           {rule(1, R"({"tagStatus":"some","countType":"imageCountMoreThan","countNumber":1})")}),
       "tagged, untagged, any"},
      {"count unit with image count",
       policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days",)"
                       R"("countNumber":1})")}),
       "must not be specified"},
      {"age without unit",
       policy({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countNumber":1})")}),
       "must be \"days\""},
      {"age in hours",
       policy({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours",)"
                       R"("countNumber":1})")}),
       "must be \"days\""},
      {"count zero",
       policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0})")}),
       "from 1 to"},
      {"count missing",
       policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan"})")}),
       "\"countNumber\""},
      {"unknown count type",
       policy({rule(1, R"({"tagStatus":"any","countType":"whenever","countNumber":1})")}),
       "imageCountMoreThan or sinceImagePushed"},
      {"transition action", policy({rule(1, any_count, R"({"type":"transition"})")}),
       "must be \"expire\""},
      {"no action", policy({R"({"rulePriority":1,"selection":)" + any_count + "}"}), "\"action\""},
      {"any not last", policy({rule(1, any_count), rule(2, prod_count)}), "highest rulePriority"},
      {"two untagged rules",
       policy({rule(1, untagged_age),
               rule(2, R"({"tagStatus":"untagged","countType":"imageCountMoreThan",)"
                       R"("countNumber":3})")}),
       "only one rule"},
      {"same prefixes twice",
       policy({rule(1, prod_count),
               rule(2, R"({"tagStatus":"tagged","tagPrefixList":["prod"],)"
                       R"("countType":"sinceImagePushed","countUnit":"days","countNumber":3})")}),
       "unique set of tag prefixes"},
  };
  for (const auto& test_case : cases) {
    auto parsed = parse_lifecycle_policy(test_case.text);
    if (test_case.error == nullptr) {
      EXPECT_TRUE(parsed.has_value())
          << test_case.name << ": " << (parsed ? "" : parsed.error().message);
      continue;
    }
    ASSERT_FALSE(parsed.has_value()) << test_case.name;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidParameter) << test_case.name;
    EXPECT_NE(parsed.error().message.find(test_case.error), std::string::npos)
        << test_case.name << ": " << parsed.error().message;
    EXPECT_NE(parsed.error().message.find("Lifecycle policy validation failure"), std::string::npos)
        << test_case.name;
  }
}

TEST(LifecyclePolicyValidation, SortsRulesByPriority) {
  auto parsed = parse_lifecycle_policy(
      policy({rule(30, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":9})"),
              rule(2, R"({"tagStatus":"tagged","tagPatternList":["v*"],)"
                      R"("countType":"imageCountMoreThan","countNumber":3})")}));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  ASSERT_EQ(parsed->rules.size(), 2u);
  EXPECT_EQ(parsed->rules[0].priority, 2);
  EXPECT_EQ(parsed->rules[0].tag_patterns, std::vector<std::string>{"v*"});
  EXPECT_EQ(parsed->rules[1].priority, 30);
  EXPECT_EQ(parsed->rules[1].count_number, 9);
}

TEST(LifecyclePattern, Wildcards) {
  struct Case {
    const char* pattern;
    const char* tag;
    bool matches;
  };
  const Case cases[] = {
      {"prod", "prod", true},      {"prod", "prod1", false},   {"prod*", "prod1", true},
      {"prod*", "prod", true},     {"*prod", "preprod", true}, {"*prod", "prod-x", false},
      {"*", "anything", true},     {"a*b*c", "aXXbYYc", true}, {"a*b*c", "aXXbYY", false},
      {"*test*", "mytest1", true}, {"*test*", "tset", false},  {"a**b", "ab", true},
      {"a*a*a", "aaaa", true},     {"v*.*.*", "v1.2.3", true}, {"v*.*.*", "v1.2", false},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(lifecycle_pattern_matches(test_case.pattern, test_case.tag), test_case.matches)
        << test_case.pattern << " vs " << test_case.tag;
  }
}

// One evaluation scenario: images (name, tags, days since push), a policy, and which images
// expire by which rule.
struct Scenario {
  const char* name;
  std::vector<std::tuple<std::string, std::vector<std::string>, int>> images;
  std::string policy;
  std::map<std::string, int64_t> expired;  // image name → rule priority
};

void run(const Scenario& scenario) {
  std::vector<LifecycleImage> images;
  for (const auto& [name, tags, age_days] : scenario.images) {
    images.push_back({name, tags, kNow - days(age_days) - hours(1)});
  }
  auto parsed = parse_lifecycle_policy(scenario.policy);
  ASSERT_TRUE(parsed.has_value()) << scenario.name << ": " << parsed.error().message;
  auto expired = evaluate_lifecycle_policy(*parsed, images, kNow);
  std::map<std::string, int64_t> got;
  TimePoint previous = TimePoint::min();
  for (const auto& expiration : expired) {
    got[expiration.image.digest] = expiration.rule_priority;
    EXPECT_GE(expiration.image.pushed_at, previous) << scenario.name << ": oldest first";
    previous = expiration.image.pushed_at;
  }
  EXPECT_EQ(got, scenario.expired) << scenario.name;
}

TEST(LifecycleEvaluation, EcrUserGuideExamples) {
  const std::string prod_keep_1 =
      R"({"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1})";
  const std::string beta_keep_1 =
      R"({"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1})";
  const Scenario scenarios[] = {
      // "Filtering on image age": untagged images older than 14 days.
      {"untagged older than 14 days",
       {{"A", {}, 20}, {"B", {}, 15}, {"C", {}, 14}, {"D", {"v1"}, 30}, {"E", {}, 1}},
       policy({rule(1, R"({"tagStatus":"untagged","countType":"sinceImagePushed",)"
                       R"("countUnit":"days","countNumber":14})")}),
       {{"A", 1}, {"B", 1}, {"C", 1}}},
      // "Filtering on image count": keep one untagged image.
      {"keep one untagged",
       {{"A", {}, 3}, {"B", {}, 2}, {"C", {}, 1}, {"D", {"latest"}, 5}},
       policy({rule(1, R"({"tagStatus":"untagged","countType":"imageCountMoreThan",)"
                       R"("countNumber":1})")}),
       {{"A", 1}, {"B", 1}}},
      // "Filtering on multiple rules", example A: B is spared because rule 1 selected it.
      {"multiple rules A",
       {{"A", {"beta-1", "prod-1"}, 10}, {"B", {"beta-2", "prod-2"}, 9}, {"C", {"beta-3"}, 8}},
       policy({rule(1, prod_keep_1), rule(2, beta_keep_1)}),
       {{"A", 1}}},
      // Example B: rule 2 would expire A, B and C; C was selected by rule 1, so it stays.
      {"multiple rules B",
       {{"A", {"beta-1", "prod-1"}, 10},
        {"B", {"beta-2", "prod-2"}, 9},
        {"C", {"beta-3", "prod-3"}, 8},
        {"D", {"beta-4"}, 7}},
       policy({rule(1, prod_keep_1), rule(2, beta_keep_1)}),
       {{"A", 1}, {"B", 1}}},
      // "Filtering on multiple tags in a single rule": only images with both an alpha and a
      // beta tag are selected.
      {"all prefixes in one rule",
       {{"A", {"alpha-1"}, 12},
        {"B", {"beta-1"}, 11},
        {"C", {"alpha-2", "beta-2"}, 10},
        {"D", {"alpha-3"}, 4},
        {"E", {"alpha-4", "beta-3"}, 3}},
       policy({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["alpha","beta"],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})")}),
       {{"C", 1}}},
      {"all patterns in one rule",
       {{"A", {"alpha-1", "beta-1"}, 12}, {"B", {"alpha-2"}, 11}, {"C", {"alpha-3", "beta-3"}, 10}},
       policy({rule(1, R"({"tagStatus":"tagged","tagPatternList":["alpha*","*-1"],)"
                       R"("countType":"sinceImagePushed","countUnit":"days","countNumber":5})")}),
       {{"A", 1}}},
      // "Filtering on all images": keep the newest image of any kind.
      {"any keeps one",
       {{"A", {"alpha-1"}, 4}, {"B", {}, 3}, {"C", {"alpha-2"}, 2}, {"D", {"git-hash"}, 1}},
       policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}),
       {{"A", 1}, {"B", 1}, {"C", 1}}},
      // Example B there: rule 1 keeps one alpha image, rule 2 one image of any kind; C was
      // selected by rule 1, so rule 2 cannot expire it.
      {"tagged then any",
       {{"A", {"alpha-1"}, 4}, {"B", {}, 3}, {"C", {"alpha-2"}, 2}, {"D", {"git-hash"}, 1}},
       policy({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["alpha"],)"
                       R"("countType":"imageCountMoreThan","countNumber":1})"),
               rule(2, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}),
       {{"A", 1}, {"B", 2}}},
      {"untagged rule ignores tagged images",
       {{"A", {"v1"}, 100}, {"B", {}, 100}},
       policy({rule(1, R"({"tagStatus":"untagged","countType":"sinceImagePushed",)"
                       R"("countUnit":"days","countNumber":1})")}),
       {{"B", 1}}},
      {"nothing to expire",
       {{"A", {"v1"}, 1}, {"B", {"v2"}, 0}},
       policy({rule(1, R"({"tagStatus":"tagged","tagPatternList":["v*"],)"
                       R"("countType":"imageCountMoreThan","countNumber":5})")}),
       {}},
      {"empty repository",
       {},
       policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}),
       {}},
  };
  for (const auto& scenario : scenarios) run(scenario);
}

TEST(LifecycleEvaluation, AgeIsStrictlyMoreThanTheDays) {
  auto parsed = parse_lifecycle_policy(
      policy({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days",)"
                      R"("countNumber":2})")}));
  ASSERT_TRUE(parsed.has_value());
  std::vector<LifecycleImage> images{{"exactly", {}, kNow - days(2)},
                                     {"older", {}, kNow - days(2) - std::chrono::seconds(1)}};
  auto expired = evaluate_lifecycle_policy(*parsed, images, kNow);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].image.digest, "older");
}

TEST(LifecycleEvaluation, TiesInPushTimeAreBrokenByDigest) {
  auto parsed = parse_lifecycle_policy(
      policy({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}));
  ASSERT_TRUE(parsed.has_value());
  std::vector<LifecycleImage> images{{"sha256:b", {}, kNow}, {"sha256:a", {}, kNow}};
  auto expired = evaluate_lifecycle_policy(*parsed, images, kNow);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].image.digest, "sha256:b");
}

}  // namespace
}  // namespace wharf::registry
