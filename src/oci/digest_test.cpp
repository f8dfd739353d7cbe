// Unit tests for digests.
#include <gtest/gtest.h>

#include "oci/digest.hpp"

namespace wharf::oci {
namespace {

TEST(Digest, ParsesValidAndRefusesMalformed) {
  std::string empty256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  ASSERT_TRUE(parse_digest(empty256).has_value());
  EXPECT_EQ(parse_digest(empty256)->str(), empty256);
  for (std::string bad :
       {"", "sha256", "sha256:", "md5:abcd", "sha256:ABC",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g"}) {
    EXPECT_FALSE(parse_digest(bad).has_value()) << bad;
  }
}

TEST(Digest, HashesIncrementally) {
  Hasher hasher;
  hasher.update("ab");
  hasher.update("c");
  EXPECT_EQ(hasher.digest(), digest_of("abc"));
  EXPECT_EQ(digest_of("abc").hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest_of("", "sha512").hex.substr(0, 16), "cf83e1357eefb8bd");
}

}  // namespace
}  // namespace wharf::oci
