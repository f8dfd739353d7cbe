// Unit tests for GetRandomPassword's generator, with scripted random bytes.
#include "secrets/random_password.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "common/crypto.hpp"

namespace wharf::secrets {
namespace {

std::string real_bytes(std::size_t count) {
  return random_bytes(count);
}

bool has(const std::string& text, int (*is_class)(int)) {
  return std::any_of(text.begin(), text.end(),
                     [&](unsigned char character) { return is_class(character) != 0; });
}

TEST(RandomPassword, EveryIncludedClassAppearsAndExclusionsHold) {
  for (int round = 0; round < 200; ++round) {
    PasswordOptions options;
    options.length = 4;
    options.exclude_characters = "aeiouAEIOU01";
    auto password = random_password(options, real_bytes);
    ASSERT_TRUE(password) << password.error().message;
    ASSERT_EQ(password->size(), 4u);
    EXPECT_TRUE(has(*password, ::islower)) << *password;
    EXPECT_TRUE(has(*password, ::isupper)) << *password;
    EXPECT_TRUE(has(*password, ::isdigit)) << *password;
    EXPECT_TRUE(has(*password, ::ispunct)) << *password;
    EXPECT_EQ(password->find_first_of("aeiouAEIOU01"), std::string::npos) << *password;
  }
}

TEST(RandomPassword, SpaceOnlyWhenIncluded) {
  PasswordOptions options;
  options.length = 4096;  // a space is missing from one with probability (94/95)^4096 < 1e-18
  auto without_space = random_password(options, real_bytes);
  ASSERT_TRUE(without_space);
  EXPECT_EQ(without_space->find(' '), std::string::npos);
  options.include_space = true;
  auto with_space = random_password(options, real_bytes);
  ASSERT_TRUE(with_space);
  EXPECT_NE(with_space->find(' '), std::string::npos);
  // The space is allowed, not required: four characters still cover the four required types.
  options.length = 4;
  auto short_one = random_password(options, real_bytes);
  ASSERT_TRUE(short_one) << short_one.error().message;
  EXPECT_TRUE(has(*short_one, ::islower) && has(*short_one, ::isupper) &&
              has(*short_one, ::isdigit) && has(*short_one, ::ispunct))
      << *short_one;
}

TEST(RandomPassword, DrawsAreUnbiasedByRejection) {
  // Ten digits: bytes 65530..65535 (the top of the two-byte range) would favour 0..5, so they
  // are rejected and the next draw is used.
  std::string script = {'\xff', '\xff', '\x00', '\x07'};  // 65535 rejected, then 7 → '7'
  PasswordOptions options;
  options.length = 1;
  options.exclude_lowercase = options.exclude_uppercase = options.exclude_punctuation = true;
  options.require_each_included_type = false;
  auto password = random_password(options, [&](std::size_t count) {
    std::string out = script;
    out.resize(count, '\0');
    return out;
  });
  ASSERT_TRUE(password);
  EXPECT_EQ(*password, "7");
}

TEST(RandomPassword, LongPasswordsUseTheWholeAlphabet) {
  PasswordOptions options;
  options.length = 4096;
  auto password = random_password(options, real_bytes);
  ASSERT_TRUE(password);
  std::set<char> seen(password->begin(), password->end());
  EXPECT_EQ(seen.size(), 26u + 26 + 10 + 32);
}

TEST(RandomPassword, RefusesImpossibleOptions) {
  PasswordOptions too_long;
  too_long.length = 4097;
  EXPECT_FALSE(random_password(too_long, real_bytes));
  PasswordOptions too_short;
  too_short.length = 3;  // four classes required
  auto refused = random_password(too_short, real_bytes);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("too short"), std::string::npos);
  PasswordOptions nothing;
  nothing.exclude_numbers = nothing.exclude_punctuation = true;
  nothing.exclude_characters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  EXPECT_FALSE(random_password(nothing, real_bytes));
}

}  // namespace
}  // namespace wharf::secrets
