// StateFile: rewritten in place, in two slots, so that a torn write is never read.
#include "agent/files.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "agent/test_layers.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;

std::string contents_of(const StateFile& file) {
  auto read = file.read();
  EXPECT_TRUE(read.has_value()) << (read ? "" : read.error().message);
  if (!read || !*read) return "<none>";
  return **read;
}

ino_t inode_of(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_ino;
}

TEST_F(DataDirTest, StateFileReadsBackItsLatestWrite) {
  StateFile file(root_ / "task.json");
  EXPECT_EQ(contents_of(file), "<none>");
  ASSERT_TRUE(file.write(R"({"status":"PENDING","long":"xxxxxxxxxxxxxxxxxxxxxxxx"})").has_value());
  EXPECT_EQ(contents_of(file), R"({"status":"PENDING","long":"xxxxxxxxxxxxxxxxxxxxxxxx"})");
  ASSERT_TRUE(file.write(R"({"status":"RUNNING"})", Durability::kProcess).has_value());
  ASSERT_TRUE(file.write(R"({"status":"STOPPED"})").has_value());
  EXPECT_EQ(contents_of(file), R"({"status":"STOPPED"})");
  // A second reader (an agent restarted) sees the same, and its writes continue the sequence.
  StateFile again(root_ / "task.json");
  EXPECT_EQ(contents_of(again), R"({"status":"STOPPED"})");
  ASSERT_TRUE(again.write("{}").has_value());
  EXPECT_EQ(contents_of(file), "{}");
}

TEST_F(DataDirTest, StateFileRewritesTwoFilesInPlace) {
  StateFile file(root_ / "index.json");
  ASSERT_TRUE(file.write("one").has_value());
  ASSERT_TRUE(file.write("two").has_value());
  ino_t first = inode_of(root_ / "index.json.0");
  ino_t second = inode_of(root_ / "index.json.1");
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(
        file.write(std::string(static_cast<std::size_t>(100 - round * 9), 'x')).has_value());
  }
  EXPECT_EQ(inode_of(root_ / "index.json.0"), first);
  EXPECT_EQ(inode_of(root_ / "index.json.1"), second);
  EXPECT_EQ(contents_of(file), std::string(19, 'x'));
  // Shorter writes cut the longer ones' tails: the slots do not keep their largest size.
  EXPECT_LT(fs::file_size(root_ / "index.json.1"), 80u);
  EXPECT_FALSE(fs::exists(root_ / "index.json"));
}

TEST_F(DataDirTest, StateFileNeverReadsATornWrite) {
  StateFile file(root_ / "task.json");
  ASSERT_TRUE(file.write("first state").has_value());
  ASSERT_TRUE(file.write("second state").has_value());  // slot 0 holds sequence 2
  fs::path newest = root_ / "task.json.0";
  std::string whole = testkit::read_file(newest);
  // A crash part-way through rewriting the newest slot (as if it had been the next one
  // written): whatever prefix made it, the other slot's state is what is read.
  for (std::size_t cut : {whole.size() - 1, whole.size() - 5, std::size_t{20}, std::size_t{3}}) {
    std::ofstream(newest, std::ios::trunc) << whole.substr(0, cut);
    EXPECT_EQ(contents_of(StateFile(root_ / "task.json")), "first state") << cut;
  }
  // New bytes over an old tail (killed before the truncate) still read as the new state.
  std::ofstream(newest, std::ios::trunc) << whole << "tail of an older, longer write";
  EXPECT_EQ(contents_of(StateFile(root_ / "task.json")), "second state");
  // A write with a flipped byte fails its checksum.
  std::string flipped = whole;
  flipped.back() ^= 1;
  std::ofstream(newest, std::ios::trunc) << flipped;
  StateFile after_crash(root_ / "task.json");
  EXPECT_EQ(contents_of(after_crash), "first state");
  // The next write goes to the torn slot, never over the whole one.
  ASSERT_TRUE(after_crash.write("third state").has_value());
  EXPECT_EQ(contents_of(after_crash), "third state");
  EXPECT_EQ(testkit::read_file(root_ / "task.json.1").substr(0, 15), "wharf-state 1 1");
}

