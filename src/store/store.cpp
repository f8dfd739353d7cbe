// The parts of the Store contract shared by every implementation.
#include "store/store.hpp"

#include <future>
#include <utility>

namespace wharf::store {

Status Store::commit_sync(std::vector<Mutation> mutations) {
  // The callback owns the promise, so the store thread never touches a promise that this frame
  // has already destroyed after get() returned.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> result = promise->get_future();
  commit(std::move(mutations), [promise](Status status) { promise->set_value(std::move(status)); });
  return result.get();
}

}  // namespace wharf::store
