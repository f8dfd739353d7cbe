// The ECS API operations Wharf implements, registered on the JSON protocol service.
#pragma once

#include <boost/json.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "common/clock.hpp"
#include "ecs/state.hpp"

namespace wharf::ecs {

class EcsApi {
 public:
  EcsApi(EcsState& state, const Clock& clock, const aws::PageTokens& tokens)
      : state_(state), clock_(clock), tokens_(tokens) {}

  void register_operations(aws::JsonService& service);
  // The URL agents are told to poll (DiscoverPollEndpoint); known once the listener is up.
  void set_endpoint(std::string endpoint);

 private:
  using Context = aws::CallContext;
  using Input = boost::json::object;
  using Reply = aws::JsonReply;

  // cluster_api.cpp
  void create_cluster(const Context& context, const Input& input, Reply reply);
  void describe_clusters(const Context& context, const Input& input, Reply reply);
  void list_clusters(const Context& context, const Input& input, Reply reply);
  void update_cluster(const Context& context, const Input& input, Reply reply);
  void update_cluster_settings(const Context& context, const Input& input, Reply reply);
  void delete_cluster(const Context& context, const Input& input, Reply reply);
  // task_definition_api.cpp
  void register_task_definition(const Context& context, const Input& input, Reply reply);
  void describe_task_definition(const Context& context, const Input& input, Reply reply);
  void list_task_definitions(const Context& context, const Input& input, Reply reply);
  void list_task_definition_families(const Context& context, const Input& input, Reply reply);
  void deregister_task_definition(const Context& context, const Input& input, Reply reply);
  void delete_task_definitions(const Context& context, const Input& input, Reply reply);
  // tag_api.cpp
  void tag_resource(const Context& context, const Input& input, Reply reply);
  void untag_resource(const Context& context, const Input& input, Reply reply);
  void list_tags_for_resource(const Context& context, const Input& input, Reply reply);
  // container_instance_api.cpp
  void register_container_instance(const Context& context, const Input& input, Reply reply);
  void deregister_container_instance(const Context& context, const Input& input, Reply reply);
  void describe_container_instances(const Context& context, const Input& input, Reply reply);
  void list_container_instances(const Context& context, const Input& input, Reply reply);
  void update_container_instances_state(const Context& context, const Input& input, Reply reply);
  void discover_poll_endpoint(const Context& context, const Input& input, Reply reply);
  void put_attributes(const Context& context, const Input& input, Reply reply);
  void delete_attributes(const Context& context, const Input& input, Reply reply);
  void list_attributes(const Context& context, const Input& input, Reply reply);
  // account_setting_api.cpp
  void put_account_setting(const Context& context, const Input& input, Reply reply);
  void put_account_setting_default(const Context& context, const Input& input, Reply reply);
  void delete_account_setting(const Context& context, const Input& input, Reply reply);
  void list_account_settings(const Context& context, const Input& input, Reply reply);

  // Persists the mutations, then replies with `output` (or the store's error). Call with the
  // state's mutex held exclusively.
  void commit_then_reply(std::vector<store::Mutation> mutations, boost::json::object output,
                         Reply reply);
  std::string arn(const Context& context, std::string_view resource) const;
  // The ARN a container instance identifier (an id or an ARN) stands for, for failure entries.
  std::string identifier_arn(const Context& context, const std::string& cluster,
                             const std::string& identifier) const;
  // The cluster name a "name or ARN" identifier stands for, or an error when the ARN is not an
  // ECS cluster of this account and region.
  Result<std::string> cluster_name(const Context& context, std::string_view identifier) const;
  // The named cluster if ACTIVE, else ClusterNotFoundException.
  Result<Cluster*> active_cluster(const Context& context, RegionState& region,
                                  std::string_view identifier) const;
  // family:revision, an ARN, or a bare family (latest ACTIVE revision) when allowed.
  Result<TaskDefinition*> find_task_definition(const Context& context, RegionState& region,
                                               std::string_view identifier,
                                               bool allow_bare_family) const;

  // A container instance of the cluster, by ARN or id, in any status; kNotFound when the
  // identifier names none (or an instance of another cluster, region or account).
  Result<ContainerInstance*> find_container_instance(const Context& context, RegionState& region,
                                                     const std::string& cluster,
                                                     std::string_view identifier) const;
  std::string endpoint() const;

  EcsState& state_;
  const Clock& clock_;
  const aws::PageTokens& tokens_;
  mutable std::mutex endpoint_mutex_;
  std::string endpoint_;
};

}  // namespace wharf::ecs
