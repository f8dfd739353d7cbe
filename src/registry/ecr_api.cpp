// ECR API registration, shared helpers, and the repository, repository policy, tagging,
// registry and authorization operations.
#include "registry/ecr_api.hpp"

#include "common/arn.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

// RegistryState lists repositories one (region, account) partition at a time and cannot list
// the partitions, so the periodic lifecycle round visits the AWS region names for the server's
// account, plus every partition an ECR call or a push has named since start-up.
constexpr std::string_view kAwsRegions[] = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",      "af-south-1",
    "ap-east-1",      "ap-south-1",     "ap-south-2",     "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "ca-central-1",   "ca-west-1",      "eu-central-1",
    "eu-central-2",   "eu-west-1",      "eu-west-2",      "eu-west-3",      "eu-south-1",
    "eu-south-2",     "eu-north-1",     "il-central-1",   "me-south-1",     "me-central-1",
    "mx-central-1",   "sa-east-1",      "us-gov-east-1",  "us-gov-west-1",  "cn-north-1",
    "cn-northwest-1"};

Error policy_not_found(const RepositoryRef& ref) {
  return Error{ErrorCode::kRepositoryPolicyNotFound,
               "Repository policy does not exist for the repository with name '" + ref.name +
                   "' in the registry with id '" + ref.account_id + "'"};
}

// A JSON reply from a state change: `output(value)` on success, the error otherwise.
template <typename T, typename Output>
Done<T> reply_with(aws::JsonReply reply, Output output) {
  return [reply = std::move(reply), output = std::move(output)](Result<T> result) mutable {
    if (!result) return reply(std::unexpected(result.error()));
    reply(output(*result));
  };
}

std::vector<std::string> string_list(const bj::object& input, std::string_view key) {
  std::vector<std::string> values;
  if (const auto* list = json::get_array(input, key)) {
    for (const auto& item : *list) {
      if (item.is_string()) values.emplace_back(item.as_string());
    }
  }
  return values;
}

std::vector<std::string> exclusion_filters(const bj::object& input) {
  std::vector<std::string> filters;
  if (const auto* list = json::get_array(input, "imageTagMutabilityExclusionFilters")) {
    for (const auto& item : *list) {
      if (item.is_object()) filters.push_back(json::string_or(item.as_object(), "filter", ""));
    }
  }
  return filters;
}

// The repository a resourceArn names: arn:aws:ecr:REGION:ACCOUNT:repository/NAME.
Result<RepositoryRef> repository_from_arn(const aws::CallContext& context,
                                          std::string_view resource_arn) {
  auto parsed = parse_arn(resource_arn);
  if (!parsed || parsed->service != "ecr" || parsed->resource_type() != "repository" ||
      parsed->resource_id().empty()) {
    return invalid("Invalid parameter at 'resourceArn' failed to satisfy constraint: '" +
                   std::string(resource_arn) +
                   "' is not an ECR repository ARN (arn:aws:ecr:REGION:ACCOUNT:repository/NAME)'");
  }
  RepositoryRef ref{parsed->region, parsed->account, std::string(parsed->resource_id())};
  if (ref.region != context.region || ref.account_id != context.account_id) {
    return fail(ErrorCode::kRepositoryNotFound, "The repository with name '" + ref.name +
                                                    "' does not exist in the registry with id '" +
                                                    ref.account_id + "' in this region");
  }
  return ref;
}

}  // namespace

EcrApi::EcrApi(RegistryState& state, BlobStore& blobs, const RegistryAuth& auth,
               ImageScanner& scanner, const Clock& clock, const aws::PageTokens& tokens,
               EcrOptions options)
    : state_(state),
      blobs_(blobs),
      auth_(auth),
      scanner_(scanner),
      clock_(clock),
      tokens_(tokens),
      options_(std::move(options)),
      workers_(options_.worker_threads) {
  partitions_.emplace(options_.default_region, options_.account_id);
  for (std::string_view region : kAwsRegions) {
    partitions_.emplace(std::string(region), options_.account_id);
  }
}

EcrApi::~EcrApi() {
  stop();
}

