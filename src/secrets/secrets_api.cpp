// SecretsApi: the operations, their checks, and durability before every answer.
#include "secrets/secrets_api.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include "aws/errors.hpp"
#include "common/arn.hpp"
#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "secrets/random_password.hpp"

namespace wharf::secrets {

namespace bj = boost::json;

namespace {

constexpr const char* kSecretKind = "secretsmanager.secret";
constexpr std::size_t kMaxTags = 50;
constexpr std::size_t kMaxBatchIds = 20;
constexpr std::int64_t kDefaultRecoveryDays = 30;
constexpr std::string_view kSuffixCharacters =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

std::unexpected<Error> not_found() {
  return fail(ErrorCode::kNotFound, "Secrets Manager can't find the specified secret.");
}

std::unexpected<Error> invalid_request(std::string message) {
  return fail_as(ErrorCode::kClient, "InvalidRequestException", std::move(message));
}

std::unexpected<Error> already_exists(std::string message) {
  return fail_as(ErrorCode::kClient, "ResourceExistsException", std::move(message));
}

std::unexpected<Error> marked_for_deletion() {
  return invalid_request(
      "You can't perform this operation on the secret because it was marked for deletion. "
      "Restore it with RestoreSecret first.");
}

bool is_name_character(char character) {
  return std::isalnum(static_cast<unsigned char>(character)) ||
         std::string_view("/_+=.@-").find(character) != std::string_view::npos;
}

Status check_name(std::string_view name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_character)) {
    return invalid("Invalid name '" + std::string(name) +
                   "'. A secret name may contain only ASCII letters, digits and /_+=.@-");
  }
  return {};
}

// AWS appends a hyphen and six random characters to the name in a secret's ARN.
std::string arn_suffix() {
  return "-" + random_characters(kSuffixCharacters, 6);
}

// The value a Create/Put/UpdateSecret carries, if any.
struct GivenValue {
  std::optional<std::string> string_value;
  std::optional<std::string> binary_base64;
  bool given() const { return string_value || binary_base64; }
};

Result<GivenValue> read_value(const bj::object& input) {
  GivenValue value{json::get_string(input, "SecretString"),
                   json::get_string(input, "SecretBinary")};
  if (value.string_value && value.binary_base64) {
    return invalid(
        "You can't specify both a binary secret value and a string secret value in the same "
        "secret: give SecretString or SecretBinary.");
  }
  if (value.binary_base64) {
    auto decoded = base64_decode(*value.binary_base64);
    if (!decoded || decoded->empty()) {
      return invalid("SecretBinary must be non-empty base64-encoded bytes.");
    }
  }
  return value;
}

Result<SecretTags> read_tags(const bj::object& input, std::string_view member) {
  SecretTags tags;
  const auto* list = json::get_array(input, member);
  if (list == nullptr) return tags;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    std::string key = json::string_or(item.as_object(), "Key", "");
    if (key.empty()) return invalid("Every tag needs a non-empty Key.");
    if (key.starts_with("aws:")) {
      return invalid("Tag keys starting with 'aws:' are reserved for AWS: rename the tag '" + key +
                     "'.");
    }
    tags.emplace_back(std::move(key), json::string_or(item.as_object(), "Value", ""));
  }
  return tags;
}

// Adds or replaces tags by key; a secret may have at most kMaxTags.
Status merge_tags(SecretTags& tags, const SecretTags& added) {
  SecretTags merged = tags;
  for (const auto& [key, value] : added) {
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&](const auto& tag) { return tag.first == key; });
    if (same != merged.end()) {
      same->second = value;
    } else {
      merged.emplace_back(key, value);
    }
  }
  if (merged.size() > kMaxTags) {
    return invalid("A secret can have at most " + std::to_string(kMaxTags) + " tags.");
  }
  tags = std::move(merged);
  return {};
}

// Adds the given value as a new version with `stages`, its id the ClientRequestToken or a new
// UUID, and returns the id.
std::string add_given_version(Secret& secret, const GivenValue& value, const std::string& token,
                              std::vector<std::string> stages, TimePoint now) {
  std::string id = token.empty() ? new_uuid() : token;
  secret.add_version(
      SecretVersion{id, value.string_value, value.binary_base64, std::move(stages), now});
  return id;
}

