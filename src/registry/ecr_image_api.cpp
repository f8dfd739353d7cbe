// ECR image operations: ListImages, DescribeImages, BatchGetImage, BatchDeleteImage, PutImage,
// PutImageTagMutability, PutImageScanningConfiguration.
#include <algorithm>

#include "common/json.hpp"
#include "registry/ecr_api.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

// ECR's tagStatus filter (TAGGED | UNTAGGED | ANY).
bool tag_status_allows(std::string_view tag_status, bool tagged) {
  if (tag_status == "TAGGED") return tagged;
  if (tag_status == "UNTAGGED") return !tagged;
  return true;
}

std::string tag_status_filter(const bj::object& input) {
  const auto* filter = json::get_object(input, "filter");
  return filter ? json::string_or(*filter, "tagStatus", "ANY") : "ANY";
}

struct RequestedImageId {
  bj::object wire;  // as the caller sent it, for failures
  std::expected<ImageSelector, ImageIdFailure> selector;
};

std::vector<RequestedImageId> requested_image_ids(const bj::object& input) {
  std::vector<RequestedImageId> ids;
  const auto* list = json::get_array(input, "imageIds");
  if (list == nullptr) return ids;
  for (const auto& item : *list) {
    const auto& id = item.as_object();
    bj::object wire;
    auto digest = json::get_string(id, "imageDigest");
    auto tag = json::get_string(id, "imageTag");
    if (digest) wire["imageDigest"] = *digest;
    if (tag) wire["imageTag"] = *tag;
    ids.push_back({std::move(wire), read_image_id(digest, tag)});
  }
  return ids;
}

bj::object image_failure(bj::object image_id, std::string_view code, std::string_view reason) {
  return bj::object{
      {"imageId", std::move(image_id)}, {"failureCode", code}, {"failureReason", reason}};
}

// Why a valid identifier names no image: its tag names another digest, or nothing matches.
bj::object missing_image_failure(const RegistryState& state, const RepositoryRef& ref,
                                 const ImageSelector& selector, bj::object wire) {
  if (selector.digest && selector.tag && state.find_image(ref, {std::nullopt, selector.tag})) {
    return image_failure(std::move(wire), "ImageTagDoesNotMatchDigest",
                         "Invalid request parameters: image tag digest does not match digest");
  }
  return image_failure(std::move(wire), "ImageNotFound", "Requested image not found");
}

// "{imageDigest:'…', imageTag:'…'}", the way ECR names an image in messages.
std::string describe_image_id(const bj::object& id) {
  auto field = [&](const char* key) {
    const auto* value = id.if_contains(key);
    return value && value->is_string() ? "'" + std::string(value->as_string()) + "'"
                                       : std::string("'null'");
  };
  return "{imageDigest:" + field("imageDigest") + ", imageTag:" + field("imageTag") + "}";
}

}  // namespace

void EcrApi::list_images(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string tag_status = tag_status_filter(input);
  std::string scope =
      "ListImages/" + ref->region + "/" + ref->account_id + "/" + ref->name + "/" + tag_status;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 1000);
  if (!page) return reply(std::unexpected(page.error()));
  auto images = state_.list_images(*ref);
  if (!images) return reply(std::unexpected(images.error()));

  // One entry per tag, or one digest-only entry for an untagged image; keyed for paging.
  std::vector<std::pair<std::string, bj::object>> entries;
  for (const auto& image : *images) {
    if (!tag_status_allows(tag_status, !image.tags.empty())) continue;
    if (image.tags.empty())
      entries.emplace_back(image.digest.str(), image_id_to_wire(image.digest, {}));
    for (const auto& tag : image.tags) {
      entries.emplace_back(image.digest.str() + "|" + tag, image_id_to_wire(image.digest, tag));
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  bj::array ids;
  bj::object output;
  std::string last;
  for (auto& [key, id] : entries) {
    if (page->after && key <= *page->after) continue;
    if (ids.size() == static_cast<std::size_t>(page->max_results)) {
      output["nextToken"] = tokens_.issue(scope, last, clock_.now());
      break;
    }
    ids.push_back(std::move(id));
    last = key;
  }
  output["imageIds"] = std::move(ids);
  reply(std::move(output));
}

void EcrApi::describe_images(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto requested = requested_image_ids(input);
  if (!requested.empty()) {
    if (json::member(input, "maxResults") || json::member(input, "nextToken")) {
      return reply(invalid("maxResults and nextToken cannot be used with imageIds."));
    }
    if (auto repository = state_.repository(*ref); !repository) {
      return reply(std::unexpected(repository.error()));
    }
    bj::array details;
    std::set<oci::Digest> seen;
    for (const auto& id : requested) {
      if (!id.selector) return reply(invalid(id.selector.error().reason));
      auto image = state_.find_image(*ref, *id.selector);
      if (!image) {
        if (image.error().code != ErrorCode::kImageNotFound) {
          return reply(std::unexpected(image.error()));
        }
        return reply(fail(ErrorCode::kImageNotFound,
                          "The image with imageId " + describe_image_id(id.wire) +
                              " does not exist within the repository with name '" + ref->name +
                              "' in the registry with id '" + ref->account_id + "'"));
      }
      if (!seen.insert(image->digest).second) continue;
      details.push_back(image_detail_to_wire(*ref, *image, stored_scan(*ref, image->digest),
                                             scan_in_progress(*ref, image->digest)));
    }
    return reply(bj::object{{"imageDetails", std::move(details)}});
  }

  std::string tag_status = tag_status_filter(input);
  std::string scope =
      "DescribeImages/" + ref->region + "/" + ref->account_id + "/" + ref->name + "/" + tag_status;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 1000);
  if (!page) return reply(std::unexpected(page.error()));
  auto images = state_.list_images(*ref);
  if (!images) return reply(std::unexpected(images.error()));
  bj::array details;
  bj::object output;
  std::string last;
  for (const auto& image : *images) {  // by digest
    if (!tag_status_allows(tag_status, !image.tags.empty())) continue;
    std::string key = image.digest.str();
    if (page->after && key <= *page->after) continue;
    if (details.size() == static_cast<std::size_t>(page->max_results)) {
      output["nextToken"] = tokens_.issue(scope, last, clock_.now());
      break;
    }
    details.push_back(image_detail_to_wire(*ref, image, stored_scan(*ref, image.digest),
                                           scan_in_progress(*ref, image.digest)));
    last = key;
  }
  output["imageDetails"] = std::move(details);
  reply(std::move(output));
}

