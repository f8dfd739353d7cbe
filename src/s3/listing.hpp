// Listing a bucket's keys as ListObjects/ListObjectsV2 do: prefix, delimiter (common
// prefixes), a resume point and a page size. Pure: works on the bucket's ordered index.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "s3/records.hpp"

namespace wharf::s3 {

using ObjectIndex = std::map<std::string, ObjectRecord, std::less<>>;

struct ListQuery {
  std::string prefix;
  std::string delimiter;
  std::string after;  // list only what sorts after this (marker, start-after, continuation)
  std::size_t max_keys = 1000;
};

struct ListPage {
  std::vector<const ObjectRecord*> contents;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  // The last key or common prefix in the page: where the next page resumes.
  std::string last;
};

ListPage list_objects(const ObjectIndex& objects, const ListQuery& query);

}  // namespace wharf::s3
