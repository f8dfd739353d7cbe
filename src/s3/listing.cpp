// list_objects: one ordered walk from the resume point, rolling keys up into common prefixes.
#include "s3/listing.hpp"

namespace wharf::s3 {

namespace {

// The common prefix `key` rolls up into under `query`, or "" when it is listed itself.
std::string common_prefix(std::string_view key, const ListQuery& query) {
  if (query.delimiter.empty()) return {};
  auto found = key.find(query.delimiter, query.prefix.size());
  if (found == std::string_view::npos) return {};
  return std::string(key.substr(0, found + query.delimiter.size()));
}

}  // namespace

ListPage list_objects(const ObjectIndex& objects, const ListQuery& query) {
  ListPage page;
  auto entry = query.after < query.prefix ? objects.lower_bound(query.prefix)
                                          : objects.upper_bound(query.after);
  std::size_t listed = 0;
  for (; entry != objects.end() && entry->first.starts_with(query.prefix); ++entry) {
    std::string rolled_up = common_prefix(entry->first, query);
    // A prefix at or before the resume point was listed on an earlier page.
    if (!rolled_up.empty() && (rolled_up <= query.after || rolled_up == page.last)) continue;
    if (listed == query.max_keys) {
      page.truncated = true;
      break;
    }
    ++listed;
    if (rolled_up.empty()) {
      page.contents.push_back(&entry->second);
      page.last = entry->first;
      continue;
    }
    page.common_prefixes.push_back(rolled_up);
    page.last = std::move(rolled_up);
  }
  return page;
}

}  // namespace wharf::s3
