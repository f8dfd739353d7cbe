// The subreaper: exit codes of spawned children and of orphans that re-parent to the agent.
#include "agent/process_reaper.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/command.hpp"

namespace wharf::agent {
namespace {

using namespace std::chrono_literals;

TEST(ExitStatus, FromWaitStatus) {
  EXPECT_EQ(exit_status_from_wait(3 << 8), (ExitStatus{3, std::nullopt}));
  EXPECT_EQ(exit_status_from_wait(SIGKILL), (ExitStatus{137, SIGKILL}));
  EXPECT_EQ(exit_status_from_wait(SIGTERM), (ExitStatus{143, SIGTERM}));
}

TEST(ProcessReaper, ReportsExitCodesAndSignals) {
  ProcessReaper& reaper = ProcessReaper::instance();
  auto exiting = reaper.spawn({"sh", "-c", "exit 7"}, {});
  ASSERT_TRUE(exiting.has_value()) << exiting.error().message;
  auto status = reaper.wait(*exiting, 10s);
  ASSERT_TRUE(status.has_value() && status->has_value());
  EXPECT_EQ(**status, (ExitStatus{7, std::nullopt}));
  reaper.forget(*exiting);
  EXPECT_FALSE(reaper.wait(*exiting, 0ms).has_value());

  auto sleeping = reaper.spawn({"sleep", "30"}, {});
  ASSERT_TRUE(sleeping.has_value()) << sleeping.error().message;
  auto still_running = reaper.wait(*sleeping, 0ms);
  ASSERT_TRUE(still_running.has_value());
  EXPECT_FALSE(still_running->has_value());
  ::kill(*sleeping, SIGKILL);
  status = reaper.wait(*sleeping, 10s);
  ASSERT_TRUE(status.has_value() && status->has_value());
  EXPECT_EQ(**status, (ExitStatus{137, SIGKILL}));
  reaper.forget(*sleeping);

  EXPECT_FALSE(reaper.spawn({"/nonexistent/program"}, {}).has_value());
}

// What `runc create` leaves: a grandchild whose parent exits. It re-parents to this process.
TEST(ProcessReaper, AdoptsOrphansThatReparentToIt) {
  ProcessReaper& reaper = ProcessReaper::instance();
  char path[] = "/tmp/wharf-reaper-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  auto parent =
      reaper.spawn({"sh", "-c", std::string("(sleep 0.2; exit 5) & echo $! > ") + path}, {});
  ASSERT_TRUE(parent.has_value()) << parent.error().message;
  ASSERT_TRUE(reaper.wait(*parent, 10s).has_value());
  reaper.forget(*parent);
  pid_t orphan = 0;
  std::ifstream(path) >> orphan;
  std::remove(path);
  ASSERT_GT(orphan, 0);

  ASSERT_TRUE(reaper.adopt(orphan).has_value());
  auto status = reaper.wait(orphan, 10s);
  ASSERT_TRUE(status.has_value() && status->has_value()) << "orphan " << orphan;
  EXPECT_EQ((*status)->exit_code, 5);
  reaper.forget(orphan);

  auto stranger = reaper.adopt(1);
  ASSERT_FALSE(stranger.has_value());
  EXPECT_EQ(stranger.error().code, ErrorCode::kNotFound);
}

TEST(ProcessReaperTest, FindsProgramsOnPath) {
  std::filesystem::path sh = find_program("sh");
  EXPECT_TRUE(sh.is_absolute()) << sh;
  EXPECT_EQ(sh.filename(), "sh");
  EXPECT_EQ(find_program("no-such-program-wharf"), "no-such-program-wharf");
  EXPECT_EQ(find_program("./relative/sh"), "./relative/sh");
}

// A program found once and then moved (a package upgrade) is looked up again, not lost.
TEST(ProcessReaperTest, AProgramThatMovedIsFoundAgain) {
  std::string pattern = "/tmp/wharf-path-test-XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  std::filesystem::path root = pattern;
  std::filesystem::create_directories(root / "a");
  std::filesystem::create_directories(root / "b");
  {
    std::ofstream script(root / "a" / "wharf-moving-program");
    script << "#!/bin/sh\nexit 7\n";
  }
  std::filesystem::permissions(root / "a" / "wharf-moving-program",
                               std::filesystem::perms::owner_all);
  std::string old_path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  setenv("PATH", ((root / "a").string() + ":" + (root / "b").string() + ":" + old_path).c_str(), 1);
  EXPECT_EQ(find_program("wharf-moving-program"), root / "a" / "wharf-moving-program");
  std::filesystem::rename(root / "a" / "wharf-moving-program", root / "b" / "wharf-moving-program");
  auto output = run_command({"wharf-moving-program"});
  setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(output.has_value()) << output.error().message;
  EXPECT_EQ(output->status.exit_code, 7);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace wharf::agent
