// Unit tests for the embedded service models and request validation against them.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "aws/service_model.hpp"

namespace wharf::aws {
namespace {

// One request and what validation must say about it; no code means it must pass.
struct ValidationCase {
  std::string_view name;
  std::string_view operation;
  std::string_view body;
  std::optional<ErrorCode> code = std::nullopt;
  std::string_view message = {};
};

void expect_cases(const ServiceModel& model, std::initializer_list<ValidationCase> cases) {
  for (const ValidationCase& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    Status status = model.validate_input(test_case.operation, boost::json::parse(test_case.body));
    if (!test_case.code) {
      EXPECT_TRUE(status.has_value()) << status.error().message;
      continue;
    }
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().code, *test_case.code);
    EXPECT_EQ(status.error().message, test_case.message);
  }
}

constexpr std::string_view kFullTaskDefinition = R"({
  "family": "web",
  "taskRoleArn": "arn:aws:iam::123456789012:role/web",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["EC2", "FARGATE"],
  "cpu": "256",
  "memory": "512",
  "pidMode": "task",
  "tags": [{"key": "team", "value": "platform"}],
  "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}],
  "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
  "containerDefinitions": [{
    "name": "app",
    "image": "nginx:1.25",
    "cpu": 128,
    "memory": 256,
    "essential": true,
    "command": ["nginx", "-g", "daemon off;"],
    "environment": [{"name": "MODE", "value": "prod"}],
    "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/t"}],
    "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
    "dockerLabels": {"app": "web"},
    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
    "healthCheck": {"command": ["CMD", "true"], "interval": 30, "retries": 3},
    "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
    "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]
  }]
})";

TEST(ServiceModel, EcsRegisterTaskDefinition) {
  expect_cases(
      ServiceModel::ecs(),
      {
          {"a full request passes", "RegisterTaskDefinition", kFullTaskDefinition},
          {"missing family", "RegisterTaskDefinition", R"({"containerDefinitions": []})",
           ErrorCode::kMissingParameter, "Missing required parameter: family"},
          {"null counts as absent for a required member", "RegisterTaskDefinition",
           R"({"family": null, "containerDefinitions": []})", ErrorCode::kMissingParameter,
           "Missing required parameter: family"},
          {"null counts as absent for an optional member", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "cpu": null}],
               "networkMode": null, "tags": null})"},
          {"unknown members are ignored", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "colour": 7}],
               "futureFeature": {"anything": [1, 2]}})"},
          {"wrong type for a container's cpu", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "cpu": "abc"}]})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter containerDefinitions[0].cpu: expected an integer, got a string ("abc"))"},
          {"an integer with a fraction", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "cpu": 1.5}]})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter containerDefinitions[0].cpu: expected an integer, got a "
           "number (1.5)"},
          {"an integer too big for 32 bits", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "memory": 3000000000}]})",
           ErrorCode::kInvalidParameter,
           "Invalid value for parameter containerDefinitions[0].memory: 3000000000 does not fit "
           "in a 32-bit integer"},
          {"a string where a boolean belongs", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "essential": "true"}]})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter containerDefinitions[0].essential: expected a boolean, got a string ("true"))"},
          {"an object where a list belongs", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": {"name": "app"}})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter containerDefinitions: expected an array, got an object"},
          {"a nested list element of the wrong type", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "portMappings": [
                {"containerPort": 80}, {"containerPort": "8080"}]}]})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter containerDefinitions[0].portMappings[1].containerPort: expected an integer, got a string ("8080"))"},
          {"a scalar list element of the wrong type", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "command": ["sh", 1]}]})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter containerDefinitions[0].command[1]: expected a string, got "
           "an integer (1)"},
          {"a nested required member", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app",
               "secrets": [{"name": "TOKEN"}]}]})",
           ErrorCode::kMissingParameter,
           "Missing required parameter: containerDefinitions[0].secrets[0].valueFrom"},
          {"a map value of the wrong type", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app",
               "dockerLabels": {"app": 5}}]})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter containerDefinitions[0].dockerLabels.app: expected a "
           "string, got an integer (5)"},
          {"a sensitive value is not echoed", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app",
               "repositoryCredentials": {"credentialsParameter": 12345}}]})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter "
           "containerDefinitions[0].repositoryCredentials.credentialsParameter: expected a "
           "string, got an integer"},
          {"a value outside the enum", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [], "networkMode": "foo"})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value 'foo' at 'networkMode' failed to satisfy "
           "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"},
          {"enum values are case-sensitive", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [], "networkMode": "AWSVPC"})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value 'AWSVPC' at 'networkMode' failed to satisfy "
           "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"},
          {"a nested enum violation uses Coral's path", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [{"name": "app", "portMappings": [
                {"containerPort": 80, "protocol": "sctp"}]}]})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value 'sctp' at "
           "'containerDefinitions.1.member.portMappings.1.member.protocol' failed to satisfy "
           "constraint: Member must satisfy enum value set: [tcp, udp]"},
          {"several violations are reported together", "RegisterTaskDefinition",
           R"({"family": "web", "containerDefinitions": [], "networkMode": "foo",
               "pidMode": "bar"})",
           ErrorCode::kInvalidParameter,
           "2 validation errors detected: Value 'foo' at 'networkMode' failed to satisfy "
           "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]; "
           "Value 'bar' at 'pidMode' failed to satisfy constraint: Member must satisfy enum "
           "value set: [host, task]"},
          {"a type error wins over a constraint violation", "RegisterTaskDefinition",
           R"({"family": "web", "networkMode": "foo", "containerDefinitions": 3})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter containerDefinitions: expected an array, got an integer "
           "(3)"},
      });
}

