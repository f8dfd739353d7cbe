// The EC2 networking operations Wharf implements (default VPC, subnets, security groups, tags),
// registered on the EC2 Query protocol service.
#pragma once

#include <boost/json.hpp>

#include <functional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/query_api.hpp"
#include "common/clock.hpp"
#include "ecs/state.hpp"

namespace wharf::ecs {

class Ec2Api {
 public:
  using Context = aws::CallContext;
  using Input = boost::json::object;
  using Reply = aws::JsonReply;

  Ec2Api(EcsState& state, const Clock& clock);

  // The operations below; the egress ones only when the service's model has them.
  void register_operations(aws::QueryService& service);

  // Runs with the region's name after a change to a security group's rules (Authorize*, Revoke*,
  // DeleteSecurityGroup) is durable and before the caller hears back; on a store thread, so keep
  // it short and never take the state's mutex exclusively there. Set before serving.
  void on_security_groups_changed(std::function<void(const std::string& region)> callback);

  // The operations (called directly by tests); each first makes sure the caller's region has its
  // default network.
  void create_security_group(const Context& context, const Input& input, Reply reply);
  void authorize_security_group_ingress(const Context& context, const Input& input, Reply reply);
  void revoke_security_group_ingress(const Context& context, const Input& input, Reply reply);
  void authorize_security_group_egress(const Context& context, const Input& input, Reply reply);
  void revoke_security_group_egress(const Context& context, const Input& input, Reply reply);
  void describe_security_groups(const Context& context, const Input& input, Reply reply);
  void delete_security_group(const Context& context, const Input& input, Reply reply);
  void create_subnet(const Context& context, const Input& input, Reply reply);
  void describe_subnets(const Context& context, const Input& input, Reply reply);
  void delete_subnet(const Context& context, const Input& input, Reply reply);
  void describe_vpcs(const Context& context, const Input& input, Reply reply);
  void create_tags(const Context& context, const Input& input, Reply reply);
  void delete_tags(const Context& context, const Input& input, Reply reply);

 private:
  // A shared lock on the state once the region's default network exists.
  std::shared_lock<std::shared_mutex> read_lock(const std::string& region);
  // The region, its default network ensured; call with the mutex held exclusively.
  RegionState& write_region(const std::string& region);
  void change_rules(const Context& context, const Input& input, bool egress, bool authorize,
                    Reply reply);
  // Persists the mutations together with the region's default network (so a later change to the
  // defaults, such as deleting the default subnet, survives a restart), then calls the security
  // group callback when `rules_changed`, then replies. Call with the mutex held exclusively.
  void commit_then_reply(const std::string& region_name, const RegionState& region,
                         std::vector<store::Mutation> mutations, boost::json::object output,
                         bool rules_changed, Reply reply);

  EcsState& state_;
  const Clock& clock_;
  std::function<void(const std::string&)> security_groups_changed_;
};

}  // namespace wharf::ecs
