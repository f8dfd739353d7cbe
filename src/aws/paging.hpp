// Opaque, tamper-proof nextToken values for List operations.
#pragma once

#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::aws {

// A token records where a listing stopped ("after this key"), which listing it belongs to
// (operation plus filters, the scope) and when it was issued; an HMAC under a server secret
// makes it unforgeable. Tokens from another listing, forged ones and stale ones are refused
// with InvalidParameterException, as ECS does.
class PageTokens {
 public:
  explicit PageTokens(std::string secret, std::chrono::seconds lifetime = std::chrono::hours(24))
      : secret_(std::move(secret)), lifetime_(lifetime) {}

  std::string issue(std::string_view scope, std::string_view last_key, TimePoint now) const;
  // The last key the token stands for.
  Result<std::string> redeem(std::string_view scope, std::string_view token, TimePoint now) const;

 private:
  std::string secret_;
  std::chrono::seconds lifetime_;
};

// What a List call asked for: how many items, and after which key.
struct PageRequest {
  int max_results = 100;
  std::optional<std::string> after;  // the last key of the previous page
};

// The request members that carry the page size and the token: ECS and ECR spell them
// maxResults/nextToken, Secrets Manager MaxResults/NextToken. A bad token is an
// InvalidParameterException unless `bad_token_type` names the service's own exception.
struct PageMembers {
  std::string_view max_results = "maxResults";
  std::string_view next_token = "nextToken";
  std::string_view bad_token_type = {};
};

// Reads maxResults (absent → default_max; outside [1, limit] → InvalidParameterException) and
// nextToken (redeemed against `scope`) from a List request.
Result<PageRequest> read_page_request(const PageTokens& tokens, TimePoint now,
                                      const boost::json::object& input, std::string_view scope,
                                      int default_max, int limit, PageMembers members = {});

// Emits at most max_results of `items` from `start` on. Returns the key the next page starts
// after, when there is one.
template <typename Item, typename KeyOf, typename Emit>
std::optional<std::string> emit_page_from(const std::vector<Item>& items, std::size_t start,
                                          const PageRequest& page, KeyOf key_of, Emit emit) {
  std::size_t end = std::min(items.size(), start + static_cast<std::size_t>(page.max_results));
  for (std::size_t item_idx = start; item_idx < end; ++item_idx) emit(items[item_idx]);
  if (end >= items.size()) return std::nullopt;
  return key_of(items[end - 1]);
}

// Emits the page's share of `items`: those after the one whose key the page token holds, at
// most max_results of them. Returns the key the next page starts after, when there is one.
template <typename Item, typename KeyOf, typename Emit>
std::optional<std::string> emit_page(const std::vector<Item>& items, const PageRequest& page,
                                     KeyOf key_of, Emit emit) {
  std::size_t start = 0;
  if (page.after) {
    while (start < items.size() && key_of(items[start]) != *page.after) ++start;
    start = std::min(start + 1, items.size());
  }
  return emit_page_from(items, start, page, key_of, emit);
}

// emit_page for items in ascending order of their keys: the page resumes at the first key after
// the token's, so an item removed between two pages does not end the listing.
template <typename Item, typename KeyOf, typename Emit>
std::optional<std::string> emit_page_by_key(const std::vector<Item>& items, const PageRequest& page,
                                            KeyOf key_of, Emit emit) {
  std::size_t start = 0;
  if (page.after) {
    while (start < items.size() && !(key_of(items[start]) > *page.after)) ++start;
  }
  return emit_page_from(items, start, page, key_of, emit);
}

}  // namespace wharf::aws
