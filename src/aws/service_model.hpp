// The ECS, ECR, EC2, Secrets Manager and SSM service models (from botocore), and request
// validation against them.
#pragma once

#include <memory>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "common/error.hpp"

namespace wharf::aws {

struct ModelGraph;  // the loaded shapes and operations; defined in service_model.cpp

// One AWS service's API as its model describes it: operations, their input shapes and the
// exceptions it declares. Loaded once into a graph of C++ structs so that validating a request
// walks the request, never the model's JSON.
class ServiceModel {
 public:
  // The models embedded in the binary (src/aws/models/, written by tools/strip_model.py). Parsed
  // on first use; safe to call from any thread.
  static const ServiceModel& ecs();
  static const ServiceModel& ecr();
  // A subset of EC2's: the operations tools/strip_model.py was told to keep.
  static const ServiceModel& ec2();
  // A subset of Secrets Manager's, likewise.
  static const ServiceModel& secretsmanager();
  // A subset of SSM's: the Parameter Store operations.
  static const ServiceModel& ssm();

  // Reads a model in botocore's service-2.json format, or the stripped subset of it that
  // src/aws/models/ holds.
  static Result<ServiceModel> parse(std::string_view model_json);

  ServiceModel(ServiceModel&&) noexcept;
  ServiceModel& operator=(ServiceModel&&) noexcept;
  ~ServiceModel();

  // The X-Amz-Target prefix, e.g. "AmazonEC2ContainerServiceV20141113".
  std::string_view target_prefix() const;
  bool has_operation(std::string_view name) const;

  // Checks a request body against the operation's input shape, the way AWS's front end does,
  // before any handler runs:
  //  - a body that is not a JSON object → kSerialization; an unknown operation → kUnknownOperation
  //  - a missing required member → kMissingParameter (JSON services send it as
  //    InvalidParameterException too)
  //    "Missing required parameter: containerDefinitions[0].name"
  //  - a value of the wrong JSON type → kInvalidParameter
  //    "Invalid type for parameter containerDefinitions[0].cpu: expected an integer, got a string
  //    ("abc")"
  //  - enum, length and range violations → kInvalidParameter in AWS's (Coral's) words, all of
  //    them up to a small cap: "1 validation error detected: Value 'foo' at 'networkMode' failed
  //    to satisfy constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"
  // Members the model does not know are ignored and JSON null counts as absent, as with AWS.
  // Regular-expression patterns are not checked: the models write them in Java's dialect.
  Status validate_input(std::string_view operation, const boost::json::value& body) const;

  // Whether the model declares `shape_name` as an exception ("ClusterNotFoundException").
  bool is_exception(std::string_view shape_name) const;

  // The loaded shapes (model_graph.hpp), for the wire codecs in src/aws that name members by
  // their XML and Query traits.
  const ModelGraph& graph() const { return *graph_; }

 private:
  explicit ServiceModel(std::unique_ptr<const ModelGraph> graph);

  std::unique_ptr<const ModelGraph> graph_;
};

}  // namespace wharf::aws
