// ECR lifecycle policies: Put/Get/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview, and
// applying policies (periodically, after pushes, and on request) so that expired images are
// really deleted; their blobs are then unreferenced and garbage collection reclaims them.
#include <future>

#include "common/json.hpp"
#include "common/log.hpp"
#include "registry/ecr_api.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

Error lifecycle_policy_not_found(const RepositoryRef& ref) {
  return Error{ErrorCode::kLifecyclePolicyNotFound,
               "Lifecycle policy does not exist for the repository with name '" + ref.name +
                   "' in the registry with id '" + ref.account_id + "'"};
}

std::vector<LifecycleImage> lifecycle_images(const std::vector<Image>& images) {
  std::vector<LifecycleImage> result;
  result.reserve(images.size());
  for (const auto& image : images)
    result.push_back({image.digest.str(), image.tags, image.pushed_at});
  return result;
}

bj::object preview_result_to_wire(const LifecycleExpiration& expiration) {
  bj::array tags;
  for (const auto& tag : expiration.image.tags) tags.emplace_back(tag);
  return bj::object{{"imageTags", std::move(tags)},
                    {"imageDigest", expiration.image.digest},
                    {"imagePushedAt", epoch_seconds(expiration.image.pushed_at)},
                    {"action", bj::object{{"type", "EXPIRE"}}},
                    {"appliedRulePriority", expiration.rule_priority}};
}

// Whether a GetLifecyclePolicyPreview imageIds entry names the previewed image.
bool id_names(const bj::object& id, const LifecycleImage& image) {
  auto digest = json::get_string(id, "imageDigest");
  auto tag = json::get_string(id, "imageTag");
  if (digest && *digest != image.digest) return false;
  if (tag && std::find(image.tags.begin(), image.tags.end(), *tag) == image.tags.end()) {
    return false;
  }
  return digest || tag;
}

}  // namespace

void EcrApi::put_lifecycle_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string text = json::string_or(input, "lifecyclePolicyText", "");
  if (auto policy = parse_lifecycle_policy(text); !policy) {
    return reply(std::unexpected(policy.error()));
  }
  state_.update_repository(
      *ref,
      [text](Repository& repository) -> Status {
        repository.lifecycle_policy = text;
        return {};
      },
      [reply = std::move(reply), ref = *ref, text](Result<Repository> updated) {
        if (!updated) return reply(std::unexpected(updated.error()));
        bj::object output = repository_fields(ref);
        output["lifecyclePolicyText"] = text;
        reply(std::move(output));
      });
}

void EcrApi::get_lifecycle_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto repository = state_.repository(*ref);
  if (!repository) return reply(std::unexpected(repository.error()));
  if (!repository->lifecycle_policy)
    return reply(std::unexpected(lifecycle_policy_not_found(*ref)));
  bj::object output = repository_fields(*ref);
  output["lifecyclePolicyText"] = *repository->lifecycle_policy;
  if (repository->lifecycle_evaluated_at) {
    output["lastEvaluatedAt"] = epoch_seconds(*repository->lifecycle_evaluated_at);
  }
  reply(std::move(output));
}

void EcrApi::delete_lifecycle_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto removed = std::make_shared<Repository>();
  state_.update_repository(
      *ref,
      [ref = *ref, removed](Repository& repository) -> Status {
        if (!repository.lifecycle_policy) return std::unexpected(lifecycle_policy_not_found(ref));
        *removed = repository;
        repository.lifecycle_policy.reset();
        repository.lifecycle_evaluated_at.reset();
        return {};
      },
      [reply = std::move(reply), ref = *ref, removed](Result<Repository> updated) {
        if (!updated) return reply(std::unexpected(updated.error()));
        bj::object output = repository_fields(ref);
        output["lifecyclePolicyText"] = *removed->lifecycle_policy;
        if (removed->lifecycle_evaluated_at) {
          output["lastEvaluatedAt"] = epoch_seconds(*removed->lifecycle_evaluated_at);
        }
        reply(std::move(output));
      });
}