// A secret whose recovery window has passed: gone for every reader, its record removed by the
// next write in its region.
bool gone(const Secret& secret, TimePoint now) {
  return secret.deletion_date && *secret.deletion_date <= now;
}

bool same_value(const SecretVersion& version, const GivenValue& value) {
  return version.string_value == value.string_value && version.binary_base64 == value.binary_base64;
}

// A ClientRequestToken that names an existing version is a retry when the value is the same,
// and an error otherwise: versions never change.
Result<bool> is_retry(const Secret& secret, std::string_view token, const GivenValue& value) {
  const SecretVersion* existing = secret.find_version(token);
  if (existing == nullptr) return false;
  if (same_value(*existing, value)) return true;
  return already_exists(
      "You can't modify an existing version, you can only create a new version: give a new "
      "ClientRequestToken.");
}

// The lower-case runs of letters and digits in `text`, as the "all" filter compares them.
std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (char character : text) {
    if (std::isalnum(static_cast<unsigned char>(character))) {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(character))));
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

bool any_word_starts_with(const std::vector<std::string>& haystack, std::string_view needle) {
  return std::any_of(haystack.begin(), haystack.end(),
                     [&](const std::string& word) { return word.starts_with(needle); });
}

// Whether `secret` matches one filter value (without its negating '!') under `key`.
bool matches_value(const Secret& secret, std::string_view key, std::string_view value,
                   std::string_view region) {
  auto any_tag = [&](auto&& test) {
    return std::any_of(secret.tags.begin(), secret.tags.end(), test);
  };
  if (key == "name") return secret.name.starts_with(value);
  if (key == "description") return lower(secret.description).starts_with(lower(value));
  if (key == "tag-key")
    return any_tag([&](const auto& tag) { return tag.first.starts_with(value); });
  if (key == "tag-value") {
    return any_tag([&](const auto& tag) { return tag.second.starts_with(value); });
  }
  if (key == "primary-region") return region.starts_with(value);
  if (key == "owning-service") return false;  // no secret here is managed by another service
  // "all": any word of the value begins a word of the name, description, or a tag.
  std::vector<std::string> haystack = words(secret.name);
  for (auto& word : words(secret.description)) haystack.push_back(std::move(word));
  for (const auto& [tag_key, tag_value] : secret.tags) {
    for (auto& word : words(tag_key)) haystack.push_back(std::move(word));
    for (auto& word : words(tag_value)) haystack.push_back(std::move(word));
  }
  auto wanted = words(value);
  return std::any_of(wanted.begin(), wanted.end(),
                     [&](const std::string& word) { return any_word_starts_with(haystack, word); });
}

// Filters all apply; within one, any value may match; a value starting with '!' matches the
// secrets the rest of it does not.
bool matches_filters(const Secret& secret, const bj::array* filters, std::string_view region) {
  if (filters == nullptr) return true;
  for (const auto& item : *filters) {
    if (!item.is_object()) continue;
    std::string key = json::string_or(item.as_object(), "Key", "all");
    auto values = json::get_strings(item.as_object(), "Values");
    bool matched = values.empty();
    for (std::string_view value : values) {
      bool negated = value.starts_with('!');
      if (negated) value.remove_prefix(1);
      if (matches_value(secret, key, value, region) != negated) matched = true;
    }
    if (!matched) return false;
  }
  return true;
}

// ListSecrets' order: by SortBy (created-date by default), SortOrder desc by default.
std::vector<const Secret*> sorted(std::vector<const Secret*> secrets, const bj::object& input) {
  std::string by = json::string_or(input, "SortBy", "created-date");
  bool ascending = json::string_or(input, "SortOrder", "desc") == "asc";
  auto key = [&](const Secret* secret) -> std::pair<double, std::string> {
    if (by == "name") return {0, secret->name};
    TimePoint when = secret->created;
    if (by == "last-changed-date") when = secret->last_changed;
    if (by == "last-accessed-date") when = secret->last_accessed.value_or(TimePoint{});
    return {epoch_seconds(when), secret->arn};
  };
  std::stable_sort(secrets.begin(), secrets.end(), [&](const Secret* left, const Secret* right) {
    return ascending ? key(left) < key(right) : key(right) < key(left);
  });
  return secrets;
}

