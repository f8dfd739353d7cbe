// The ECS API operations Wharf implements, registered on the JSON protocol service.
#pragma once

#include <boost/json.hpp>

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "common/clock.hpp"
#include "ecs/assignment_watch.hpp"
#include "ecs/state.hpp"
#include "ecs/task_report.hpp"
#include "scheduler/placement.hpp"

namespace wharf::ecs {

// A RunTask or StartTask request, read and checked (task_api.cpp).
struct TaskLaunch;

class EcsApi {
 public:
  EcsApi(EcsState& state, const Clock& clock, const aws::PageTokens& tokens);

  void register_operations(aws::JsonService& service);
  // The URL agents are told to poll (DiscoverPollEndpoint); known once the listener is up.
  void set_endpoint(std::string endpoint);

  // Agents' long polls (WharfPollTasks): start() times them out on a thread of its own; stop()
  // answers every held poll at once, so call it before stopping the listener, whose graceful
  // stop waits for in-flight requests.
  void start_long_polls() { assignments_.start(); }
  void stop_long_polls() { assignments_.stop(); }
  // One timeout pass now (tests drive it with a manual clock); returns the polls answered.
  std::size_t expire_long_polls() { return assignments_.expire_once(); }

  // A security group's rules changed: agents of awsvpc tasks in the region get their tasks'
  // ingress rules again. Call without the state's mutex held.
  void security_groups_changed(const std::string& region_name);

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
  // task_api.cpp
  void run_task(const Context& context, const Input& input, Reply reply);
  void start_task(const Context& context, const Input& input, Reply reply);
  void stop_task(const Context& context, const Input& input, Reply reply);
  void describe_tasks(const Context& context, const Input& input, Reply reply);
  void list_tasks(const Context& context, const Input& input, Reply reply);
  // task_state_api.cpp: what agents call
  void poll_tasks(const Context& context, const Input& input, Reply reply);
  void submit_task_state_change(const Context& context, const Input& input, Reply reply);
  void submit_container_state_change(const Context& context, const Input& input, Reply reply);
  // Applies an agent's report to the task the input names; acknowledges once durable.
  void apply_report(const Context& context, const Input& input, TaskReport report, Reply reply);
  // account_setting_api.cpp
  void put_account_setting(const Context& context, const Input& input, Reply reply);
  void put_account_setting_default(const Context& context, const Input& input, Reply reply);
  void delete_account_setting(const Context& context, const Input& input, Reply reply);
  void list_account_settings(const Context& context, const Input& input, Reply reply);

  // Persists the mutations, then replies with `output` (or the store's error). Call with the
  // state's mutex held exclusively.
  void commit_then_reply(std::vector<store::Mutation> mutations, boost::json::object output,
                         Reply reply);

  // What one request changed about tasks: the tasks to persist, the instances whose
  // remainingResources changed, and the instances whose agents must hear of it.
  struct TaskChanges {
    std::set<const Task*> tasks;
    std::set<ContainerInstance*> resized;
    std::set<ContainerInstance*> reassigned;
    std::vector<store::Mutation> mutations;  // anything else to persist with them
    // An ENI came or went: every agent with awsvpc tasks hears of it (once, at commit).
    bool memberships_changed = false;