void EcrApi::start_lifecycle_policy_preview(const Context& context, const Input& input,
                                            Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto repository = state_.repository(*ref);
  if (!repository) return reply(std::unexpected(repository.error()));
  auto text = json::get_string(input, "lifecyclePolicyText");
  if (!text) text = repository->lifecycle_policy;
  if (!text) return reply(std::unexpected(lifecycle_policy_not_found(*ref)));
  auto policy = parse_lifecycle_policy(*text);
  if (!policy) return reply(std::unexpected(policy.error()));
  auto images = state_.list_images(*ref);
  if (!images) return reply(std::unexpected(images.error()));
  // Evaluation is pure and quick, so the preview is complete at once.
  auto expiring = evaluate_lifecycle_policy(*policy, lifecycle_images(*images), clock_.now());
  {
    std::lock_guard lock(mutex_);
    previews_[*ref] = Preview{*text, std::move(expiring)};
  }
  bj::object output = repository_fields(*ref);
  output["lifecyclePolicyText"] = *text;
  output["status"] = "COMPLETE";
  reply(std::move(output));
}

void EcrApi::get_lifecycle_policy_preview(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  Preview preview;
  {
    std::lock_guard lock(mutex_);
    auto found = previews_.find(*ref);
    if (found == previews_.end()) {
      return reply(fail(ErrorCode::kLifecyclePolicyPreviewNotFound,
                        "There is no lifecycle policy preview for the repository with name '" +
                            ref->name + "' in the registry with id '" + ref->account_id + "'"));
    }
    preview = found->second;
  }
  const auto* ids = json::get_array(input, "imageIds");
  if (ids != nullptr && (json::member(input, "maxResults") || json::member(input, "nextToken"))) {
    return reply(invalid("maxResults and nextToken cannot be used with imageIds."));
  }
  const auto* filter = json::get_object(input, "filter");
  std::string tag_status = filter ? json::string_or(*filter, "tagStatus", "ANY") : "ANY";
  std::string scope = "GetLifecyclePolicyPreview/" + ref->region + "/" + ref->account_id + "/" +
                      ref->name + "/" + tag_status;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  // By digest, so that pages are stable.
  std::sort(preview.expiring.begin(), preview.expiring.end(),
            [](const auto& a, const auto& b) { return a.image.digest < b.image.digest; });
  bj::array results;
  bj::object output = repository_fields(*ref);
  std::string last;
  for (const auto& expiration : preview.expiring) {
    bool tagged = !expiration.image.tags.empty();
    if ((tag_status == "TAGGED" && !tagged) || (tag_status == "UNTAGGED" && tagged)) continue;
    if (ids != nullptr && std::none_of(ids->begin(), ids->end(), [&](const bj::value& id) {
          return id.is_object() && id_names(id.as_object(), expiration.image);
        })) {
      continue;
    }
    if (page->after && expiration.image.digest <= *page->after) continue;
    if (results.size() == static_cast<std::size_t>(page->max_results)) {
      output["nextToken"] = tokens_.issue(scope, last, clock_.now());
      break;
    }
    results.push_back(preview_result_to_wire(expiration));
    last = expiration.image.digest;
  }
  output["lifecyclePolicyText"] = preview.policy_text;
  output["status"] = "COMPLETE";
  output["previewResults"] = std::move(results);
  output["summary"] =
      bj::object{{"expiringImageTotalCount", static_cast<int64_t>(preview.expiring.size())}};
  reply(std::move(output));
}

// ---- applying policies ----