TEST_F(DataDirTest, StateFileWithNoWholeSlotIsAnError) {
  std::ofstream(root_ / "task.json.0") << "wharf-state 1 100 0\n{";
  std::ofstream(root_ / "task.json.1") << "garbage";
  auto read = StateFile(root_ / "task.json").read();
  ASSERT_FALSE(read.has_value());
  EXPECT_NE(read.error().message.find("holds a whole state"), std::string::npos);
}

TEST_F(DataDirTest, StateFileWithOnlyEmptySlotsWasNeverWritten) {
  // Slots made ahead of their first write (spare task directories) hold no state yet.
  std::ofstream(root_ / "task.json.0").close();
  std::ofstream(root_ / "task.json.1").close();
  StateFile file(root_ / "task.json");
  EXPECT_EQ(contents_of(file), "<none>");
  ASSERT_TRUE(file.write("first state").has_value());
  EXPECT_EQ(contents_of(StateFile(root_ / "task.json")), "first state");
  ASSERT_TRUE(file.write("second state").has_value());
  EXPECT_EQ(contents_of(StateFile(root_ / "task.json")), "second state");
}

TEST_F(DataDirTest, StateFileAdoptsAPlainFileFromAnOlderAgent) {
  std::ofstream(root_ / "agent.json") << R"({"old":true})";
  StateFile file(root_ / "agent.json");
  EXPECT_EQ(contents_of(file), R"({"old":true})");
  ASSERT_TRUE(file.write(R"({"new":true})").has_value());
  EXPECT_FALSE(fs::exists(root_ / "agent.json"));
  EXPECT_EQ(contents_of(StateFile(root_ / "agent.json")), R"({"new":true})");
}

TEST_F(DataDirTest, StateFileRemoveLeavesNothing) {
  fs::create_directories(root_ / "state");
  StateFile file(root_ / "state/network.json");
  ASSERT_TRUE(file.write("a").has_value());
  ASSERT_TRUE(file.write("b").has_value());
  ASSERT_TRUE(file.remove().has_value());
  EXPECT_TRUE(fs::is_empty(root_ / "state"));
  EXPECT_EQ(contents_of(file), "<none>");
  ASSERT_TRUE(file.write("c").has_value());  // and starts over
  EXPECT_EQ(contents_of(StateFile(root_ / "state/network.json")), "c");
}

// ext4 takes the top-directory flag, and keeps it; a file system without such a flag (tmpfs) is
// no error: the caller carries on without it.
TEST_F(DataDirTest, MarkTopDirectorySetsTheFlagWhereTheFileSystemHasIt) {
  // Whether `dir` was marked: true, false (no such flag there), or the error's message.
  auto mark = [](const fs::path& dir) -> std::string {
    auto marked = mark_top_directory(dir);
    if (!marked) return marked.error().message;
    return *marked ? "true" : "false";
  };
  if (testkit::on_ext4(root_)) {
    fs::create_directories(root_ / "top");
    EXPECT_FALSE(testkit::is_top_directory(root_ / "top"));
    EXPECT_EQ(mark(root_ / "top"), "true");
    EXPECT_TRUE(testkit::is_top_directory(root_ / "top"));
    EXPECT_EQ(mark(root_ / "top"), "true");
  }
  EXPECT_NE(mark(root_ / "missing").find("No such file"), std::string::npos);
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  fs::create_directories(root_ / "tmpfs");
  ASSERT_EQ(::mount("tmpfs", (root_ / "tmpfs").c_str(), "tmpfs", 0, "size=1m"), 0);
  fs::create_directories(root_ / "tmpfs" / "dir");
  EXPECT_EQ(mark(root_ / "tmpfs" / "dir"), "false");
}

TEST_F(DataDirTest, WriteFileSetsItsModeAndReplacesWhatWasThere) {
  std::ofstream(root_ / "hosts") << "a much longer old content";
  ::chmod((root_ / "hosts").c_str(), 0600);
  mode_t old_mask = ::umask(077);
  auto written = write_file(root_ / "hosts", "127.0.0.1 localhost\n", 0644);
  ::umask(old_mask);
  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(testkit::read_file(root_ / "hosts"), "127.0.0.1 localhost\n");
  struct stat info {};
  ASSERT_EQ(::stat((root_ / "hosts").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0644u);
}

}  // namespace
}  // namespace wharf::agent
