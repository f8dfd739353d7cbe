// The Secrets Manager API (JSON 1.1, target prefix "secretsmanager"): secrets with versions and
// staging labels, scheduled deletion, tags and random passwords. Agents read secrets through it
// for tasks' repositoryCredentials and container secrets.
#pragma once

#include <boost/json/object.hpp>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "common/clock.hpp"
#include "secrets/secret.hpp"
#include "store/store.hpp"

namespace wharf::secrets {

class SecretsApi {
 public:
  using Context = aws::CallContext;
  using Input = boost::json::object;
  using Reply = aws::JsonReply;

  SecretsApi(store::Store& store, const Clock& clock, const aws::PageTokens& tokens);

  // Reads every stored secret; call once before serving.
  Status load();
  void register_operations(aws::JsonService& service);

  // The operations (called directly by tests).
  void create_secret(const Context& context, const Input& input, Reply reply);
  void describe_secret(const Context& context, const Input& input, Reply reply);
  void get_secret_value(const Context& context, const Input& input, Reply reply);
  void batch_get_secret_value(const Context& context, const Input& input, Reply reply);
  void put_secret_value(const Context& context, const Input& input, Reply reply);
  void update_secret(const Context& context, const Input& input, Reply reply);
  void list_secrets(const Context& context, const Input& input, Reply reply);
  void list_secret_version_ids(const Context& context, const Input& input, Reply reply);
  void delete_secret(const Context& context, const Input& input, Reply reply);
  void restore_secret(const Context& context, const Input& input, Reply reply);
  void tag_resource(const Context& context, const Input& input, Reply reply);
  void untag_resource(const Context& context, const Input& input, Reply reply);
  void get_random_password(const Context& context, const Input& input, Reply reply);

 private:
  using Secrets = std::map<std::string, Secret, std::less<>>;  // by name

  // The region's secrets, without those whose scheduled deletion has come: those are removed
  // here, and their removal is added to `mutations` when given. Call with mutex_ held.
  Secrets& region(const std::string& name, std::vector<store::Mutation>* mutations = nullptr);
  // The secret `secret_id` (a name, a full ARN, or an ARN without AWS's random suffix) names.
  Result<Secret*> find(const Context& context, std::string_view secret_id,
                       std::vector<store::Mutation>* mutations = nullptr);
  // The version GetSecretValue's VersionId/VersionStage select (AWSCURRENT by default).
  Result<const SecretVersion*> select_version(const Secret& secret, const Input& input) const;
  // Records today as the secret's last access; true when that changed it.
  bool touch(Secret& secret);
  // Commits what a read changed (the day of last access, expired secrets) without holding up
  // the read's answer: a failure costs that record only, and is logged.
  void record_access(std::vector<store::Mutation> mutations);
  static store::Mutation put(const std::string& region, const Secret& secret);
  static store::Mutation remove(const std::string& region, const Secret& secret);

  store::Store& store_;
  const Clock& clock_;
  const aws::PageTokens& tokens_;
  std::mutex mutex_;
  std::map<std::string, Secrets, std::less<>> regions_;
};

}  // namespace wharf::secrets
