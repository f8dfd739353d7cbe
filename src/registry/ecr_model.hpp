// ECR wire shapes: how repositories, images, tags and scan results appear in ECR responses,
// and the stored form of a scan result. Handlers build responses from these, never field by
// field.
#pragma once

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "registry/ecr_validation.hpp"
#include "registry/registry_state.hpp"
#include "registry/scanner.hpp"

namespace wharf::registry {

// A finished scan as RegistryState keeps it (opaque JSON there).
struct StoredScan {
  std::string status;  // COMPLETE | FAILED | UNSUPPORTED_IMAGE
  std::string description;
  boost::json::object findings;  // ECR imageScanFindings; empty when the scan failed

  static StoredScan from_report(const ScanReport& report);
  static StoredScan failed(std::string description);
  std::string to_json() const;
  static Result<StoredScan> from_json(std::string_view text);
};

// Repository; `registry_host` is the "host:port" repositoryUri starts with.
boost::json::object repository_to_wire(const Repository& repository,
                                       std::string_view registry_host);
// ImageIdentifier.
boost::json::object image_id_to_wire(const oci::Digest& digest,
                                     const std::optional<std::string>& tag);
// ImageDetail. `scan_in_progress` wins over a stored result.
boost::json::object image_detail_to_wire(const RepositoryRef& ref, const Image& image,
                                         const std::optional<StoredScan>& scan,
                                         bool scan_in_progress);
// ImageScanStatus.
boost::json::object scan_status_to_wire(std::string_view status, std::string_view description);
// ImageScanFindingsSummary (the findings without the list).
boost::json::object scan_summary_to_wire(const StoredScan& scan);
// Tag lists: [{"Key", "Value"}].
boost::json::array tags_to_wire(const std::map<std::string, std::string>& tags);
EcrTags tags_from_wire(const boost::json::array& tags);

}  // namespace wharf::registry
