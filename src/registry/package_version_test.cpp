// Unit tests for dpkg and apk version ordering.
#include "registry/package_version.hpp"

#include <gtest/gtest.h>

namespace wharf::registry {
namespace {

struct Case {
  const char* a;
  const char* b;
  int expected;  // -1, 0 or 1
};

int normalized(int order) {
  return (order > 0) - (order < 0);
}

TEST(DpkgVersion, OrdersLikeDpkg) {
  // Pairs checked against `dpkg --compare-versions`.
  const Case cases[] = {
      {"1.0", "1.0", 0},
      {"1.0", "1.1", -1},
      {"1.10", "1.9", 1},
      {"1.0-1", "1.0-2", -1},
      {"1.0-10", "1.0-9", 1},
      {"1:1.0", "2.0", 1},
      {"0:1.0", "1.0", 0},
      {"1.0~rc1", "1.0", -1},
      {"1.0~rc1", "1.0~rc2", -1},
      {"1.0~~", "1.0~", -1},
      {"1.0~", "1.0", -1},
      {"1.0", "1.0a", -1},
      {"1.0a", "1.0+", -1},
      {"1.0+", "1.0.", -1},
      {"3.0.11-1~deb12u2", "3.0.11-1", -1},
      {"3.0.11-1~deb12u2", "3.0.11-1~deb12u1", 1},
      {"3.0.9-1", "3.0.11-1~deb12u2", -1},
      {"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
      {"1.2.3", "1.2.3-0", 0},
      {"007", "7", 0},
      {"1.0-1ubuntu1", "1.0-1", 1},
      {"2:1.0", "10:0.1", -1},
      {"1.0-1-2", "1.0-1-10", -1},  // the revision is what follows the last hyphen
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(normalized(compare_dpkg_versions(test_case.a, test_case.b)), test_case.expected)
        << test_case.a << " vs " << test_case.b;
    EXPECT_EQ(normalized(compare_dpkg_versions(test_case.b, test_case.a)), -test_case.expected)
        << test_case.b << " vs " << test_case.a;
  }
}

TEST(ApkVersion, OrdersLikeApk) {
  // Pairs as apk-tools orders them (src/version.c).
  const Case cases[] = {
      {"1.0", "1.0", 0},
      {"1.0", "1.1", -1},
      {"1.10", "1.9", 1},
      {"1.0-r0", "1.0-r1", -1},
      {"1.0-r10", "1.0-r9", 1},
      {"1.0", "1.0-r0", 0},
      {"1.0_rc1", "1.0", -1},
      {"1.0_alpha", "1.0_beta", -1},
      {"1.0_beta2", "1.0_beta10", -1},
      {"1.0_pre1", "1.0_rc1", -1},
      {"1.0_p1", "1.0", 1},
      {"1.0_git20240101", "1.0", 1},
      {"1.0a", "1.0", 1},
      {"1.0a", "1.0b", -1},
      {"1.0", "1.0.1", -1},
      {"1.02", "1.1", -1},
      {"1.01", "1.001", 1},
      {"3.1.4-r5", "3.1.4-r6", -1},
      {"3.1.4_p1-r0", "3.1.4-r9", 1},
      {"2.38.1-r0", "2.38-r9", 1},
      {"1.36.1-r15", "1.36.1-r28", -1},
      {"10.0", "9.9", 1},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(normalized(compare_apk_versions(test_case.a, test_case.b)), test_case.expected)
        << test_case.a << " vs " << test_case.b;
    EXPECT_EQ(normalized(compare_apk_versions(test_case.b, test_case.a)), -test_case.expected)
        << test_case.b << " vs " << test_case.a;
  }
}

}  // namespace
}  // namespace wharf::registry