constexpr aws::PageMembers kPageMembers{"MaxResults", "NextToken", "InvalidNextTokenException"};

}  // namespace

SecretsApi::SecretsApi(store::Store& store, const Clock& clock, const aws::PageTokens& tokens)
    : store_(store), clock_(clock), tokens_(tokens) {}

Status SecretsApi::load() {
  auto records = store_.load(kSecretKind);
  if (!records) return std::unexpected(records.error().context("loading secrets"));
  std::lock_guard lock(mutex_);
  for (const auto& record : *records) {
    auto slash = record.key.find('/');
    auto secret = secret_from_store(record.value);
    if (slash == std::string::npos || !secret) {
      return fail(ErrorCode::kInternal,
                  "loading secrets: the record " + record.key + " is damaged");
    }
    std::string name = secret->name;
    regions_[record.key.substr(0, slash)][name] = std::move(*secret);
  }
  return {};
}

void SecretsApi::register_operations(aws::JsonService& service) {
  using Method = void (SecretsApi::*)(const Context&, const Input&, Reply);
  auto bind = [&](const char* name, Method method) {
    service.add(name, [this, method](const Context& context, const Input& input, Reply reply) {
      (this->*method)(context, input, std::move(reply));
    });
  };
  bind("CreateSecret", &SecretsApi::create_secret);
  bind("DescribeSecret", &SecretsApi::describe_secret);
  bind("GetSecretValue", &SecretsApi::get_secret_value);
  bind("BatchGetSecretValue", &SecretsApi::batch_get_secret_value);
  bind("PutSecretValue", &SecretsApi::put_secret_value);
  bind("UpdateSecret", &SecretsApi::update_secret);
  bind("ListSecrets", &SecretsApi::list_secrets);
  bind("ListSecretVersionIds", &SecretsApi::list_secret_version_ids);
  bind("DeleteSecret", &SecretsApi::delete_secret);
  bind("RestoreSecret", &SecretsApi::restore_secret);
  bind("TagResource", &SecretsApi::tag_resource);
  bind("UntagResource", &SecretsApi::untag_resource);
  bind("GetRandomPassword", &SecretsApi::get_random_password);
}

SecretsApi::Secrets& SecretsApi::region(const std::string& name,
                                        std::vector<store::Mutation>* mutations) {
  auto& secrets = regions_[name];
  if (mutations == nullptr) return secrets;
  TimePoint now = clock_.now();
  for (auto secret = secrets.begin(); secret != secrets.end();) {
    if (!gone(secret->second, now)) {
      ++secret;
      continue;
    }
    mutations->push_back(remove(name, secret->second));
    secret = secrets.erase(secret);
  }
  return secrets;
}

Result<Secret*> SecretsApi::find(const Context& context, std::string_view secret_id,
                                 std::vector<store::Mutation>* mutations) {
  auto& secrets = region(context.region, mutations);
  auto visible = [&](Secrets::iterator found) -> Result<Secret*> {
    if (found == secrets.end() || gone(found->second, clock_.now())) return not_found();
    return &found->second;
  };
  if (!looks_like_arn(secret_id)) return visible(secrets.find(secret_id));
  auto arn = parse_arn(secret_id);
  if (!arn || arn->service != "secretsmanager" || !arn->resource.starts_with("secret:")) {
    return invalid("'" + std::string(secret_id) +
                   "' is not a secret ARN: expected "
                   "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, or give the name.");
  }
  if (arn->region != context.region || arn->account != context.account_id) return not_found();
  std::string_view name =
      std::string_view(arn->resource).substr(std::string_view("secret:").size());
  // A full ARN ends in the random suffix; a partial one is just the name. The full ARN wins:
  // "app-Ab12Cd" may also be the name of another secret.
  if (name.size() > 7 && name[name.size() - 7] == '-') {
    auto suffixed = secrets.find(name.substr(0, name.size() - 7));
    if (suffixed != secrets.end() && suffixed->second.arn == secret_id) return visible(suffixed);
  }
  return visible(secrets.find(name));
}

