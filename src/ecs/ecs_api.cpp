// Registration of the ECS operations and the helpers they share.
#include "ecs/ecs_api.hpp"

#include <random>

#include "common/arn.hpp"

namespace wharf::ecs {

EcsApi::EcsApi(EcsState& state, const Clock& clock, const aws::PageTokens& tokens)
    : state_(state),
      clock_(clock),
      tokens_(tokens),
      assignments_(clock),
      rng_(std::random_device{}()) {}

void EcsApi::register_operations(aws::JsonService& service) {
  using Method = void (EcsApi::*)(const Context&, const Input&, Reply);
  auto operation = [this](Method method) {
    return [this, method](const Context& context, const Input& input, Reply reply) {
      (this->*method)(context, input, std::move(reply));
    };
  };
  auto bind = [&](const char* name, Method method) { service.add(name, operation(method)); };
  bind("CreateCluster", &EcsApi::create_cluster);
  bind("DescribeClusters", &EcsApi::describe_clusters);
  bind("ListClusters", &EcsApi::list_clusters);
  bind("UpdateCluster", &EcsApi::update_cluster);
  bind("UpdateClusterSettings", &EcsApi::update_cluster_settings);
  bind("DeleteCluster", &EcsApi::delete_cluster);
  bind("RegisterTaskDefinition", &EcsApi::register_task_definition);
  bind("DescribeTaskDefinition", &EcsApi::describe_task_definition);
  bind("ListTaskDefinitions", &EcsApi::list_task_definitions);
  bind("ListTaskDefinitionFamilies", &EcsApi::list_task_definition_families);
  bind("DeregisterTaskDefinition", &EcsApi::deregister_task_definition);
  bind("DeleteTaskDefinitions", &EcsApi::delete_task_definitions);
  bind("TagResource", &EcsApi::tag_resource);
  bind("UntagResource", &EcsApi::untag_resource);
  bind("ListTagsForResource", &EcsApi::list_tags_for_resource);
  bind("PutAccountSetting", &EcsApi::put_account_setting);
  bind("PutAccountSettingDefault", &EcsApi::put_account_setting_default);
  bind("DeleteAccountSetting", &EcsApi::delete_account_setting);
  bind("ListAccountSettings", &EcsApi::list_account_settings);
  bind("RegisterContainerInstance", &EcsApi::register_container_instance);
  bind("DeregisterContainerInstance", &EcsApi::deregister_container_instance);
  bind("DescribeContainerInstances", &EcsApi::describe_container_instances);
  bind("ListContainerInstances", &EcsApi::list_container_instances);
  bind("UpdateContainerInstancesState", &EcsApi::update_container_instances_state);
  bind("DiscoverPollEndpoint", &EcsApi::discover_poll_endpoint);
  bind("PutAttributes", &EcsApi::put_attributes);
  bind("DeleteAttributes", &EcsApi::delete_attributes);
  bind("ListAttributes", &EcsApi::list_attributes);
  bind("RunTask", &EcsApi::run_task);
  bind("StartTask", &EcsApi::start_task);
  bind("StopTask", &EcsApi::stop_task);
  bind("DescribeTasks", &EcsApi::describe_tasks);
  bind("ListTasks", &EcsApi::list_tasks);
  bind("SubmitTaskStateChange", &EcsApi::submit_task_state_change);
  bind("SubmitContainerStateChange", &EcsApi::submit_container_state_change);
  // Wharf's own: the agent's long poll for its instance's tasks (docs/agent-protocol.md).
  service.add_unmodelled("WharfPollTasks", operation(&EcsApi::poll_tasks));
}

void EcsApi::set_endpoint(std::string endpoint) {
  std::lock_guard lock(endpoint_mutex_);
  endpoint_ = std::move(endpoint);
}

std::string EcsApi::endpoint() const {
  std::lock_guard lock(endpoint_mutex_);
  return endpoint_;
}

void EcsApi::commit_then_reply(std::vector<store::Mutation> mutations, boost::json::object output,
                               Reply reply) {
  state_.persist(std::move(mutations),
                 [reply = std::move(reply), output = std::move(output)](Status status) mutable {
                   if (!status) return reply(std::unexpected(status.error()));
                   reply(std::move(output));
                 });
}

std::string EcsApi::arn(const Context& context, std::string_view resource) const {
  return Arn{"aws", "ecs", context.region, context.account_id, std::string(resource)}.str();
}

std::string EcsApi::identifier_arn(const Context& context, const std::string& cluster,
                                   const std::string& identifier) const {
  if (looks_like_arn(identifier)) return identifier;
  return arn(context, "container-instance/" + cluster + "/" + identifier);
}

Result<std::string> EcsApi::cluster_name(const Context& context,
                                         std::string_view identifier) const {
  if (!looks_like_arn(identifier)) return std::string(identifier);
  auto parsed = parse_arn(identifier);
  if (!parsed || parsed->service != "ecs" || parsed->resource_type() != "cluster") {
    return invalid("'" + std::string(identifier) +
                   "' is not a cluster ARN: expected "
                   "arn:aws:ecs:REGION:ACCOUNT:cluster/NAME.");
  }
  if (parsed->region != context.region || parsed->account != context.account_id) {
    return fail(ErrorCode::kClusterNotFound,
                "Cluster " + std::string(identifier) + " belongs to another region or account.");
  }
  return std::string(parsed->resource_id());
}

Result<Cluster*> EcsApi::active_cluster(const Context& context, RegionState& region,
                                        std::string_view identifier) const {
  auto name = cluster_name(context, identifier);
  if (!name) return std::unexpected(name.error());
  auto found = region.clusters.find(*name);
  if (found == region.clusters.end() || found->second.status != "ACTIVE") {
    return fail(ErrorCode::kClusterNotFound, "Cluster not found.");
  }
  return &found->second;
}

}  // namespace wharf::ecs
