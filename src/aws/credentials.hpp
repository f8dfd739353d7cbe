// Access keys the server accepts, and the account each belongs to.
#pragma once

#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

namespace wharf::aws {

struct AccessKey {
  std::string access_key_id;
  std::string secret_access_key;
  std::string account_id;
  std::string principal_arn;  // e.g. arn:aws:iam::123456789012:root
};

class CredentialStore {
 public:
  void add(AccessKey key);
  std::optional<AccessKey> find(std::string_view access_key_id) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, AccessKey, std::less<>> keys_;
};

}  // namespace wharf::aws
