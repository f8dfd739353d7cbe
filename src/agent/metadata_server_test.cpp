#include "agent/metadata_server.hpp"

#include <gtest/gtest.h>

namespace wharf::agent {
namespace {

TEST(MetadataPathTest, NamesTheViewsOfTheEndpoint) {
  auto container = parse_metadata_path("/v4/abc123");
  ASSERT_TRUE(container.has_value());
  EXPECT_EQ(container->token, "abc123");
  EXPECT_FALSE(container->task);
  EXPECT_FALSE(container->stats);
  auto task = parse_metadata_path("/v4/abc123/task");
  ASSERT_TRUE(task.has_value());
  EXPECT_TRUE(task->task);
  EXPECT_FALSE(task->stats);
  auto stats = parse_metadata_path("/v3/abc123/stats?x=1");
  ASSERT_TRUE(stats.has_value());
  EXPECT_FALSE(stats->task);
  EXPECT_TRUE(stats->stats);
  auto task_stats = parse_metadata_path("/v4/abc123/task/stats");
  ASSERT_TRUE(task_stats.has_value());
  EXPECT_TRUE(task_stats->task && task_stats->stats);
  EXPECT_TRUE(parse_metadata_path("/v4/abc123/").has_value());
}

TEST(MetadataPathTest, RefusesEverythingElse) {
  for (const char* path : {"/", "/v4/", "/v4", "/v2/abc", "/v4/abc/tasks", "/v4/abc/task/x",
                           "/v4/abc/stats/task", "/metadata"}) {
    EXPECT_FALSE(parse_metadata_path(path).has_value()) << path;
  }
}

}  // namespace
}  // namespace wharf::agent
