// Secret: version stages, the stored form and the wire shapes.
#include "secrets/secret.hpp"

#include <boost/json.hpp>

#include <algorithm>

#include "common/json.hpp"

namespace wharf::secrets {

namespace bj = boost::json;

namespace {

// AWS keeps at most this many versions of a secret; beyond it, the oldest versions without a
// staging label (deprecated ones) are removed.
constexpr std::size_t kMaxVersions = 100;

bj::value date(TimePoint t) {
  return epoch_seconds(t);
}

bj::object versions_to_stages(const Secret& secret) {
  bj::object out;
  for (const auto& version : secret.versions) {
    if (!version.stages.empty()) out[version.id] = json::strings_array(version.stages);
  }
  return out;
}

// What DescribeSecret and ListSecrets share.
bj::object summary_to_wire(const Secret& secret) {
  bj::object out{{"ARN", secret.arn}, {"Name", secret.name}};
  if (!secret.description.empty()) out["Description"] = secret.description;
  if (!secret.kms_key_id.empty()) out["KmsKeyId"] = secret.kms_key_id;
  out["LastChangedDate"] = date(secret.last_changed);
  if (secret.last_accessed) out["LastAccessedDate"] = date(*secret.last_accessed);
  if (secret.deleted) out["DeletedDate"] = date(*secret.deleted);
  if (!secret.tags.empty()) out["Tags"] = tags_to_wire(secret.tags);
  out["CreatedDate"] = date(secret.created);
  return out;
}

void take_stage(std::vector<SecretVersion>& versions, std::string_view stage,
                std::string* previous_holder) {
  for (auto& version : versions) {
    auto found = std::find(version.stages.begin(), version.stages.end(), stage);
    if (found == version.stages.end()) continue;
    version.stages.erase(found);
    if (previous_holder) *previous_holder = version.id;
  }
}

void drop_deprecated(std::vector<SecretVersion>& versions) {
  for (auto version = versions.begin();
       versions.size() > kMaxVersions && version != versions.end();) {
    version = version->stages.empty() ? versions.erase(version) : version + 1;
  }
}

std::optional<TimePoint> optional_date(const bj::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (!value || !value->is_number()) return std::nullopt;
  return from_epoch_seconds(value->to_number<double>());
}

TimePoint date_or_epoch(const bj::object& object, std::string_view name) {
  return optional_date(object, name).value_or(TimePoint{});
}

}  // namespace

bool SecretVersion::has_stage(std::string_view stage) const {
  return std::find(stages.begin(), stages.end(), stage) != stages.end();
}

const SecretVersion* Secret::find_version(std::string_view id) const {
  for (const auto& version : versions) {
    if (version.id == id) return &version;
  }
  return nullptr;
}

const SecretVersion* Secret::find_stage(std::string_view stage) const {
  for (const auto& version : versions) {
    if (version.has_stage(stage)) return &version;
  }
  return nullptr;
}

void Secret::add_version(SecretVersion version) {
  // A version that is given AWSPREVIOUS itself keeps it: the old current one then gets none.
  bool previous_given = version.has_stage(kPreviousStage);
  for (const auto& stage : version.stages) {
    std::string previous_current;
    take_stage(versions, stage, stage == kCurrentStage ? &previous_current : nullptr);
    if (previous_current.empty() || previous_given) continue;
    take_stage(versions, kPreviousStage, nullptr);
    for (auto& old : versions) {
      if (old.id == previous_current) old.stages.emplace_back(kPreviousStage);
    }
  }
  versions.push_back(std::move(version));
  drop_deprecated(versions);
}

std::string secret_to_store(const Secret& secret) {
  bj::object out{{"arn", secret.arn},
                 {"name", secret.name},
                 {"description", secret.description},
                 {"kmsKeyId", secret.kms_key_id},
                 {"tags", tags_to_wire(secret.tags)},
                 {"created", date(secret.created)},
                 {"lastChanged", date(secret.last_changed)}};
  if (secret.last_accessed) out["lastAccessed"] = date(*secret.last_accessed);
  if (secret.deleted) out["deleted"] = date(*secret.deleted);
  if (secret.deletion_date) out["deletionDate"] = date(*secret.deletion_date);
  bj::array versions;
  for (const auto& version : secret.versions) {
    bj::object stored{{"id", version.id},
                      {"stages", json::strings_array(version.stages)},
                      {"created", date(version.created)}};
    if (version.string_value) stored["string"] = *version.string_value;
    if (version.binary_base64) stored["binary"] = *version.binary_base64;
    versions.push_back(std::move(stored));
  }
  out["versions"] = std::move(versions);
  return bj::serialize(out);
}

Result<Secret> secret_from_store(std::string_view text) {
  boost::system::error_code ec;
  auto parsed = bj::parse(text, ec);
  if (ec || !parsed.is_object()) return fail(ErrorCode::kInternal, "a stored secret is not JSON");
  const auto& in = parsed.as_object();
  Secret secret;
  secret.arn = json::string_or(in, "arn", "");
  secret.name = json::string_or(in, "name", "");
  if (secret.arn.empty() || secret.name.empty()) {
    return fail(ErrorCode::kInternal, "a stored secret lacks its name or ARN");
  }
  secret.description = json::string_or(in, "description", "");
  secret.kms_key_id = json::string_or(in, "kmsKeyId", "");
  if (const auto* tags = in.if_contains("tags"); tags && tags->is_array()) {
    for (const auto& tag : tags->as_array()) {
      if (!tag.is_object()) continue;
      secret.tags.emplace_back(json::string_or(tag.as_object(), "Key", ""),
                               json::string_or(tag.as_object(), "Value", ""));
    }
  }
  secret.created = date_or_epoch(in, "created");
  secret.last_changed = date_or_epoch(in, "lastChanged");
  secret.last_accessed = optional_date(in, "lastAccessed");
  secret.deleted = optional_date(in, "deleted");
  secret.deletion_date = optional_date(in, "deletionDate");
  if (const auto* versions = in.if_contains("versions"); versions && versions->is_array()) {
    for (const auto& item : versions->as_array()) {
      if (!item.is_object()) continue;
      const auto& stored = item.as_object();
      SecretVersion version;
      version.id = json::string_or(stored, "id", "");
      if (const auto* value = stored.if_contains("string"); value && value->is_string()) {
        version.string_value = std::string(value->as_string());
      }
      if (const auto* value = stored.if_contains("binary"); value && value->is_string()) {
        version.binary_base64 = std::string(value->as_string());
      }
      version.stages = json::get_strings(stored, "stages");
      version.created = date_or_epoch(stored, "created");
      secret.versions.push_back(std::move(version));
    }
  }
  return secret;
}

bj::object describe_to_wire(const Secret& secret) {
  bj::object out = summary_to_wire(secret);
  out["VersionIdsToStages"] = versions_to_stages(secret);
  return out;
}

bj::object list_entry_to_wire(const Secret& secret) {
  bj::object out = summary_to_wire(secret);
  out["SecretVersionsToStages"] = versions_to_stages(secret);
  return out;
}

bj::object value_to_wire(const Secret& secret, const SecretVersion& version) {
  bj::object out{{"ARN", secret.arn}, {"Name", secret.name}, {"VersionId", version.id}};
  if (version.string_value) out["SecretString"] = *version.string_value;
  if (version.binary_base64) out["SecretBinary"] = *version.binary_base64;
  out["VersionStages"] = json::strings_array(version.stages);
  out["CreatedDate"] = date(version.created);
  return out;
}

bj::array tags_to_wire(const SecretTags& tags) {
  bj::array out;
  for (const auto& [key, value] : tags) out.push_back(bj::object{{"Key", key}, {"Value", value}});
  return out;
}

}  // namespace wharf::secrets
