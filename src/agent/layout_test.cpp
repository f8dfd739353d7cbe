// The agent's on-disk layout: every path, and refusal of names that would escape it.
#include "agent/layout.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace wharf::agent {
namespace {

const oci::Digest kDiffId{"sha256", std::string(64, 'a')};
const ContainerRef kContainer{"3f2c0a1b-task", "web"};

TEST(Layout, NamesEveryPathUnderTheDataDir) {
  auto layout = Layout::create("/var/lib/wharf/");
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  EXPECT_EQ(layout->data_dir(), "/var/lib/wharf");
  EXPECT_EQ(layout->lock_file(), "/var/lib/wharf/agent.lock");
  EXPECT_EQ(layout->agent_state_file(), "/var/lib/wharf/state/agent.json");
  EXPECT_EQ(layout->network_state_file(), "/var/lib/wharf/state/network.json");
  EXPECT_EQ(layout->image_index_file(), "/var/lib/wharf/images/index.json");
  EXPECT_EQ(layout->layer_dir(kDiffId), "/var/lib/wharf/layers/sha256/" + kDiffId.hex);
  EXPECT_EQ(layout->layer_temp_dir(), "/var/lib/wharf/layers/tmp");
  EXPECT_EQ(layout->image_manifest_file(kDiffId),
            "/var/lib/wharf/images/sha256/" + kDiffId.hex + "/manifest.json");
  EXPECT_EQ(layout->image_config_file(kDiffId),
            "/var/lib/wharf/images/sha256/" + kDiffId.hex + "/config.json");
  EXPECT_EQ(layout->task_state_file("t1"), "/var/lib/wharf/containers/t1/task.json");
  std::string container = "/var/lib/wharf/containers/3f2c0a1b-task/web";
  EXPECT_EQ(layout->container_dir(kContainer), container);
  EXPECT_EQ(layout->container_upper_dir(kContainer), container + "/upper");
  EXPECT_EQ(layout->container_work_dir(kContainer), container + "/work");
  EXPECT_EQ(layout->container_logs_dir(kContainer), container + "/logs");
  // Without a run directory of its own, the data directory holds it.
  EXPECT_EQ(layout->run_dir(), "/var/lib/wharf/run");
  EXPECT_EQ(layout->container_merged_dir(kContainer),
            "/var/lib/wharf/run/containers/3f2c0a1b-task/web/rootfs");
}

TEST(Layout, WhatLivesOnlyAsLongAsTheContainersIsInTheRunDir) {
  auto layout = Layout::create("/var/lib/wharf", "/run/wharf/i-1/");
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  EXPECT_EQ(layout->run_dir(), "/run/wharf/i-1");
  EXPECT_EQ(layout->runtime_state_dir(), "/run/wharf/i-1/runtime");
  EXPECT_EQ(layout->task_run_dir("t1"), "/run/wharf/i-1/containers/t1");
  std::string container = "/run/wharf/i-1/containers/3f2c0a1b-task/web";
  EXPECT_EQ(layout->container_run_dir(kContainer), container);
  EXPECT_EQ(layout->container_merged_dir(kContainer), container + "/rootfs");
  EXPECT_EQ(layout->container_bundle_dir(kContainer), container + "/bundle");
  EXPECT_EQ(layout->container_upper_dir(kContainer),
            "/var/lib/wharf/containers/3f2c0a1b-task/web/upper");
}

TEST(Layout, RefusesDataDirsThatOverlayOptionsCannotCarry) {
  for (const char* bad :
       {"relative/dir", "/var/lib/a,b", "/var/lib/a:b", "/var/lib/a b", "/var/lib/a\\b"}) {
    auto layout = Layout::create(bad);
    ASSERT_FALSE(layout.has_value()) << bad;
    EXPECT_EQ(layout.error().code, ErrorCode::kInvalidParameter);
    auto run = Layout::create("/var/lib/wharf", bad);
    ASSERT_FALSE(run.has_value()) << bad;
    EXPECT_NE(run.error().message.find("run directory"), std::string::npos) << bad;
  }
}

TEST(Layout, SafePathComponents) {
  for (const char* good : {"web", "a.b_c-d", "0123456789abcdef", "..."}) {
    EXPECT_TRUE(is_safe_path_component(good)) << good;
  }
  for (const char* bad : {"", ".", "..", "a/b", "a b", "ü", "a\nb"}) {
    EXPECT_FALSE(is_safe_path_component(bad)) << bad;
  }
  EXPECT_FALSE(is_safe_path_component(std::string(256, 'a')));
  EXPECT_TRUE(validate_container_ref(kContainer).has_value());
  EXPECT_FALSE(validate_container_ref({"..", "web"}).has_value());
  EXPECT_FALSE(validate_container_ref({"t1", "a/../../etc"}).has_value());
}

TEST(Layout, UnvalidatedNamesAreABugNotAPath) {
  auto layout = Layout::create("/var/lib/wharf");
  ASSERT_TRUE(layout.has_value());
  EXPECT_THROW((void)layout->container_dir({"..", "web"}), std::invalid_argument);
  EXPECT_THROW((void)layout->task_dir("../../etc"), std::invalid_argument);
  EXPECT_THROW((void)layout->layer_dir({"sha256", "../../etc"}), std::invalid_argument);
  EXPECT_THROW((void)layout->layer_dir({"md5", std::string(32, 'a')}), std::invalid_argument);
}

}  // namespace
}  // namespace wharf::agent
