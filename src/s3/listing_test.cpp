// Listing with prefixes, delimiters and pages.
#include "s3/listing.hpp"

#include <gtest/gtest.h>

namespace wharf::s3 {
namespace {

ObjectIndex index_of(std::initializer_list<const char*> keys) {
  ObjectIndex out;
  for (const char* key : keys) out[key].key = key;
  return out;
}

std::vector<std::string> keys_of(const ListPage& page) {
  std::vector<std::string> out;
  for (const auto* object : page.contents) out.push_back(object->key);
  return out;
}

const ObjectIndex kObjects =
    index_of({"a.txt", "dir/x", "dir/y", "dir/sub/z", "dirt", "logs/1", "logs/2", "z"});

TEST(Listing, ListsEverythingInKeyOrder) {
  auto page = list_objects(kObjects, {});
  EXPECT_EQ(keys_of(page), (std::vector<std::string>{"a.txt", "dir/sub/z", "dir/x", "dir/y", "dirt",
                                                     "logs/1", "logs/2", "z"}));
  EXPECT_FALSE(page.truncated);
}

TEST(Listing, RollsKeysUpIntoCommonPrefixes) {
  auto page = list_objects(kObjects, {"", "/", "", 1000});
  EXPECT_EQ(keys_of(page), (std::vector<std::string>{"a.txt", "dirt", "z"}));
  EXPECT_EQ(page.common_prefixes, (std::vector<std::string>{"dir/", "logs/"}));
}

TEST(Listing, PrefixAndDelimiterTogether) {
  auto page = list_objects(kObjects, {"dir/", "/", "", 1000});
  EXPECT_EQ(keys_of(page), (std::vector<std::string>{"dir/x", "dir/y"}));
  EXPECT_EQ(page.common_prefixes, (std::vector<std::string>{"dir/sub/"}));
}

TEST(Listing, PagesCountKeysAndPrefixesAndResumeAfterTheLast) {
  ListQuery query{"", "/", "", 2};
  auto first = list_objects(kObjects, query);
  EXPECT_EQ(keys_of(first), (std::vector<std::string>{"a.txt"}));
  EXPECT_EQ(first.common_prefixes, (std::vector<std::string>{"dir/"}));
  EXPECT_TRUE(first.truncated);
  EXPECT_EQ(first.last, "dir/");
  query.after = first.last;
  auto second = list_objects(kObjects, query);
  EXPECT_EQ(keys_of(second), (std::vector<std::string>{"dirt"}));
  EXPECT_EQ(second.common_prefixes, (std::vector<std::string>{"logs/"}));
  EXPECT_TRUE(second.truncated);
  query.after = second.last;
  auto third = list_objects(kObjects, query);
  EXPECT_EQ(keys_of(third), (std::vector<std::string>{"z"}));
  EXPECT_FALSE(third.truncated);
}

TEST(Listing, StartAfterIsExclusiveAndAPrefixBoundsTheWalk) {
  auto page = list_objects(kObjects, {"logs/", "", "logs/1", 1000});
  EXPECT_EQ(keys_of(page), (std::vector<std::string>{"logs/2"}));
  auto before = list_objects(kObjects, {"logs/", "", "a", 1000});
  EXPECT_EQ(keys_of(before), (std::vector<std::string>{"logs/1", "logs/2"}));
}

TEST(Listing, AnExactPageIsNotTruncated) {
  auto page = list_objects(index_of({"a", "b"}), {"", "", "", 2});
  EXPECT_EQ(page.contents.size(), 2u);
  EXPECT_FALSE(page.truncated);
}

}  // namespace
}  // namespace wharf::s3