void EcrApi::batch_get_image(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::vector<std::string> accepted;
  if (const auto* list = json::get_array(input, "acceptedMediaTypes")) {
    for (const auto& item : *list) accepted.emplace_back(item.as_string());
  }
  bj::array images;
  bj::array failures;
  for (auto& id : requested_image_ids(input)) {
    if (!id.selector) {
      failures.push_back(
          image_failure(id.wire, id.selector.error().code, id.selector.error().reason));
      continue;
    }
    auto image = state_.find_image(*ref, *id.selector);
    if (!image) {
      failures.push_back(missing_image_failure(state_, *ref, *id.selector, id.wire));
      continue;
    }
    if (!accepted.empty() &&
        std::find(accepted.begin(), accepted.end(), image->media_type) == accepted.end()) {
      failures.push_back(image_failure(
          id.wire, "ImageNotFound",
          "The image's manifest media type " + image->media_type +
              " is not among acceptedMediaTypes, and Wharf does not convert manifests"));
      continue;
    }
    state_.record_pull(*ref, image->digest);
    bj::object result = repository_fields(*ref);
    result["imageId"] = image_id_to_wire(image->digest, id.selector->tag);
    result["imageManifest"] = *image->manifest;
    result["imageManifestMediaType"] = image->media_type;
    images.push_back(std::move(result));
  }
  reply(bj::object{{"images", std::move(images)}, {"failures", std::move(failures)}});
}

void EcrApi::batch_delete_image(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto requested = requested_image_ids(input);

  // Each removal completes on its own (at once when refused, else once durable); the reply
  // goes out when the last one has.
  struct Gather {
    std::mutex mutex;
    std::size_t pending = 0;
    std::vector<bj::array> deleted;  // per request, in request order
    std::vector<std::optional<bj::object>> failures;
    std::optional<Error> error;  // a store failure fails the whole call
    Reply reply;
  };
  auto gather = std::make_shared<Gather>();
  gather->pending = requested.size();
  gather->deleted.resize(requested.size());
  gather->failures.resize(requested.size());
  gather->reply = std::move(reply);
  auto finish_one = [gather] {
    // Called with gather->mutex held; replies when the last removal is in.
    if (--gather->pending > 0) return;
    if (gather->error) return gather->reply(std::unexpected(*gather->error));
    bj::array ids;
    bj::array failures;
    for (auto& list : gather->deleted) {
      for (auto& id : list) ids.push_back(std::move(id));
    }
    for (auto& failure : gather->failures) {
      if (failure) failures.push_back(std::move(*failure));
    }
    gather->reply(bj::object{{"imageIds", std::move(ids)}, {"failures", std::move(failures)}});
  };

  RemoveImageOptions options{.delete_when_last_tag_removed = true, .refuse_if_referenced = true};
  for (std::size_t id_idx = 0; id_idx < requested.size(); ++id_idx) {
    auto& id = requested[id_idx];
    if (!id.selector) {
      std::lock_guard lock(gather->mutex);
      gather->failures[id_idx] =
          image_failure(id.wire, id.selector.error().code, id.selector.error().reason);
      finish_one();
      continue;
    }
    state_.remove_image(
        *ref, *id.selector, options,
        [this, ref = *ref, selector = *id.selector, gather, finish_one, id_idx,
         wire = id.wire](Result<RemoveImageResult> removed) {
          std::lock_guard lock(gather->mutex);
          if (removed) {
            auto& ids = gather->deleted[id_idx];
            if (removed->removed_tags.empty())
              ids.push_back(image_id_to_wire(removed->image.digest, {}));
            for (const auto& tag : removed->removed_tags) {
              ids.push_back(image_id_to_wire(removed->image.digest, tag));
            }
          } else if (removed.error().code == ErrorCode::kImageNotFound) {
            gather->failures[id_idx] = missing_image_failure(state_, ref, selector, wire);
          } else if (removed.error().code == ErrorCode::kResourceInUse) {
            gather->failures[id_idx] = image_failure(
                wire, "ImageReferencedByManifestList",
                "Requested image referenced by a manifest list: " + removed.error().message);
          } else {
            gather->error = removed.error();
          }
          finish_one();
        });
  }
}

