// WWW-Authenticate parsing: a table of real-world and malformed headers.
#include <gtest/gtest.h>

#include "oci/www_authenticate.hpp"

namespace wharf::oci {
namespace {

using Params = std::map<std::string, std::string>;

struct Case {
  std::string header;
  std::vector<Challenge> expected;
};

TEST(WwwAuthenticate, ParsesChallenges) {
  const Case cases[] = {
      {R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")",
       {{"bearer", Params{{"realm", "https://auth.docker.io/token"},
                          {"service", "registry.docker.io"},
                          {"scope", "repository:library/busybox:pull"}}}}},
      // A scope with a comma inside quotes, spaces around separators, upper-case names.
      {R"(BEARER Realm = "http://127.0.0.1:1/token" , Service="reg", scope="repository:a:pull,push")",
       {{"bearer", Params{{"realm", "http://127.0.0.1:1/token"},
                          {"service", "reg"},
                          {"scope", "repository:a:pull,push"}}}}},
      {R"(Basic realm="Registry Realm")", {{"basic", Params{{"realm", "Registry Realm"}}}}},
      {R"(Basic realm=registry)", {{"basic", Params{{"realm", "registry"}}}}},
      {"Basic", {{"basic", Params{}}}},
      // Escapes in quoted strings.
      {R"(Bearer realm="a\"b\\c")", {{"bearer", Params{{"realm", R"(a"b\c)"}}}}},
      // Several challenges in one header.
      {R"(Basic realm="x", Bearer realm="https://t/token",service="s")",
       {{"basic", Params{{"realm", "x"}}},
        {"bearer", Params{{"realm", "https://t/token"}, {"service", "s"}}}}},
      {R"(Basic, Bearer realm="r")", {{"basic", Params{}}, {"bearer", Params{{"realm", "r"}}}}},
      // An error parameter, as sent with insufficient_scope.
      {R"(Bearer realm="r",error="insufficient_scope",scope="repository:a:push")",
       {{"bearer",
         Params{{"realm", "r"}, {"error", "insufficient_scope"}, {"scope", "repository:a:push"}}}}},
  };
  for (const auto& test_case : cases) {
    auto parsed = parse_www_authenticate(test_case.header);
    ASSERT_TRUE(parsed.has_value()) << test_case.header << ": " << parsed.error().message;
    ASSERT_EQ(parsed->size(), test_case.expected.size()) << test_case.header;
    for (std::size_t challenge_idx = 0; challenge_idx < parsed->size(); ++challenge_idx) {
      EXPECT_EQ((*parsed)[challenge_idx].scheme, test_case.expected[challenge_idx].scheme)
          << test_case.header;
      EXPECT_EQ((*parsed)[challenge_idx].params, test_case.expected[challenge_idx].params)
          << test_case.header;
    }
  }
}

TEST(WwwAuthenticate, RefusesMalformed) {
  for (std::string_view header :
       {"", "   ", R"(Bearer realm="unterminated)", "Bearer realm=", R"(Bearer realm="a" junk)",
        "Bearer realm=\"a\" service=\"b\"", "=value", "Basic Bearer"}) {
    auto parsed = parse_www_authenticate(header);
    EXPECT_FALSE(parsed.has_value()) << header;
  }
}

TEST(WwwAuthenticate, LooksUpParameters) {
  auto parsed = parse_www_authenticate(R"(Bearer realm="r",service="s")");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ((*parsed)[0].param("service"), "s");
  EXPECT_EQ((*parsed)[0].param("scope"), std::nullopt);
}

}  // namespace
}  // namespace wharf::oci