Result<const SecretVersion*> SecretsApi::select_version(const Secret& secret,
                                                        const Input& input) const {
  auto version_id = json::get_string(input, "VersionId");
  auto stage = json::get_string(input, "VersionStage");
  if (version_id) {
    const SecretVersion* version = secret.find_version(*version_id);
    if (version == nullptr) {
      return fail(
          ErrorCode::kNotFound,
          "Secrets Manager can't find the specified secret value for VersionId: " + *version_id);
    }
    if (stage && !version->has_stage(*stage)) {
      return invalid("The version " + *version_id + " does not have the staging label " + *stage +
                     ": give either VersionId or VersionStage, or a pair that belongs together.");
    }
    return version;
  }
  std::string wanted = stage.value_or(std::string(kCurrentStage));
  const SecretVersion* version = secret.find_stage(wanted);
  if (version == nullptr) {
    return fail(
        ErrorCode::kNotFound,
        "Secrets Manager can't find the specified secret value for staging label: " + wanted);
  }
  return version;
}

bool SecretsApi::touch(Secret& secret) {
  // AWS records the day of the last access, not the moment.
  auto day = std::chrono::floor<std::chrono::days>(clock_.now());
  if (secret.last_accessed == TimePoint(day)) return false;
  secret.last_accessed = TimePoint(day);
  return true;
}

void SecretsApi::record_access(std::vector<store::Mutation> mutations) {
  if (mutations.empty()) return;
  store_.commit(std::move(mutations), [](Status status) {
    if (!status) spdlog::warn("recording a secret's last access: {}", status.error().message);
  });
}

store::Mutation SecretsApi::put(const std::string& region, const Secret& secret) {
  return {kSecretKind, region + "/" + secret.name, secret_to_store(secret)};
}

store::Mutation SecretsApi::remove(const std::string& region, const Secret& secret) {
  return {kSecretKind, region + "/" + secret.name, std::nullopt};
}

void SecretsApi::create_secret(const Context& context, const Input& input, Reply reply) {
  std::string name = json::string_or(input, "Name", "");
  if (auto status = check_name(name); !status) return reply(std::unexpected(status.error()));
  auto value = read_value(input);
  if (!value) return reply(std::unexpected(value.error()));
  auto tags = read_tags(input, "Tags");
  if (!tags) return reply(std::unexpected(tags.error()));
  SecretTags checked;
  if (auto status = merge_tags(checked, *tags); !status) {
    return reply(std::unexpected(status.error()));
  }
  std::string token = json::string_or(input, "ClientRequestToken", "");

  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto& secrets = region(context.region, &mutations);
  if (auto existing = secrets.find(name); existing != secrets.end()) {
    const Secret& secret = existing->second;
    if (secret.deleted) {
      return reply(invalid_request(
          "You can't create this secret because a secret with this name is already scheduled "
          "for deletion. Restore it with RestoreSecret, or choose another name."));
    }
    auto retry = token.empty() ? Result<bool>(false) : is_retry(secret, token, *value);
    if (retry && *retry) {
      mutations.push_back(put(context.region, secret));  // answered once the original is durable
      return store::commit_then_reply(
          store_, std::move(mutations),
          bj::object{{"ARN", secret.arn}, {"Name", secret.name}, {"VersionId", token}},
          std::move(reply));
    }
    return reply(
        already_exists("The operation failed because the secret " + name + " already exists."));
  }
  TimePoint now = clock_.now();
  Secret secret;
  secret.arn = Arn{"aws", "secretsmanager", context.region, context.account_id,
                   "secret:" + name + arn_suffix()}
                   .str();
  secret.name = name;
  secret.description = json::string_or(input, "Description", "");
  secret.kms_key_id = json::string_or(input, "KmsKeyId", "");
  secret.tags = std::move(checked);
  secret.created = secret.last_changed = now;
  bj::object output{{"ARN", secret.arn}, {"Name", secret.name}};
  if (value->given()) {
    output["VersionId"] =
        add_given_version(secret, *value, token, {std::string(kCurrentStage)}, now);
  }
  mutations.push_back(put(context.region, secret));
  secrets.emplace(name, std::move(secret));
  store::commit_then_reply(store_, std::move(mutations), std::move(output), std::move(reply));
}

void SecretsApi::describe_secret(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  auto secret = find(context, json::string_or(input, "SecretId", ""));
  if (!secret) return reply(std::unexpected(secret.error()));
  reply(describe_to_wire(**secret));
}