void EcrApi::put_image(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  PutImageRequest request;
  request.manifest = json::string_or(input, "imageManifest", "");
  request.content_type = json::string_or(input, "imageManifestMediaType", "");
  request.tag = json::get_string(input, "imageTag");
  if (request.tag && !validate_tag(*request.tag)) {
    return reply(invalid("Invalid parameter at 'imageTag' failed to satisfy constraint: 'tag '" +
                         *request.tag +
                         "' must be letters, digits, '_', '.' or '-', not starting with '.' or "
                         "'-', at most 128 characters'"));
  }
  if (auto digest = json::get_string(input, "imageDigest")) {
    auto parsed = oci::parse_digest(*digest);
    if (!parsed) {
      return reply(invalid("Invalid parameter at 'imageDigest' failed to satisfy constraint: '" +
                           parsed.error().message + "'"));
    }
    request.digest = *parsed;
  }
  std::optional<std::string> tag = request.tag;
  state_.put_image(
      *ref, std::move(request),
      [reply = std::move(reply), ref = *ref, tag](Result<PutImageResult> result) {
        if (!result) return reply(std::unexpected(result.error()));
        const Image& image = result->image;
        if (result->unchanged) {
          return reply(fail(ErrorCode::kImageAlreadyExists,
                            "Image with digest '" + image.digest.str() + "'" +
                                (tag ? " and tag '" + *tag + "'" : std::string()) +
                                " already exists in the repository with name '" + ref.name +
                                "' in registry with id '" + ref.account_id + "'"));
        }
        bj::object wire = repository_fields(ref);
        wire["imageId"] = image_id_to_wire(image.digest, tag);
        wire["imageManifest"] = *image.manifest;
        wire["imageManifestMediaType"] = image.media_type;
        reply(bj::object{{"image", std::move(wire)}});
      });
}

void EcrApi::put_image_tag_mutability(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string mutability = json::string_or(input, "imageTagMutability", "");
  std::vector<std::string> filters;
  if (const auto* list = json::get_array(input, "imageTagMutabilityExclusionFilters")) {
    for (const auto& item : *list)
      filters.push_back(json::string_or(item.as_object(), "filter", ""));
  }
  if (auto status = validate_tag_mutability(mutability, filters); !status) {
    return reply(std::unexpected(status.error()));
  }
  state_.update_repository(
      *ref,
      [mutability, filters](Repository& repository) -> Status {
        repository.tag_mutability = mutability;
        repository.tag_mutability_exclusions = filters;
        return {};
      },
      [reply = std::move(reply), ref = *ref](Result<Repository> updated) {
        if (!updated) return reply(std::unexpected(updated.error()));
        bj::object output = repository_fields(ref);
        bj::object wire = repository_to_wire(*updated, "");
        output["imageTagMutability"] = wire["imageTagMutability"];
        if (const auto* filters = wire.if_contains("imageTagMutabilityExclusionFilters")) {
          output["imageTagMutabilityExclusionFilters"] = *filters;
        }
        reply(std::move(output));
      });
}

void EcrApi::put_image_scanning_configuration(const Context& context, const Input& input,
                                              Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  const auto* configuration = json::get_object(input, "imageScanningConfiguration");
  bool scan_on_push =
      configuration ? json::get_bool(*configuration, "scanOnPush").value_or(false) : false;
  state_.update_repository(
      *ref,
      [scan_on_push](Repository& repository) -> Status {
        repository.scan_on_push = scan_on_push;
        return {};
      },
      [reply = std::move(reply), ref = *ref](Result<Repository> updated) {
        if (!updated) return reply(std::unexpected(updated.error()));
        bj::object output = repository_fields(ref);
        output["imageScanningConfiguration"] = bj::object{{"scanOnPush", updated->scan_on_push}};
        reply(std::move(output));
      });
}

}  // namespace wharf::registry