TEST(ServiceModel, EcsCreateClusterTags) {
  std::string long_key(129, 'k');
  std::string too_long =
      R"({"tags": [{"key": "ok", "value": "1"}, {"key": ")" + long_key + R"(", "value": "2"}]})";
  std::string long_key_message =
      "1 validation error detected: Value '" + long_key +
      "' at 'tags.2.member.key' failed to satisfy constraint: Member must have length less "
      "than or equal to 128";

  expect_cases(
      ServiceModel::ecs(),
      {
          {"no input members at all", "CreateCluster", "{}"},
          {"tags pass", "CreateCluster",
           R"({"clusterName": "prod", "tags": [{"key": "team", "value": "platform"},
               {"key": "env", "value": ""}]})"},
          {"a tag key too long", "CreateCluster", too_long, ErrorCode::kInvalidParameter,
           long_key_message},
          {"an empty tag key", "CreateCluster", R"({"tags": [{"key": "", "value": "x"}]})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy "
           "constraint: Member must have length greater than or equal to 1"},
          {"a tag value of the wrong type", "CreateCluster",
           R"({"tags": [{"key": "team", "value": 42}]})", ErrorCode::kInvalidParameter,
           "Invalid type for parameter tags[0].value: expected a string, got an integer (42)"},
          {"tags as a map instead of a list", "CreateCluster", R"({"tags": {"team": "a"}})",
           ErrorCode::kInvalidParameter,
           "Invalid type for parameter tags: expected an array, got an object"},
      });
}

TEST(ServiceModel, TooManyTagsNamesTheList) {
  std::string body = R"({"tags": [)";
  for (int tag_idx = 0; tag_idx < 51; ++tag_idx) {
    body += (tag_idx > 0 ? R"(,{"key":"k","value":"v"})" : R"({"key":"k","value":"v"})");
  }
  body += "]}";
  Status status = ServiceModel::ecs().validate_input("CreateCluster", boost::json::parse(body));
  ASSERT_FALSE(status.has_value());
  EXPECT_TRUE(status.error().message.starts_with(
      "1 validation error detected: Value '[{key=k, value=v}, {key=k, value=v}"));
  EXPECT_TRUE(status.error().message.ends_with(
      "' at 'tags' failed to satisfy constraint: Member must have length less than or equal to "
      "50"))
      << status.error().message;
}