void EcrApi::register_operations(aws::JsonService& service) {
  using Method = void (EcrApi::*)(const Context&, const Input&, Reply);
  auto bind = [&](const char* name, Method method) {
    service.add(name, [this, method](const Context& context, const Input& input, Reply reply) {
      (this->*method)(context, input, std::move(reply));
    });
  };
  bind("CreateRepository", &EcrApi::create_repository);
  bind("DescribeRepositories", &EcrApi::describe_repositories);
  bind("DeleteRepository", &EcrApi::delete_repository);
  bind("SetRepositoryPolicy", &EcrApi::set_repository_policy);
  bind("GetRepositoryPolicy", &EcrApi::get_repository_policy);
  bind("DeleteRepositoryPolicy", &EcrApi::delete_repository_policy);
  bind("TagResource", &EcrApi::tag_resource);
  bind("UntagResource", &EcrApi::untag_resource);
  bind("ListTagsForResource", &EcrApi::list_tags_for_resource);
  bind("DescribeRegistry", &EcrApi::describe_registry);
  bind("GetAuthorizationToken", &EcrApi::get_authorization_token);
  bind("ListImages", &EcrApi::list_images);
  bind("DescribeImages", &EcrApi::describe_images);
  bind("BatchGetImage", &EcrApi::batch_get_image);
  bind("BatchDeleteImage", &EcrApi::batch_delete_image);
  bind("PutImage", &EcrApi::put_image);
  bind("PutImageTagMutability", &EcrApi::put_image_tag_mutability);
  bind("PutImageScanningConfiguration", &EcrApi::put_image_scanning_configuration);
  bind("BatchCheckLayerAvailability", &EcrApi::batch_check_layer_availability);
  bind("InitiateLayerUpload", &EcrApi::initiate_layer_upload);
  bind("UploadLayerPart", &EcrApi::upload_layer_part);
  bind("CompleteLayerUpload", &EcrApi::complete_layer_upload);
  bind("GetDownloadUrlForLayer", &EcrApi::get_download_url_for_layer);
  bind("PutLifecyclePolicy", &EcrApi::put_lifecycle_policy);
  bind("GetLifecyclePolicy", &EcrApi::get_lifecycle_policy);
  bind("DeleteLifecyclePolicy", &EcrApi::delete_lifecycle_policy);
  bind("StartLifecyclePolicyPreview", &EcrApi::start_lifecycle_policy_preview);
  bind("GetLifecyclePolicyPreview", &EcrApi::get_lifecycle_policy_preview);
  bind("StartImageScan", &EcrApi::start_image_scan);
  bind("DescribeImageScanFindings", &EcrApi::describe_image_scan_findings);
  state_.add_push_hook(
      [this](const Repository& repository, const Image& image) { on_push(repository, image); });
}

void EcrApi::set_endpoint(std::string endpoint) {
  std::lock_guard lock(mutex_);
  endpoint_ = std::move(endpoint);
}

std::string EcrApi::endpoint() const {
  std::lock_guard lock(mutex_);
  return endpoint_;
}

std::string EcrApi::registry_host() const {
  std::string base = endpoint();
  auto scheme = base.find("://");
  return scheme == std::string::npos ? base : base.substr(scheme + 3);
}

void EcrApi::start() {
  if (options_.lifecycle_interval.count() <= 0 || lifecycle_thread_.joinable()) return;
  lifecycle_thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, options_.lifecycle_interval, [this] { return stopping_; })) {
      lock.unlock();
      apply_lifecycle_policies();
      lock.lock();
    }
  });
}

void EcrApi::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (lifecycle_thread_.joinable()) lifecycle_thread_.join();
  workers_.stop();
}

void EcrApi::remember_partition(std::string_view region, std::string_view account_id) {
  std::lock_guard lock(mutex_);
  partitions_.emplace(std::string(region), std::string(account_id));
}

Result<RepositoryRef> EcrApi::existing_repository_ref(const Context& context, const Input& input) {
  auto ref = repository_ref(context, input);
  if (!ref) return ref;
  if (auto repository = state_.repository(*ref); !repository) {
    return std::unexpected(repository.error());
  }
  return ref;
}

Result<RepositoryRef> EcrApi::repository_ref(const Context& context, const Input& input) {
  std::string name = json::string_or(input, "repositoryName", "");
  if (auto status = validate_ecr_repository_name(name); !status) {
    return std::unexpected(status.error());
  }
  RepositoryRef ref{context.region, context.account_id, name};
  auto registry_id = json::get_string(input, "registryId");
  if (registry_id && *registry_id != context.account_id) {
    return fail(ErrorCode::kRepositoryNotFound, "The repository with name '" + name +
                                                    "' does not exist in the registry with id '" +
                                                    *registry_id + "'");
  }
  remember_partition(context.region, context.account_id);
  return ref;
}

