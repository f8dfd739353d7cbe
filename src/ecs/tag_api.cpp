// Tagging operations for clusters, task definitions, container instances and tasks.
#include <mutex>

#include "common/arn.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/validation.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// The tags of the resource an ARN names, and how to persist a change to them.
struct TaggedResource {
  Tags* tags = nullptr;
  std::function<store::Mutation()> persist;
};

}  // namespace

// Resolves resourceArn to a cluster, task definition, container instance or task of the caller's
// account and region.
static Result<TaggedResource> find_tagged(
    const aws::CallContext& context, EcsState& state, const std::string& resource_arn,
    const std::function<Result<TaskDefinition*>(RegionState&)>& find_definition) {
  auto parsed = parse_arn(resource_arn);
  if (!parsed || parsed->service != "ecs") {
    return invalid("'" + resource_arn + "' is not a valid ECS resource ARN.");
  }
  if (parsed->region != context.region || parsed->account != context.account_id) {
    return fail(ErrorCode::kNotFound, "The specified resource " + resource_arn +
                                          " does not exist in this account and region.");
  }
  RegionState& region = state.region(context.region);
  if (parsed->resource_type() == "cluster") {
    auto found = region.clusters.find(parsed->resource_id());
    if (found == region.clusters.end() || found->second.status != "ACTIVE") {
      return fail(ErrorCode::kClusterNotFound, "Cluster " + resource_arn + " not found.");
    }
    Cluster* cluster = &found->second;
    std::string region_name = context.region;
    return TaggedResource{&cluster->tags,
                          [cluster, region_name] { return EcsState::put(region_name, *cluster); }};
  }
  if (parsed->resource_type() == "task-definition") {
    auto definition = find_definition(region);
    if (!definition) {
      return fail(ErrorCode::kNotFound,
                  "The specified task definition " + resource_arn + " does not exist.");
    }
    TaskDefinition* found = *definition;
    std::string region_name = context.region;
    return TaggedResource{&found->tags,
                          [found, region_name] { return EcsState::put(region_name, *found); }};
  }
  if (parsed->resource_type() == "container-instance") {
    // container-instance/CLUSTER/ID
    std::string_view rest = parsed->resource_id();
    auto slash = rest.find('/');
    auto instances = region.container_instances.find(rest.substr(0, slash));
    ContainerInstance* instance = nullptr;
    if (slash != std::string_view::npos && instances != region.container_instances.end()) {
      auto found = instances->second.find(rest.substr(slash + 1));
      if (found != instances->second.end() && found->second.status != "INACTIVE") {
        instance = &found->second;
      }
    }
    if (instance == nullptr) {
      return fail(ErrorCode::kNotFound,
                  "The specified container instance " + resource_arn + " does not exist.");
    }
    std::string region_name = context.region;
    return TaggedResource{
        &instance->tags, [instance, region_name] { return EcsState::put(region_name, *instance); }};
  }
  if (parsed->resource_type() == "task") {
    // task/CLUSTER/ID
    std::string_view rest = parsed->resource_id();
    auto slash = rest.find('/');
    Task* task = slash == std::string_view::npos
                     ? nullptr
                     : region.find_task(rest.substr(0, slash), rest.substr(slash + 1));
    if (task == nullptr) {
      return fail(ErrorCode::kNotFound, "The specified task " + resource_arn + " does not exist.");
    }
    std::string region_name = context.region;
    return TaggedResource{&task->tags,
                          [task, region_name] { return EcsState::put(region_name, *task); }};
  }
  return invalid("Resource type '" + std::string(parsed->resource_type()) +
                 "' cannot be tagged here; tag clusters, task definitions, container "
                 "instances and tasks.");
}

void EcsApi::tag_resource(const Context& context, const Input& input, Reply reply) {
  std::string resource_arn = json::string_or(input, "resourceArn", "");
  Tags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_json(*list);
  std::unique_lock lock(state_.mutex());
  auto resource = find_tagged(context, state_, resource_arn, [&](RegionState& region) {
    return find_task_definition(context, region, resource_arn, false);
  });
  if (!resource) return reply(std::unexpected(resource.error()));
  if (auto status = validate_tags(tags, *resource->tags); !status) {
    return reply(std::unexpected(status.error()));
  }
  merge_tags(*resource->tags, tags);
  commit_then_reply({resource->persist()}, bj::object{}, std::move(reply));
}

void EcsApi::untag_resource(const Context& context, const Input& input, Reply reply) {
  std::string resource_arn = json::string_or(input, "resourceArn", "");
  std::vector<std::string> keys;
  if (const auto* list = json::get_array(input, "tagKeys")) {
    for (const auto& key : *list) keys.emplace_back(key.as_string());
  }
  if (auto status = validate_tag_keys_for_removal(keys); !status) {
    return reply(std::unexpected(status.error()));
  }
  std::unique_lock lock(state_.mutex());
  auto resource = find_tagged(context, state_, resource_arn, [&](RegionState& region) {
    return find_task_definition(context, region, resource_arn, false);
  });
  if (!resource) return reply(std::unexpected(resource.error()));
  std::erase_if(*resource->tags, [&](const auto& tag) {
    return std::find(keys.begin(), keys.end(), tag.first) != keys.end();
  });
  commit_then_reply({resource->persist()}, bj::object{}, std::move(reply));
}

void EcsApi::list_tags_for_resource(const Context& context, const Input& input, Reply reply) {
  std::string resource_arn = json::string_or(input, "resourceArn", "");
  // Resolution may create an empty region entry, so this takes the writer lock; listing tags is
  // not a hot path.
  std::unique_lock lock(state_.mutex());
  auto resource = find_tagged(context, state_, resource_arn, [&](RegionState& region) {
    return find_task_definition(context, region, resource_arn, false);
  });
  if (!resource) return reply(std::unexpected(resource.error()));
  reply(bj::object{{"tags", tags_to_json(*resource->tags)}});
}

}  // namespace wharf::ecs