void SecretsApi::get_secret_value(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  if ((*secret)->deleted) return reply(marked_for_deletion());
  auto version = select_version(**secret, input);
  if (!version) return reply(std::unexpected(version.error()));
  bj::object output = value_to_wire(**secret, **version);
  if (touch(**secret)) mutations.push_back(put(context.region, **secret));
  record_access(std::move(mutations));
  reply(std::move(output));
}

void SecretsApi::batch_get_secret_value(const Context& context, const Input& input, Reply reply) {
  const auto* ids = json::get_array(input, "SecretIdList");
  const auto* filters = json::get_array(input, "Filters");
  if ((ids == nullptr) == (filters == nullptr)) {
    return reply(invalid("Give either SecretIdList or Filters, not both and not neither."));
  }
  if (ids != nullptr && (input.contains("MaxResults") || input.contains("NextToken"))) {
    return reply(
        invalid("MaxResults and NextToken page a listing by Filters; with SecretIdList "
                "every secret named is answered at once."));
  }
  if (ids != nullptr && ids->size() > kMaxBatchIds) {
    return reply(
        invalid("SecretIdList may name at most " + std::to_string(kMaxBatchIds) + " secrets."));
  }
  std::string scope =
      "BatchGetSecretValue\n" +
      bj::serialize(input.contains("Filters") ? input.at("Filters") : bj::value(nullptr));
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 20, 20, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  bj::array values;
  bj::array errors;
  bj::object output;
  auto add_value = [&](Secret& secret) {
    const SecretVersion* current = secret.find_stage(kCurrentStage);
    if (current == nullptr) return false;
    values.push_back(value_to_wire(secret, *current));
    if (touch(secret)) mutations.push_back(put(context.region, secret));
    return true;
  };
  if (ids != nullptr) {
    for (const auto& id : *ids) {
      std::string secret_id = id.is_string() ? std::string(id.as_string()) : "";
      auto secret = find(context, secret_id, &mutations);
      Status status = secret ? Status{} : Status(std::unexpected(secret.error()));
      if (secret && (*secret)->deleted) status = marked_for_deletion();
      if (status && !add_value(**secret)) {
        status = fail(ErrorCode::kNotFound,
                      "Secrets Manager can't find the specified secret value for staging label: " +
                          std::string(kCurrentStage));
      }
      if (status) continue;
      errors.push_back(
          bj::object{{"SecretId", secret_id},
                     {"ErrorCode", aws::to_wire(status.error(), "secretsmanager").type},
                     {"Message", status.error().message}});
    }
  } else {
    auto& secrets = region(context.region, &mutations);
    std::vector<Secret*> matching;
    for (auto& [name, secret] : secrets) {
      if (!secret.deleted && matches_filters(secret, filters, context.region)) {
        matching.push_back(&secret);
      }
    }
    auto last = aws::emit_page(
        matching, *page, [](const Secret* secret) { return secret->name; },
        [&](Secret* secret) { add_value(*secret); });
    if (last) output["NextToken"] = tokens_.issue(scope, *last, clock_.now());
  }
  output["SecretValues"] = std::move(values);
  output["Errors"] = std::move(errors);
  record_access(std::move(mutations));
  reply(std::move(output));
}

void SecretsApi::put_secret_value(const Context& context, const Input& input, Reply reply) {
  auto value = read_value(input);
  if (!value) return reply(std::unexpected(value.error()));
  if (!value->given()) {
    return reply(invalid("You must provide either SecretString or SecretBinary."));
  }
  std::vector<std::string> stages = json::get_strings(input, "VersionStages");
  if (!input.contains("VersionStages")) stages = {std::string(kCurrentStage)};
  std::string token = json::string_or(input, "ClientRequestToken", "");

  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  if ((*secret)->deleted) return reply(marked_for_deletion());
  if (!token.empty()) {
    auto retry = is_retry(**secret, token, *value);
    if (!retry) return reply(std::unexpected(retry.error()));
    if (*retry) {
      const SecretVersion* version = (*secret)->find_version(token);
      mutations.push_back(put(context.region, **secret));  // answered once the original is durable
      return store::commit_then_reply(
          store_, std::move(mutations),
          bj::object{{"ARN", (*secret)->arn},
                     {"Name", (*secret)->name},
                     {"VersionId", token},
                     {"VersionStages", json::strings_array(version->stages)}},
          std::move(reply));
    }
  }
  TimePoint now = clock_.now();
  std::string version_id = add_given_version(**secret, *value, token, stages, now);
  (*secret)->last_changed = now;
  mutations.push_back(put(context.region, **secret));
  store::commit_then_reply(store_, std::move(mutations),
                           bj::object{{"ARN", (*secret)->arn},
                                      {"Name", (*secret)->name},
                                      {"VersionId", version_id},
                                      {"VersionStages", json::strings_array(stages)}},
                           std::move(reply));
}

