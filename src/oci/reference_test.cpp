// Reference parsing: a table of accepted and refused references.
#include <gtest/gtest.h>

#include "oci/reference.hpp"

namespace wharf::oci {
namespace {

constexpr std::string_view kHex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Parsed {
  std::string text;
  std::string registry;
  std::string repository;
  std::string tag;
  bool has_digest = false;
};

TEST(Reference, ParsesAndNormalises) {
  std::string digest = "sha256:" + std::string(kHex);
  const Parsed cases[] = {
      {"busybox", "registry-1.docker.io", "library/busybox", "latest"},
      {"busybox:1.36", "registry-1.docker.io", "library/busybox", "1.36"},
      {"docker.io/busybox", "registry-1.docker.io", "library/busybox", "latest"},
      {"index.docker.io/library/busybox:musl", "registry-1.docker.io", "library/busybox", "musl"},
      {"bitnami/redis:7", "registry-1.docker.io", "bitnami/redis", "7"},
      {"127.0.0.1:5000/web:latest", "127.0.0.1:5000", "web", "latest"},
      {"127.0.0.1:5000/team/web", "127.0.0.1:5000", "team/web", "latest"},
      {"localhost/web:v1.2_3-rc", "localhost", "web", "v1.2_3-rc"},
      {"localhost:8910/a/b/c", "localhost:8910", "a/b/c", "latest"},
      {"ghcr.io/owner/app.name_x__y--z", "ghcr.io", "owner/app.name_x__y--z", "latest"},
      {"Registry/web", "Registry", "web", "latest"},
      {"[::1]:5000/web:1", "[::1]:5000", "web", "1"},
      {"host.example/web@" + digest, "host.example", "web", "", true},
      {"host.example:443/web:v2@" + digest, "host.example:443", "web", "v2", true},
      {"busybox@" + digest, "registry-1.docker.io", "library/busybox", "", true},
  };
  for (const auto& expected : cases) {
    auto reference = parse_reference(expected.text);
    ASSERT_TRUE(reference.has_value()) << expected.text << ": " << reference.error().message;
    EXPECT_EQ(reference->registry, expected.registry) << expected.text;
    EXPECT_EQ(reference->repository, expected.repository) << expected.text;
    EXPECT_EQ(reference->tag, expected.tag) << expected.text;
    EXPECT_EQ(reference->digest.has_value(), expected.has_digest) << expected.text;
    if (expected.has_digest) {
      EXPECT_EQ(reference->digest->str(), digest);
    }
  }
}

TEST(Reference, RefusesMalformed) {
  const std::string cases[] = {
      "",
      "UPPER",               // Docker Hub repositories are lower case
      "host:5000/UPPER",     // so are all repositories
      "host:5000/web:",      // empty tag
      "host:5000/web:.dot",  // tag starting with '.'
      "host:5000/web:" + std::string(129, 'a'),
      "host:5000/web@sha256:abc",  // short digest
      "host:5000/web@md5:" + std::string(kHex),
      "host:5000/",         // no repository
      "host:5000//web",     // empty component
      "host:5000/web/",     // trailing slash
      "host:5000/-web",     // component starting with a separator
      "host:5000/we...b",   // bad separator
      "host:5000/we___b",   // bad separator
      "host:port/web",      // non-numeric port
      "-host.example/web",  // label starting with '-'
      "host..example/web",  // empty label
      "[::1/web",           // unclosed IPv6
      "host.example/" + std::string(250, 'a'),
  };
  for (const auto& text : cases) {
    auto reference = parse_reference(text);
    EXPECT_FALSE(reference.has_value()) << text;
    if (!reference) {
      EXPECT_EQ(reference.error().code, ErrorCode::kInvalidParameter) << text;
    }
  }
}

TEST(Reference, FormatsAndRetargets) {
  auto reference = parse_reference("127.0.0.1:5000/web:latest");
  ASSERT_TRUE(reference.has_value());
  EXPECT_EQ(reference->str(), "127.0.0.1:5000/web:latest");
  EXPECT_EQ(reference->manifest_reference(), "latest");
  auto digest = parse_digest("sha256:" + std::string(kHex));
  auto pinned = reference->with_digest(*digest);
  EXPECT_EQ(pinned.str(), "127.0.0.1:5000/web:latest@sha256:" + std::string(kHex));
  EXPECT_EQ(pinned.manifest_reference(), digest->str());
  EXPECT_EQ(pinned.with_tag("v2").str(), "127.0.0.1:5000/web:v2");
}

TEST(Reference, KnowsLoopbackRegistries) {
  for (std::string_view registry :
       {"localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"}) {
    EXPECT_TRUE(is_loopback_registry(registry)) << registry;
  }
  for (std::string_view registry :
       {"registry-1.docker.io", "10.0.0.1:5000", "localhost.example", "[::2]:5000", "128.0.0.1"}) {
    EXPECT_FALSE(is_loopback_registry(registry)) << registry;
  }
}

}  // namespace
}  // namespace wharf::oci