TEST(ServiceModel, RejectsBodiesThatAreNotObjectsAndUnknownOperations) {
  const ServiceModel& ecs = ServiceModel::ecs();
  for (std::string_view body : {"[]", "\"x\"", "null", "3"}) {
    Status status = ecs.validate_input("CreateCluster", boost::json::parse(body));
    ASSERT_FALSE(status.has_value()) << body;
    EXPECT_EQ(status.error().code, ErrorCode::kSerialization) << body;
  }
  Status status = ecs.validate_input("LaunchRockets", boost::json::parse("{}"));
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kUnknownOperation);
}

TEST(ServiceModel, EcsOperationsAndExceptions) {
  const ServiceModel& ecs = ServiceModel::ecs();
  EXPECT_EQ(ecs.target_prefix(), "AmazonEC2ContainerServiceV20141113");
  EXPECT_TRUE(ecs.has_operation("RegisterTaskDefinition"));
  EXPECT_TRUE(ecs.has_operation("CreateCluster"));
  EXPECT_TRUE(ecs.has_operation("ListTasks"));
  EXPECT_FALSE(ecs.has_operation("registerTaskDefinition"));
  EXPECT_FALSE(ecs.has_operation("GetAuthorizationToken"));
  EXPECT_FALSE(ecs.has_operation(""));
  EXPECT_TRUE(ecs.is_exception("ClusterNotFoundException"));
  EXPECT_TRUE(ecs.is_exception("InvalidParameterException"));
  EXPECT_TRUE(ecs.is_exception("ServerException"));
  EXPECT_FALSE(ecs.is_exception("Cluster"));
  EXPECT_FALSE(ecs.is_exception("RepositoryNotFoundException"));
  EXPECT_EQ(&ServiceModel::ecs(), &ecs);
}

TEST(ServiceModel, EcrModelLoads) {
  const ServiceModel& ecr = ServiceModel::ecr();
  EXPECT_EQ(ecr.target_prefix(), "AmazonEC2ContainerRegistry_V20150921");
  EXPECT_TRUE(ecr.has_operation("GetAuthorizationToken"));
  EXPECT_TRUE(ecr.has_operation("BatchGetImage"));
  EXPECT_FALSE(ecr.has_operation("RegisterTaskDefinition"));
  EXPECT_TRUE(ecr.is_exception("RepositoryNotFoundException"));
  EXPECT_FALSE(ecr.is_exception("ClusterNotFoundException"));
}

TEST(ServiceModel, EcrRequests) {
  expect_cases(
      ServiceModel::ecr(),
      {
          {"a repository", "CreateRepository",
           R"({"repositoryName": "team/web", "imageTagMutability": "IMMUTABLE",
               "tags": [{"Key": "team", "Value": "platform"}]})"},
          {"a repository name too short", "CreateRepository", R"({"repositoryName": "a"})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value 'a' at 'repositoryName' failed to satisfy "
           "constraint: Member must have length greater than or equal to 2"},
          {"a bad element in a list of names is reported against the list", "DescribeRepositories",
           R"({"repositoryNames": ["web", "a"]})", ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '[web, a]' at 'repositoryNames' failed to "
           "satisfy constraint: Member must satisfy constraint: [Member must have length less "
           "than or equal to 256, Member must have length greater than or equal to 2]"},
          {"an empty list below its minimum", "BatchGetImage",
           R"({"repositoryName": "web", "imageIds": []})", ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '[]' at 'imageIds' failed to satisfy "
           "constraint: Member must have length greater than or equal to 1"},
          {"a number below its minimum", "DescribeRepositories", R"({"maxResults": 0})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
           "constraint: Member must have value greater than or equal to 1"},
          {"a layer part", "UploadLayerPart",
           R"({"repositoryName": "web", "uploadId": "0c0d1d4e-0000-4000-8000-000000000000",
               "partFirstByte": 0, "partLastByte": 5, "layerPartBlob": "aGVsbG8="})"},
          {"a layer part that is not base64", "UploadLayerPart",
           R"({"repositoryName": "web", "uploadId": "0c0d1d4e-0000-4000-8000-000000000000",
               "partFirstByte": 0, "partLastByte": 5, "layerPartBlob": "hello!"})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter layerPartBlob: expected a base64-encoded string, got a string ("hello!"))"},
          {"a long beyond 32 bits", "UploadLayerPart",
           R"({"repositoryName": "web", "uploadId": "0c0d1d4e-0000-4000-8000-000000000000",
               "partFirstByte": 5000000000, "partLastByte": 5000000005,
               "layerPartBlob": "aGVsbG8="})"},
          {"a long beyond 64 bits", "UploadLayerPart",
           R"({"repositoryName": "web", "uploadId": "0c0d1d4e-0000-4000-8000-000000000000",
               "partFirstByte": 18446744073709551615, "partLastByte": 5,
               "layerPartBlob": "aGVsbG8="})",
           ErrorCode::kInvalidParameter,
           "Invalid value for parameter partFirstByte: 18446744073709551615 does not fit in a "
           "64-bit integer"},
      });
}

