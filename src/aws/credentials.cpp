// In-memory access key table (IAM will persist keys in a later issue).
#include "aws/credentials.hpp"

#include <mutex>

namespace wharf::aws {

void CredentialStore::add(AccessKey key) {
  std::unique_lock lock(mutex_);
  std::string id = key.access_key_id;
  keys_[id] = std::move(key);
}

std::optional<AccessKey> CredentialStore::find(std::string_view access_key_id) const {
  std::shared_lock lock(mutex_);
  auto found = keys_.find(access_key_id);
  if (found == keys_.end()) return std::nullopt;
  return found->second;
}

}  // namespace wharf::aws
