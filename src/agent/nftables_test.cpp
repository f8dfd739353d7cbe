// run_nft_script against the real kernel: transactions, refusals, and the in-process path.
#include "agent/nftables.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "agent/test_commands.hpp"

namespace wharf::agent {
namespace {

using testkit::have_command;
using testkit::shell;

class NftablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "nftables needs root";
    if (!have_command("nft", "--version"))
      GTEST_SKIP() << "needs nftables (apt-get install nftables)";
  }
  void TearDown() override { shell("nft delete table ip " + table_ + " 2>/dev/null"); }
  const std::string table_ = "wharf_nft_test_" + std::to_string(::getpid());
};

TEST_F(NftablesTest, AppliesAScriptAsOneTransaction) {
  ASSERT_TRUE(run_nft_script("add table ip " + table_ + "\nadd chain ip " + table_ +
                             " c\nadd rule ip " + table_ + " c counter accept\n"));
  std::string listed = shell("nft list table ip " + table_);
  EXPECT_NE(listed.find("chain c"), std::string::npos) << listed;
  EXPECT_NE(listed.find("accept"), std::string::npos) << listed;
  EXPECT_TRUE(run_nft_script(""));  // nothing to do
}

TEST_F(NftablesTest, ARefusedScriptChangesNothingAndSaysWhy) {
  auto refused = run_nft_script("add table ip " + table_ + "\nadd rule ip " + table_ +
                                " no_such_chain accept\n");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
  EXPECT_NE(refused.error().message.find("Could not process rule"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(shell("nft list tables").find(table_), std::string::npos);
  // The context is fine for the next script.
  EXPECT_TRUE(run_nft_script("add table ip " + table_ + "\n"));
}

TEST_F(NftablesTest, SetUpScriptsApplyWhicheverWayTheyGo) {
  ASSERT_TRUE(run_nft_setup_script("add table ip " + table_ + "\nadd chain ip " + table_ + " s\n"));
  EXPECT_NE(shell("nft list table ip " + table_).find("chain s"), std::string::npos);
  auto refused = run_nft_setup_script("add rule ip " + table_ + " no_such_chain accept\n");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
  ASSERT_TRUE(run_nft_setup_script("delete table ip " + table_ + "\n"));
  EXPECT_EQ(shell("nft list tables").find(table_), std::string::npos);
}

TEST_F(NftablesTest, AnIdleContextIsFreedAndTheNextScriptMakesANewOne) {
  if (!nft_in_process()) GTEST_SKIP() << "libnftables is not installed";
  ASSERT_TRUE(run_nft_script("add table ip " + table_ + "\n"));
  EXPECT_FALSE(release_idle_nft_context(std::chrono::hours(1)));  // just used
  EXPECT_TRUE(release_idle_nft_context(std::chrono::seconds(0)));
  EXPECT_FALSE(release_idle_nft_context(std::chrono::seconds(0)));  // none left to free
  ASSERT_TRUE(run_nft_script("add chain ip " + table_ + " input\n"));
  EXPECT_NE(shell("nft list table ip " + table_).find("chain input"), std::string::npos);
}

TEST_F(NftablesTest, GoesThroughTheLibraryWhenItIsInstalled) {
  bool installed = std::filesystem::exists("/usr/lib/x86_64-linux-gnu/libnftables.so.1") ||
                   std::filesystem::exists("/usr/lib/aarch64-linux-gnu/libnftables.so.1");
  EXPECT_EQ(nft_in_process(), installed);
}

}  // namespace
}  // namespace wharf::agent