// A model with one of each remaining kind of shape, to check the rules the ECS and ECR inputs
// happen not to exercise.
constexpr std::string_view kKitchenSinkModel = R"({
  "metadata": {"targetPrefix": "Sink_20240101"},
  "operations": {
    "Put": {"name": "Put", "input": {"shape": "PutRequest"}},
    "Ping": {"name": "Ping"}
  },
  "shapes": {
    "PutRequest": {"type": "structure", "required": ["id"], "members": {
      "id": {"shape": "Id"}, "when": {"shape": "When"}, "ratio": {"shape": "Ratio"},
      "data": {"shape": "Data"}, "labels": {"shape": "Labels"}, "extra": {"shape": "Extra"},
      "secret": {"shape": "Secret"}}},
    "Id": {"type": "string", "min": 1, "max": 4},
    "When": {"type": "timestamp"},
    "Ratio": {"type": "float", "min": 0, "max": 1.5},
    "Data": {"type": "blob", "max": 3},
    "Labels": {"type": "map", "key": {"shape": "Colour"}, "value": {"shape": "Id"}, "max": 2},
    "Colour": {"type": "string", "enum": ["red", "green"]},
    "Extra": {"type": "structure", "document": true},
    "Secret": {"type": "string", "max": 2, "sensitive": true},
    "BadRequest": {"type": "structure", "exception": true, "members": {}}
  }
})";