bj::object EcrApi::repository_fields(const RepositoryRef& ref) {
  return bj::object{{"registryId", ref.account_id}, {"repositoryName", ref.name}};
}

// ---- repositories ----

void EcrApi::create_repository(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  Repository repository;
  repository.ref = *ref;
  EcrTags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_wire(*list);
  if (auto status = validate_ecr_tags(tags, {}); !status) {
    return reply(std::unexpected(status.error()));
  }
  for (auto& [key, value] : tags) repository.tags[key] = value;
  repository.tag_mutability = json::string_or(input, "imageTagMutability", std::string(kMutable));
  repository.tag_mutability_exclusions = exclusion_filters(input);
  if (auto status =
          validate_tag_mutability(repository.tag_mutability, repository.tag_mutability_exclusions);
      !status) {
    return reply(std::unexpected(status.error()));
  }
  if (const auto* scanning = json::get_object(input, "imageScanningConfiguration")) {
    repository.scan_on_push = json::get_bool(*scanning, "scanOnPush").value_or(false);
  }
  if (const auto* encryption = json::get_object(input, "encryptionConfiguration")) {
    repository.encryption_type = json::string_or(*encryption, "encryptionType", "AES256");
    repository.kms_key = json::get_string(*encryption, "kmsKey");
    if (repository.kms_key && repository.encryption_type == "AES256") {
      return reply(
          invalid("Invalid parameter at 'encryptionConfiguration' failed to satisfy "
                  "constraint: 'kmsKey can only be given with encryptionType KMS or "
                  "KMS_DSSE'"));
    }
  }
  state_.create_repository(
      std::move(repository),
      reply_with<Repository>(std::move(reply), [host = registry_host()](const Repository& created) {
        return bj::object{{"repository", repository_to_wire(created, host)}};
      }));
}

void EcrApi::describe_repositories(const Context& context, const Input& input, Reply reply) {
  auto registry_id = json::get_string(input, "registryId");
  if (registry_id && *registry_id != context.account_id) {
    return reply(fail(ErrorCode::kRepositoryNotFound, "The registry with id '" + *registry_id +
                                                          "' has no repositories you can see"));
  }
  remember_partition(context.region, context.account_id);
  std::vector<std::string> names = string_list(input, "repositoryNames");
  std::string host = registry_host();
  if (!names.empty()) {
    if (json::member(input, "maxResults") || json::member(input, "nextToken")) {
      return reply(invalid("maxResults and nextToken cannot be used with repositoryNames."));
    }
    bj::array repositories;
    for (const auto& name : names) {
      if (auto status = validate_ecr_repository_name(name); !status) {
        return reply(std::unexpected(status.error()));
      }
      auto repository = state_.repository({context.region, context.account_id, name});
      if (!repository) return reply(std::unexpected(repository.error()));
      repositories.push_back(repository_to_wire(*repository, host));
    }
    return reply(bj::object{{"repositories", std::move(repositories)}});
  }

  std::string scope = "DescribeRepositories/" + context.region + "/" + context.account_id;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 1000);
  if (!page) return reply(std::unexpected(page.error()));
  bj::array repositories;
  bj::object output;
  auto all = state_.list_repositories(context.region, context.account_id);
  std::string last;
  for (const auto& repository : all) {
    if (page->after && repository.ref.name <= *page->after) continue;
    if (repositories.size() == static_cast<std::size_t>(page->max_results)) {
      output["nextToken"] = tokens_.issue(scope, last, clock_.now());
      break;
    }
    repositories.push_back(repository_to_wire(repository, host));
    last = repository.ref.name;
  }
  output["repositories"] = std::move(repositories);
  reply(std::move(output));
}

void EcrApi::delete_repository(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  bool force = json::get_bool(input, "force").value_or(false);
  {
    std::lock_guard lock(mutex_);
    previews_.erase(*ref);
  }
  state_.delete_repository(
      *ref, force,
      reply_with<Repository>(std::move(reply), [host = registry_host()](const Repository& removed) {
        return bj::object{{"repository", repository_to_wire(removed, host)}};
      }));
}

// ---- repository policies ----