Result<std::vector<LifecycleExpiration>> EcrApi::apply_lifecycle_policy(const RepositoryRef& ref) {
  auto repository = state_.repository(ref);
  if (!repository) return std::unexpected(repository.error());
  if (!repository->lifecycle_policy) return std::vector<LifecycleExpiration>();
  auto policy = parse_lifecycle_policy(*repository->lifecycle_policy);
  if (!policy) return std::unexpected(policy.error().context("the stored lifecycle policy"));
  auto images = state_.list_images(ref);
  if (!images) return std::unexpected(images.error());
  TimePoint now = clock_.now();
  auto expiring = evaluate_lifecycle_policy(*policy, lifecycle_images(*images), now);

  std::vector<LifecycleExpiration> expired;
  for (auto& expiration : expiring) {
    auto digest = oci::parse_digest(expiration.image.digest);
    if (!digest) continue;
    // Skip an image that changed since the evaluation (a push tagged it meanwhile).
    auto current = state_.find_image(ref, {*digest, std::nullopt});
    if (!current || current->tags != expiration.image.tags) continue;
    std::promise<Result<RemoveImageResult>> removed;
    auto done = removed.get_future();
    state_.remove_image(
        ref, {*digest, std::nullopt}, {.refuse_if_referenced = true},
        [&removed](Result<RemoveImageResult> result) { removed.set_value(std::move(result)); });
    auto result = done.get();
    if (result) {
      expired.push_back(std::move(expiration));
    } else if (result.error().code != ErrorCode::kImageNotFound &&
               result.error().code != ErrorCode::kResourceInUse) {
      return std::unexpected(result.error().context("expiring " + digest->str()));
    }
  }

  std::promise<Result<Repository>> recorded;
  auto recorded_done = recorded.get_future();
  state_.update_repository(
      ref,
      [now](Repository& updated) -> Status {
        if (updated.lifecycle_policy) updated.lifecycle_evaluated_at = now;
        return {};
      },
      [&recorded](Result<Repository> result) { recorded.set_value(std::move(result)); });
  if (auto result = recorded_done.get();
      !result && result.error().code != ErrorCode::kRepositoryNotFound) {
    return std::unexpected(result.error());
  }
  if (!expired.empty()) {
    spdlog::info("ecr: lifecycle policy of {} expired {} images", ref.name, expired.size());
  }
  return expired;
}

std::size_t EcrApi::apply_lifecycle_policies() {
  std::set<std::pair<std::string, std::string>> partitions;
  {
    std::lock_guard lock(mutex_);
    partitions = partitions_;
  }
  std::size_t expired = 0;
  for (const auto& [region, account_id] : partitions) {
    for (const auto& repository : state_.list_repositories(region, account_id)) {
      if (!repository.lifecycle_policy) continue;
      auto applied = apply_lifecycle_policy(repository.ref);
      if (!applied) {
        spdlog::warn("ecr: applying the lifecycle policy of {}: {}", repository.ref.name,
                     applied.error().message);
        continue;
      }
      expired += applied->size();
    }
  }
  return expired;
}

void EcrApi::queue_lifecycle(const RepositoryRef& ref) {
  {
    std::lock_guard lock(mutex_);
    if (!lifecycle_queued_.insert(ref).second) return;  // a queued run will see this push too
  }
  bool posted = workers_.post([this, ref] {
    {
      std::lock_guard lock(mutex_);
      lifecycle_queued_.erase(ref);
    }
    if (auto applied = apply_lifecycle_policy(ref); !applied) {
      spdlog::warn("ecr: applying the lifecycle policy of {}: {}", ref.name,
                   applied.error().message);
    }
  });
  if (!posted) {
    std::lock_guard lock(mutex_);
    lifecycle_queued_.erase(ref);
  }
}

void EcrApi::on_push(const Repository& repository, const Image& image) {
  remember_partition(repository.ref.region, repository.ref.account_id);
  if (repository.lifecycle_policy) queue_lifecycle(repository.ref);
  if (repository.scan_on_push) {
    if (auto queued = queue_scan(repository.ref, image); !queued) {
      spdlog::debug("ecr: not scanning {}@{} on push: {}", repository.ref.name, image.digest.str(),
                    queued.error().message);
    }
  }
}

}  // namespace wharf::registry
