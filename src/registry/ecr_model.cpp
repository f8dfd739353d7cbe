// ECR wire shapes.
#include "registry/ecr_model.hpp"

namespace wharf::registry {

namespace bj = boost::json;

StoredScan StoredScan::from_report(const ScanReport& report) {
  return {report.status, report.description, report.findings};
}

StoredScan StoredScan::failed(std::string description) {
  return {"FAILED", std::move(description), {}};
}

std::string StoredScan::to_json() const {
  return bj::serialize(
      bj::object{{"status", status}, {"description", description}, {"findings", findings}});
}

Result<StoredScan> StoredScan::from_json(std::string_view text) {
  boost::system::error_code parse_error;
  auto value = bj::parse(text, parse_error);
  if (parse_error || !value.is_object()) {
    return fail(ErrorCode::kInternal, "a stored scan result is not JSON");
  }
  const auto& object = value.as_object();
  StoredScan scan;
  if (const auto* status = object.if_contains("status"); status && status->is_string()) {
    scan.status = std::string(status->as_string());
  }
  if (const auto* description = object.if_contains("description");
      description && description->is_string()) {
    scan.description = std::string(description->as_string());
  }
  if (const auto* findings = object.if_contains("findings"); findings && findings->is_object()) {
    scan.findings = findings->as_object();
  }
  return scan;
}

bj::object repository_to_wire(const Repository& repository, std::string_view registry_host) {
  bj::object encryption{{"encryptionType", repository.encryption_type}};
  if (repository.kms_key) encryption["kmsKey"] = *repository.kms_key;
  bj::object wire{
      {"repositoryArn", repository.arn},
      {"registryId", repository.ref.account_id},
      {"repositoryName", repository.ref.name},
      {"repositoryUri", std::string(registry_host) + "/" + repository.ref.name},
      {"createdAt", epoch_seconds(repository.created_at)},
      {"imageTagMutability", repository.tag_mutability},
      {"imageScanningConfiguration", bj::object{{"scanOnPush", repository.scan_on_push}}},
      {"encryptionConfiguration", std::move(encryption)},
  };
  if (!repository.tag_mutability_exclusions.empty()) {
    bj::array filters;
    for (const auto& filter : repository.tag_mutability_exclusions) {
      filters.push_back(bj::object{{"filterType", "WILDCARD"}, {"filter", filter}});
    }
    wire["imageTagMutabilityExclusionFilters"] = std::move(filters);
  }
  return wire;
}

bj::object image_id_to_wire(const oci::Digest& digest, const std::optional<std::string>& tag) {
  bj::object id{{"imageDigest", digest.str()}};
  if (tag) id["imageTag"] = *tag;
  return id;
}

bj::object scan_status_to_wire(std::string_view status, std::string_view description) {
  bj::object wire{{"status", status}};
  if (!description.empty()) wire["description"] = description;
  return wire;
}

bj::object scan_summary_to_wire(const StoredScan& scan) {
  bj::object summary;
  for (const char* key :
       {"imageScanCompletedAt", "vulnerabilitySourceUpdatedAt", "findingSeverityCounts"}) {
    if (const auto* value = scan.findings.if_contains(key)) summary[key] = *value;
  }
  return summary;
}

bj::object image_detail_to_wire(const RepositoryRef& ref, const Image& image,
                                const std::optional<StoredScan>& scan, bool scan_in_progress) {
  bj::array tags;
  for (const auto& tag : image.tags) tags.emplace_back(tag);
  bj::object detail{
      {"registryId", ref.account_id},
      {"repositoryName", ref.name},
      {"imageDigest", image.digest.str()},
      {"imageSizeInBytes", image.size_in_bytes},
      {"imagePushedAt", epoch_seconds(image.pushed_at)},
      {"imageManifestMediaType", image.media_type},
  };
  if (!tags.empty()) detail["imageTags"] = std::move(tags);
  if (std::string artifact = image.artifact_media_type(); !artifact.empty()) {
    detail["artifactMediaType"] = artifact;
  }
  if (image.last_pulled_at) detail["lastRecordedPullTime"] = epoch_seconds(*image.last_pulled_at);
  if (auto subject = image.subject()) detail["subjectManifestDigest"] = subject->str();
  if (scan_in_progress) {
    detail["imageScanStatus"] = scan_status_to_wire("IN_PROGRESS", "");
  } else if (scan) {
    detail["imageScanStatus"] = scan_status_to_wire(scan->status, scan->description);
    if (scan->status == "COMPLETE")
      detail["imageScanFindingsSummary"] = scan_summary_to_wire(*scan);
  }
  return detail;
}

bj::array tags_to_wire(const std::map<std::string, std::string>& tags) {
  bj::array wire;
  for (const auto& [key, value] : tags) wire.push_back(bj::object{{"Key", key}, {"Value", value}});
  return wire;
}

EcrTags tags_from_wire(const bj::array& tags) {
  EcrTags result;
  for (const auto& item : tags) {
    if (!item.is_object()) continue;
    const auto& tag = item.as_object();
    const auto* key = tag.if_contains("Key");
    const auto* value = tag.if_contains("Value");
    result.emplace_back(
        key && key->is_string() ? std::string(key->as_string()) : std::string(),
        value && value->is_string() ? std::string(value->as_string()) : std::string());
  }
  return result;
}

}  // namespace wharf::registry