TEST(ServiceModel, KitchenSinkModel) {
  auto model = ServiceModel::parse(kKitchenSinkModel);
  ASSERT_TRUE(model.has_value()) << model.error().message;
  EXPECT_EQ(model->target_prefix(), "Sink_20240101");
  EXPECT_TRUE(model->is_exception("BadRequest"));
  expect_cases(
      *model,
      {
          {"an operation without input", "Ping", "{}"},
          {"epoch seconds", "Put", R"({"id": "a", "when": 1700000000})"},
          {"fractional epoch seconds", "Put", R"({"id": "a", "when": 1700000000.25})"},
          {"an ISO-8601 date", "Put", R"({"id": "a", "when": "2024-05-01"})"},
          {"an ISO-8601 time in UTC", "Put", R"({"id": "a", "when": "2024-05-01T12:30:45.123Z"})"},
          {"an ISO-8601 time with an offset", "Put",
           R"({"id": "a", "when": "2024-05-01T12:30:45+02:00"})"},
          {"a timestamp that is not one", "Put", R"({"id": "a", "when": "yesterday"})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter when: expected a timestamp (epoch seconds or an ISO-8601 string), got a string ("yesterday"))"},
          {"a timestamp with month 13", "Put", R"({"id": "a", "when": "2024-13-01"})",
           ErrorCode::kInvalidParameter,
           R"(Invalid type for parameter when: expected a timestamp (epoch seconds or an ISO-8601 string), got a string ("2024-13-01"))"},
          {"an integer where a float belongs", "Put", R"({"id": "a", "ratio": 1})"},
          {"a float above its maximum", "Put", R"({"id": "a", "ratio": 2.5})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '2.5' at 'ratio' failed to satisfy constraint: "
           "Member must have value less than or equal to 1.5"},
          {"a blob within its length", "Put", R"({"id": "a", "data": "YWJj"})"},
          {"unpadded base64", "Put", R"({"id": "a", "data": "YWI"})"},
          {"a blob longer than its maximum, counted in bytes", "Put",
           R"({"id": "a", "data": "YWJjZA=="})", ErrorCode::kInvalidParameter,
           "1 validation error detected: Value at 'data' failed to satisfy constraint: Member "
           "must have length less than or equal to 3"},
          {"a document takes anything", "Put", R"({"id": "a", "extra": [1, {"x": null}]})"},
          {"a map", "Put", R"({"id": "a", "labels": {"red": "x", "green": "y"}})"},
          {"a map key outside the enum", "Put", R"({"id": "a", "labels": {"blue": "x"}})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '{blue=x}' at 'labels' failed to satisfy "
           "constraint: Map keys must satisfy constraint: [Member must satisfy enum value set: "
           "[red, green]]"},
          {"a map value too long", "Put", R"({"id": "a", "labels": {"red": "toolong"}})",
           ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '{red=toolong}' at 'labels' failed to satisfy "
           "constraint: Map value must satisfy constraint: [Member must have length less than "
           "or equal to 4, Member must have length greater than or equal to 1]"},
          {"a map with too many entries", "Put",
           R"({"id": "a", "labels": {"red": "x", "green": "y", "red2": "z"}})",
           ErrorCode::kInvalidParameter,
           "2 validation errors detected: Value '{red=x, green=y, red2=z}' at 'labels' failed "
           "to satisfy constraint: Member must have length less than or equal to 2; Value "
           "'{red=x, green=y, red2=z}' at 'labels' failed to satisfy constraint: Map keys must "
           "satisfy constraint: [Member must satisfy enum value set: [red, green]]"},
          {"lengths count UTF-16 units, not bytes", "Put", "{\"id\": \"\xC3\xA9t\xC3\xA9\"}"},
          {"characters outside the BMP count twice", "Put",
           "{\"id\": \"\xF0\x9F\x90\xB3\xF0\x9F\x90\xB3x\"}", ErrorCode::kInvalidParameter,
           "1 validation error detected: Value '\xF0\x9F\x90\xB3\xF0\x9F\x90\xB3x' at 'id' "
           "failed to satisfy constraint: Member must have length less than or equal to 4"},
          {"a sensitive value is left out of the message", "Put",
           R"({"id": "a", "secret": "hunter2"})", ErrorCode::kInvalidParameter,
           "1 validation error detected: Value at 'secret' failed to satisfy constraint: Member "
           "must have length less than or equal to 2"},
      });
}

TEST(ServiceModel, ParseRejectsBrokenModels) {
  struct BrokenModel {
    std::string_view text;
    std::string_view message_part;
  };
  for (const BrokenModel& broken : {
           BrokenModel{"{", "parsing service model"},
           BrokenModel{R"({"operations": {}})", "no shapes"},
           BrokenModel{R"({"shapes": {"A": {"type": "list", "member": {"shape": "B"}}},
                           "operations": {}})",
                       "unknown shape B"},
           BrokenModel{R"({"shapes": {"A": {"type": "union"}}, "operations": {}})",
                       "unsupported shape type 'union'"},
           BrokenModel{R"({"shapes": {"A": {"type": "structure", "members": {},
                           "required": ["x"]}}, "operations": {}})",
                       "required member \"x\" is unknown"},
           BrokenModel{R"({"shapes": {}, "operations": {"Op": {"input": {"shape": "Nope"}}}})",
                       "unknown shape Nope"},
       }) {
    auto model = ServiceModel::parse(broken.text);
    ASSERT_FALSE(model.has_value()) << broken.text;
    EXPECT_NE(model.error().message.find(broken.message_part), std::string::npos)
        << model.error().message;
  }
}

}  // namespace
}  // namespace wharf::aws