void SecretsApi::update_secret(const Context& context, const Input& input, Reply reply) {
  auto value = read_value(input);
  if (!value) return reply(std::unexpected(value.error()));
  std::string token = json::string_or(input, "ClientRequestToken", "");

  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  Secret& target = **secret;
  if (target.deleted) return reply(marked_for_deletion());
  bj::object output{{"ARN", target.arn}, {"Name", target.name}};
  bool new_value = value->given();
  if (new_value && !token.empty()) {
    auto retry = is_retry(target, token, *value);
    if (!retry) return reply(std::unexpected(retry.error()));
    if (*retry) {
      output["VersionId"] = token;
      mutations.push_back(put(context.region, target));  // answered once the original is durable
      return store::commit_then_reply(store_, std::move(mutations), std::move(output),
                                      std::move(reply));
    }
  }
  TimePoint now = clock_.now();
  if (auto description = json::get_string(input, "Description")) target.description = *description;
  if (auto key = json::get_string(input, "KmsKeyId")) target.kms_key_id = *key;
  if (new_value) {
    output["VersionId"] =
        add_given_version(target, *value, token, {std::string(kCurrentStage)}, now);
  }
  target.last_changed = now;
  mutations.push_back(put(context.region, target));
  store::commit_then_reply(store_, std::move(mutations), std::move(output), std::move(reply));
}

void SecretsApi::list_secrets(const Context& context, const Input& input, Reply reply) {
  bool include_deleted = json::get_bool(input, "IncludePlannedDeletion").value_or(false);
  const auto* filters = json::get_array(input, "Filters");
  std::string scope = "ListSecrets\n" + std::string(include_deleted ? "D" : "") + "\n" +
                      json::string_or(input, "SortBy", "") + "\n" +
                      json::string_or(input, "SortOrder", "") + "\n" +
                      (filters ? bj::serialize(*filters) : "");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  TimePoint now = clock_.now();
  std::vector<const Secret*> matching;
  for (const auto& [name, secret] : region(context.region)) {
    if (gone(secret, now) || (secret.deleted && !include_deleted)) continue;
    if (matches_filters(secret, filters, context.region)) matching.push_back(&secret);
  }
  auto ordered = sorted(std::move(matching), input);
  bj::array list;
  bj::object output;
  auto last = aws::emit_page(
      ordered, *page, [](const Secret* secret) { return secret->arn; },
      [&](const Secret* secret) { list.push_back(list_entry_to_wire(*secret)); });
  if (last) output["NextToken"] = tokens_.issue(scope, *last, now);
  output["SecretList"] = std::move(list);
  reply(std::move(output));
}

void SecretsApi::list_secret_version_ids(const Context& context, const Input& input, Reply reply) {
  bool include_deprecated = json::get_bool(input, "IncludeDeprecated").value_or(false);
  std::string secret_id = json::string_or(input, "SecretId", "");
  std::string scope = "ListSecretVersionIds\n" + secret_id + (include_deprecated ? "\nD" : "");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  auto secret = find(context, secret_id);
  if (!secret) return reply(std::unexpected(secret.error()));
  std::vector<const SecretVersion*> versions;
  for (const auto& version : (*secret)->versions) {
    if (include_deprecated || !version.stages.empty()) versions.push_back(&version);
  }
  bj::array list;
  bj::object output{{"ARN", (*secret)->arn}, {"Name", (*secret)->name}};
  auto last = aws::emit_page(
      versions, *page, [](const SecretVersion* version) { return version->id; },
      [&](const SecretVersion* version) {
        list.push_back(bj::object{{"VersionId", version->id},
                                  {"VersionStages", json::strings_array(version->stages)},
                                  {"CreatedDate", epoch_seconds(version->created)}});
      });
  if (last) output["NextToken"] = tokens_.issue(scope, *last, clock_.now());
  output["Versions"] = std::move(list);
  reply(std::move(output));
}

