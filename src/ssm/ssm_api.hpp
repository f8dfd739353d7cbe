// The SSM Parameter Store API (JSON 1.1, target prefix "AmazonSSM"): parameters with versions,
// labels and tags, hierarchical listing. Agents read tasks' SSM `secrets` through
// GetParameters.
#pragma once

#include <boost/json/object.hpp>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "aws/json_api.hpp"
#include "aws/paging.hpp"
#include "common/clock.hpp"
#include "ssm/names.hpp"
#include "ssm/parameter.hpp"
#include "store/store.hpp"

namespace wharf::ssm {

class SsmApi {
 public:
  using Context = aws::CallContext;
  using Input = boost::json::object;
  using Reply = aws::JsonReply;

  SsmApi(store::Store& store, const Clock& clock, const aws::PageTokens& tokens);

  // Reads every stored parameter; call once before serving.
  Status load();
  void register_operations(aws::JsonService& service);

  // The operations (called directly by tests).
  void put_parameter(const Context& context, const Input& input, Reply reply);
  void get_parameter(const Context& context, const Input& input, Reply reply);
  void get_parameters(const Context& context, const Input& input, Reply reply);
  void get_parameters_by_path(const Context& context, const Input& input, Reply reply);
  void delete_parameter(const Context& context, const Input& input, Reply reply);
  void delete_parameters(const Context& context, const Input& input, Reply reply);
  void describe_parameters(const Context& context, const Input& input, Reply reply);
  void get_parameter_history(const Context& context, const Input& input, Reply reply);
  void label_parameter_version(const Context& context, const Input& input, Reply reply);
  void unlabel_parameter_version(const Context& context, const Input& input, Reply reply);
  void add_tags_to_resource(const Context& context, const Input& input, Reply reply);
  void remove_tags_from_resource(const Context& context, const Input& input, Reply reply);
  void list_tags_for_resource(const Context& context, const Input& input, Reply reply);

 private:
  using Parameters = std::map<std::string, Parameter, std::less<>>;  // by name

  // The parameter `reference` names (ParameterNotFound otherwise). Call with mutex_ held.
  Result<Parameter*> find(const Context& context, const ParameterReference& reference);
  // The parameter the request's Name names, which must be a plain name without a selector.
  Result<Parameter*> find_named(const Context& context, const Input& input);
  // The parameter a tagging call's ResourceType and ResourceId name.
  Result<Parameter*> find_resource(const Context& context, const Input& input);
  // Puts a new version of `name` (a new parameter when there is none) as PutParameter asks.
  Result<const ParameterVersion*> put_version(const Context& context, const Input& input,
                                              std::vector<store::Mutation>& mutations);
  static store::Mutation put(const std::string& region, const Parameter& parameter);
  static store::Mutation remove(const std::string& region, const std::string& name);

  store::Store& store_;
  const Clock& clock_;
  const aws::PageTokens& tokens_;
  std::mutex mutex_;
  std::map<std::string, Parameters, std::less<>> regions_;
};

}  // namespace wharf::ssm