    bool empty() const {
      return tasks.empty() && resized.empty() && reassigned.empty() && !memberships_changed;
    }
  };
  // Records a change of `task` (and of its instance's assignment, when the instance is known).
  void note_task_change(RegionState& region, Task& task, TaskChanges& changes,
                        bool assignment_changed = true) const;
  // Persists the changes (bumping the versions of resized instances), then publishes the new
  // assignments to waiting agents, then replies. Call with the state's mutex held exclusively.
  void commit_task_changes(const Context& context, RegionState& region, TaskChanges changes,
                           boost::json::object output, Reply reply);
  // An instance's new assignment: staged under the state's lock, published once the store has
  // what it reflects (from a persist callback).
  struct Publication {
    std::string instance_arn;
    int64_t version;
    Assignment assignment;
  };
  // Stages a new assignment for each of the instances. Call with the state's mutex held
  // exclusively.
  std::vector<Publication> stage_assignments(RegionState& region,
                                             const std::set<ContainerInstance*>& instances);
  // Hands the staged assignments to their agents.
  void publish_assignments(std::vector<Publication> publications);
  // What an instance's agent is told (WharfPollTasks): every task placed there that is not yet
  // STOPPED, and the members of the security groups their rules name.
  Assignment assigned_tasks(RegionState& region, const ContainerInstance& instance) const;
  // Moves a task straight to STOPPED (its agent will never report it) and frees its reservation.
  void stop_without_agent(RegionState& region, Task& task, TaskChanges& changes) const;
  // Frees a task's reservation on its instance, once the task is STOPPED.
  // Takes the host ports the agent bound for the task (dynamic ports) off the instance's
  // remainingResources, so they are given back with the rest when it stops.
  void hold_bound_ports(RegionState& region, Task& task, TaskChanges& changes) const;
  void release_task(RegionState& region, const Task& task, TaskChanges& changes) const;
  ContainerInstance* instance_of(RegionState& region, const Task& task) const;
  // The task of the cluster an identifier (an id or a task ARN) names, or nullptr.
  Task* find_task(const Context& context, RegionState& region, const std::string& cluster,
                  std::string_view identifier) const;
  // What RunTask and StartTask share: the request read and checked, and the tasks created.
  Result<TaskLaunch> read_launch(const Context& context, const Input& input) const;
  // The ACTIVE cluster and the runnable (ACTIVE) task definition a RunTask or StartTask names.
  struct LaunchTarget {
    std::string cluster;
    const TaskDefinition* definition;
  };
  Result<LaunchTarget> launch_target(const Context& context, RegionState& region,
                                     const TaskLaunch& launch) const;
  Result<Task*> launch_task(const Context& context, RegionState& region, const TaskLaunch& launch,
                            ContainerInstance& instance, TaskChanges& changes);
  // task_network.cpp: awsvpc. Checks the launch's subnets and groups (filling in the VPC's
  // default group when it names none) and that `count` addresses are free.
  Status check_awsvpc(const Context& context, RegionState& region, TaskLaunch& launch,
                      int64_t count) const;
  // The next task's ENI: the lowest free address of the first subnet with one.
  Result<EniAttachment> new_eni(const Context& context, const RegionState& region,
                                const TaskLaunch& launch) const;
  // What the task's agent is told about its ENI: address, subnet and the ingress rules. The
  // groups the rules name are added to `source_groups`: their members go to the agent beside
  // the tasks (Assignment::group_members).
  boost::json::object eni_assignment(const RegionState& region, const Task& task,
                                     std::set<std::string>& source_groups) const;
  // An ENI came or went, so source-group memberships changed: commit_task_changes tells every
  // agent with awsvpc tasks their rules again.
  static void note_membership_change(TaskChanges& changes) { changes.memberships_changed = true; }
  // Marks the task's ENI DETACHED, its address and group memberships free, unless it already is
  // (or the task has none).
  void detach_eni(Task& task, TaskChanges& changes) const;
  // Adds the (not INACTIVE) instances that run tasks whose ENI is in use.
  void add_awsvpc_instances(RegionState& region, std::set<ContainerInstance*>& instances) const;
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

  // One page of a List operation over `items` (id → a resource with an `arn`, in id order): the
  // ARNs of the wanted ones after the page's start, under `arns_key`, and a nextToken when more
  // remain.
  template <typename Items, typename Wanted>
  boost::json::object arn_page(const Items& items, const aws::PageRequest& page, Wanted wanted,
                               std::string_view scope, std::string_view arns_key) const {
    boost::json::array arns;
    boost::json::object output;
    std::string last_id;
    auto item = page.after ? items.upper_bound(*page.after) : items.begin();
    for (; item != items.end(); ++item) {
      if (!wanted(item->second)) continue;
      if (arns.size() == static_cast<std::size_t>(page.max_results)) {
        output["nextToken"] = tokens_.issue(scope, last_id, clock_.now());
        break;
      }
      arns.push_back(boost::json::string(item->second.arn));
      last_id = item->first;
    }
    output[arns_key] = std::move(arns);
    return output;
  }

  EcsState& state_;
  const Clock& clock_;
  const aws::PageTokens& tokens_;
  AssignmentWatch assignments_;
  scheduler::Rng rng_;  // placement's random strategy; used under the state's exclusive lock
  mutable std::mutex endpoint_mutex_;
  std::string endpoint_;
};

}  // namespace wharf::ecs
