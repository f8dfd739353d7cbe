// ECR image scanning: StartImageScan, DescribeImageScanFindings, and the scans themselves
// (on request and on push), run on the worker threads.
#include "common/json.hpp"
#include "common/log.hpp"
#include "registry/ecr_api.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

// Basic scanning looks at OS packages in image layers: indexes and non-image artifacts have
// none.
Status check_scannable(const Image& image) {
  std::string config_type = image.artifact_media_type();
  bool is_image = !image.parsed->is_index() &&
                  (config_type == oci::kOciImageConfig || config_type == oci::kDockerImageConfig);
  if (is_image) return {};
  return fail(ErrorCode::kUnsupportedImageType,
              "The operation is not supported for this image type: only container images (not "
              "image indexes or other artifacts) can be scanned.");
}

Result<ImageSelector> image_selector(const bj::object& input) {
  const auto* id = json::get_object(input, "imageId");
  if (id == nullptr) return invalid("imageId is required.");
  auto selector =
      read_image_id(json::get_string(*id, "imageDigest"), json::get_string(*id, "imageTag"));
  if (!selector) return invalid(selector.error().reason);
  return *selector;
}

}  // namespace

bool EcrApi::scan_in_progress(const RepositoryRef& ref, const oci::Digest& digest) const {
  std::lock_guard lock(mutex_);
  return scans_running_.contains({ref, digest});
}

std::optional<StoredScan> EcrApi::stored_scan(const RepositoryRef& ref,
                                              const oci::Digest& digest) const {
  auto text = state_.scan_result(ref, digest);
  if (!text || !*text) return std::nullopt;
  auto scan = StoredScan::from_json(**text);
  if (!scan) return std::nullopt;
  return *scan;
}

Status EcrApi::queue_scan(const RepositoryRef& ref, const Image& image) {
  if (auto scannable = check_scannable(image); !scannable) return scannable;
  {
    std::lock_guard lock(mutex_);
    if (!scans_running_.emplace(ref, image.digest).second) return {};  // already scanning
  }
  if (!workers_.post([this, ref, image] { run_scan(ref, image); })) {
    std::lock_guard lock(mutex_);
    scans_running_.erase({ref, image.digest});
    return fail(ErrorCode::kInternal, "the server is stopping");
  }
  return {};
}

void EcrApi::run_scan(const RepositoryRef& ref, const Image& image) {
  StoredScan outcome;
  std::vector<UniqueFd> files;
  std::vector<int> layer_fds;
  std::optional<Error> error;
  for (const auto& layer : image.parsed->layers) {
    auto file = blobs_.open_blob(layer.digest);
    if (!file) {
      error = file.error().context("opening layer " + layer.digest.str());
      break;
    }
    layer_fds.push_back(file->fd.get());
    files.push_back(std::move(file->fd));
  }
  if (!error) {
    auto report = scanner_.scan(layer_fds, clock_.now());
    if (report) outcome = StoredScan::from_report(*report);
    if (!report) error = report.error();
  }
  if (error) {
    spdlog::warn("ecr: scanning {}@{} failed: {}", ref.name, image.digest.str(), error->message);
    outcome = StoredScan::failed("The scan failed: " + error->message);
  }
  // The result is in memory once set_scan_result returns (durable a little later), so the scan
  // stops being IN_PROGRESS here rather than when the store has synced.
  state_.set_scan_result(ref, image.digest, outcome.to_json(),
                         [ref, digest = image.digest](Status stored) {
                           if (!stored && stored.error().code != ErrorCode::kImageNotFound &&
                               stored.error().code != ErrorCode::kRepositoryNotFound) {
                             spdlog::warn("ecr: storing the scan of {}@{}: {}", ref.name,
                                          digest.str(), stored.error().message);
                           }
                         });
  std::lock_guard lock(mutex_);
  scans_running_.erase({ref, image.digest});
}

void EcrApi::start_image_scan(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto selector = image_selector(input);
  if (!selector) return reply(std::unexpected(selector.error()));
  auto image = state_.find_image(*ref, *selector);
  if (!image) return reply(std::unexpected(image.error()));
  if (auto queued = queue_scan(*ref, *image); !queued) {
    return reply(std::unexpected(queued.error()));
  }
  bj::object output = repository_fields(*ref);
  output["imageId"] = image_id_to_wire(image->digest, selector->tag);
  output["imageScanStatus"] = scan_status_to_wire("IN_PROGRESS", "");
  reply(std::move(output));
}

void EcrApi::describe_image_scan_findings(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto selector = image_selector(input);
  if (!selector) return reply(std::unexpected(selector.error()));
  auto image = state_.find_image(*ref, *selector);
  if (!image) return reply(std::unexpected(image.error()));
  bj::object output = repository_fields(*ref);
  output["imageId"] = image_id_to_wire(image->digest, selector->tag);
  if (scan_in_progress(*ref, image->digest)) {
    output["imageScanStatus"] = scan_status_to_wire("IN_PROGRESS", "");
    return reply(std::move(output));
  }
  auto scan = stored_scan(*ref, image->digest);
  if (!scan) {
    return reply(fail(ErrorCode::kScanNotFound,
                      "Image scan does not exist for the image with '{imageDigest:" +
                          image->digest.str() + "}' in the repository with name '" + ref->name +
                          "' in the registry with id '" + ref->account_id + "'"));
  }
  output["imageScanStatus"] = scan_status_to_wire(scan->status, scan->description);
  if (scan->status != "COMPLETE") return reply(std::move(output));

  const auto* completed = scan->findings.if_contains("imageScanCompletedAt");
  std::string scope = "DescribeImageScanFindings/" + ref->region + "/" + ref->account_id + "/" +
                      ref->name + "/" + image->digest.str() + "/" +
                      (completed ? bj::serialize(*completed) : std::string());
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 1000);
  if (!page) return reply(std::unexpected(page.error()));
  std::size_t start = 0;
  if (page->after) start = std::stoul(*page->after) + 1;
  bj::array all;
  if (const auto* findings = scan->findings.if_contains("findings");
      findings && findings->is_array()) {
    all = findings->as_array();
  }
  bj::array findings;
  for (std::size_t finding_idx = start;
       finding_idx < all.size() && findings.size() < static_cast<std::size_t>(page->max_results);
       ++finding_idx) {
    findings.push_back(all[finding_idx]);
  }
  std::size_t next = start + findings.size();
  if (next < all.size())
    output["nextToken"] = tokens_.issue(scope, std::to_string(next - 1), clock_.now());
  bj::object scan_findings = scan_summary_to_wire(*scan);
  scan_findings["findings"] = std::move(findings);
  output["imageScanFindings"] = std::move(scan_findings);
  reply(std::move(output));
}

}  // namespace wharf::registry