void EcrApi::set_repository_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string policy = json::string_or(input, "policyText", "");
  if (auto status = validate_repository_policy(policy); !status) {
    return reply(std::unexpected(status.error()));
  }
  state_.update_repository(
      *ref,
      [policy](Repository& repository) -> Status {
        repository.policy = policy;
        return {};
      },
      reply_with<Repository>(std::move(reply), [ref = *ref, policy](const Repository&) {
        bj::object output = repository_fields(ref);
        output["policyText"] = policy;
        return output;
      }));
}

void EcrApi::get_repository_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto repository = state_.repository(*ref);
  if (!repository) return reply(std::unexpected(repository.error()));
  if (!repository->policy) return reply(std::unexpected(policy_not_found(*ref)));
  bj::object output = repository_fields(*ref);
  output["policyText"] = *repository->policy;
  reply(std::move(output));
}

void EcrApi::delete_repository_policy(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto removed = std::make_shared<std::string>();
  state_.update_repository(
      *ref,
      [ref = *ref, removed](Repository& repository) -> Status {
        if (!repository.policy) return std::unexpected(policy_not_found(ref));
        *removed = *repository.policy;
        repository.policy.reset();
        return {};
      },
      reply_with<Repository>(std::move(reply), [ref = *ref, removed](const Repository&) {
        bj::object output = repository_fields(ref);
        output["policyText"] = *removed;
        return output;
      }));
}

// ---- tags ----

void EcrApi::tag_resource(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_from_arn(context, json::string_or(input, "resourceArn", ""));
  if (!ref) return reply(std::unexpected(ref.error()));
  EcrTags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_wire(*list);
  state_.update_repository(
      *ref,
      [tags = std::move(tags)](Repository& repository) -> Status {
        if (auto status = validate_ecr_tags(tags, repository.tags); !status) return status;
        for (const auto& [key, value] : tags) repository.tags[key] = value;
        return {};
      },
      reply_with<Repository>(std::move(reply), [](const Repository&) { return bj::object{}; }));
}

void EcrApi::untag_resource(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_from_arn(context, json::string_or(input, "resourceArn", ""));
  if (!ref) return reply(std::unexpected(ref.error()));
  std::vector<std::string> keys = string_list(input, "tagKeys");
  if (auto status = validate_ecr_tag_keys(keys); !status) {
    return reply(std::unexpected(status.error()));
  }
  state_.update_repository(
      *ref,
      [keys = std::move(keys)](Repository& repository) -> Status {
        for (const auto& key : keys) repository.tags.erase(key);
        return {};
      },
      reply_with<Repository>(std::move(reply), [](const Repository&) { return bj::object{}; }));
}

void EcrApi::list_tags_for_resource(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_from_arn(context, json::string_or(input, "resourceArn", ""));
  if (!ref) return reply(std::unexpected(ref.error()));
  auto repository = state_.repository(*ref);
  if (!repository) return reply(std::unexpected(repository.error()));
  reply(bj::object{{"tags", tags_to_wire(repository->tags)}});
}

// ---- registry and authorization ----

void EcrApi::describe_registry(const Context& context, const Input&, Reply reply) {
  reply(bj::object{{"registryId", context.account_id},
                   {"replicationConfiguration", bj::object{{"rules", bj::array{}}}}});
}

void EcrApi::get_authorization_token(const Context& context, const Input& input, Reply reply) {
  std::string proxy = endpoint();
  if (proxy.empty()) {
    return reply(fail(ErrorCode::kInternal, "the registry endpoint is not known yet"));
  }
  std::vector<std::string> registry_ids = string_list(input, "registryIds");
  if (registry_ids.empty()) registry_ids.push_back(context.account_id);
  for (const auto& registry_id : registry_ids) {
    bool digits =
        registry_id.size() == 12 && std::all_of(registry_id.begin(), registry_id.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      return reply(
          invalid("Invalid parameter at 'registryIds' failed to satisfy constraint: "
                  "'Member must satisfy regular expression pattern: [0-9]{12}'"));
    }
  }
  AuthorizationToken token = auth_.issue_authorization_token(context.account_id, context.region,
                                                             context.access_key_id, clock_.now());
  bj::array data;
  for (std::size_t id_idx = 0; id_idx < registry_ids.size(); ++id_idx) {
    data.push_back(bj::object{{"authorizationToken", token.token},
                              {"expiresAt", epoch_seconds(token.expires_at)},
                              {"proxyEndpoint", proxy}});
  }
  reply(bj::object{{"authorizationData", std::move(data)}});
}

}  // namespace wharf::registry
