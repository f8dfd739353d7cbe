// BodyFiles: bodies installed, concatenated, and read through descriptors opened before a
// removal.
#include "s3/body_files.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

namespace wharf::s3 {
namespace {

namespace fs = std::filesystem;

class BodyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "wharf-s3-bodies-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    files_.emplace(root_ / "s3");
    ASSERT_TRUE(files_->prepare());
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string install(std::string_view bytes) {
    auto temp = files_->create();
    EXPECT_TRUE(temp);
    EXPECT_TRUE(files_->write(*temp, bytes));
    EXPECT_TRUE(files_->install(*temp));
    return temp->id;
  }

  std::string read(const std::string& id) {
    std::ifstream in(root_ / "s3" / "data" / id, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path root_;
  std::optional<BodyFiles> files_;
};

TEST_F(BodyFilesTest, ConcatenatesBodiesOpenedBeforeTheyWereRemoved) {
  std::string first = install("first part, ");
  std::string second = install("second part");
  auto opened = files_->open_all({first, second});
  ASSERT_TRUE(opened) << opened.error().message;
  // An overwrite removes a source between the lookup and the copy.
  files_->remove(first);
  auto joined = files_->concatenate(*opened);
  ASSERT_TRUE(joined) << joined.error().message;
  EXPECT_EQ(read(*joined), "first part, second part");
  EXPECT_FALSE(files_->open_all({first}));
}

}  // namespace
}  // namespace wharf::s3