void SecretsApi::delete_secret(const Context& context, const Input& input, Reply reply) {
  bool force = json::get_bool(input, "ForceDeleteWithoutRecovery").value_or(false);
  auto days = json::get_int(input, "RecoveryWindowInDays");
  if (force && days) {
    return reply(invalid(
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays: give "
        "one of them."));
  }
  if (days && (*days < 7 || *days > 30)) {
    return reply(
        invalid("The RecoveryWindowInDays value must be between 7 and 30 days "
                "(inclusive)."));
  }

  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  Secret& target = **secret;
  if (target.deleted && !force) {
    return reply(invalid_request(
        "The secret " + target.name +
        " is already scheduled for deletion. Restore it with RestoreSecret, or delete it at once "
        "with ForceDeleteWithoutRecovery."));
  }
  TimePoint now = clock_.now();
  TimePoint deletion = force ? now : now + std::chrono::days(days.value_or(kDefaultRecoveryDays));
  bj::object output{
      {"ARN", target.arn}, {"Name", target.name}, {"DeletionDate", epoch_seconds(deletion)}};
  if (force) {
    mutations.push_back(remove(context.region, target));
    regions_[context.region].erase(target.name);
  } else {
    target.deleted = now;
    target.deletion_date = deletion;
    mutations.push_back(put(context.region, target));
  }
  store::commit_then_reply(store_, std::move(mutations), std::move(output), std::move(reply));
}

void SecretsApi::restore_secret(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  Secret& target = **secret;
  target.deleted.reset();
  target.deletion_date.reset();
  mutations.push_back(put(context.region, target));
  store::commit_then_reply(store_, std::move(mutations),
                           bj::object{{"ARN", target.arn}, {"Name", target.name}},
                           std::move(reply));
}

void SecretsApi::tag_resource(const Context& context, const Input& input, Reply reply) {
  auto tags = read_tags(input, "Tags");
  if (!tags) return reply(std::unexpected(tags.error()));
  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  if ((*secret)->deleted) return reply(marked_for_deletion());
  if (auto status = merge_tags((*secret)->tags, *tags); !status) {
    return reply(std::unexpected(status.error()));
  }
  mutations.push_back(put(context.region, **secret));
  store::commit_then_reply(store_, std::move(mutations), bj::object{}, std::move(reply));
}

void SecretsApi::untag_resource(const Context& context, const Input& input, Reply reply) {
  auto keys = json::get_strings(input, "TagKeys");
  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto secret = find(context, json::string_or(input, "SecretId", ""), &mutations);
  if (!secret) return reply(std::unexpected(secret.error()));
  if ((*secret)->deleted) return reply(marked_for_deletion());
  std::erase_if((*secret)->tags, [&](const auto& tag) {
    return std::find(keys.begin(), keys.end(), tag.first) != keys.end();
  });
  mutations.push_back(put(context.region, **secret));
  store::commit_then_reply(store_, std::move(mutations), bj::object{}, std::move(reply));
}

void SecretsApi::get_random_password(const Context&, const Input& input, Reply reply) {
  PasswordOptions options;
  options.length = json::get_int(input, "PasswordLength").value_or(options.length);
  options.exclude_characters = json::string_or(input, "ExcludeCharacters", "");
  options.exclude_numbers = json::get_bool(input, "ExcludeNumbers").value_or(false);
  options.exclude_punctuation = json::get_bool(input, "ExcludePunctuation").value_or(false);
  options.exclude_uppercase = json::get_bool(input, "ExcludeUppercase").value_or(false);
  options.exclude_lowercase = json::get_bool(input, "ExcludeLowercase").value_or(false);
  options.include_space = json::get_bool(input, "IncludeSpace").value_or(false);
  options.require_each_included_type =
      json::get_bool(input, "RequireEachIncludedType").value_or(true);
  auto password = random_password(options, [](std::size_t count) { return random_bytes(count); });
  if (!password) return reply(std::unexpected(password.error()));
  reply(bj::object{{"RandomPassword", *password}});
}

}  // namespace wharf::secrets
