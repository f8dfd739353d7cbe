// Table tests of RegisterTaskDefinition validation, and of the definition as ECS describes it.
#include "ecs/task_definition_validation.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::ecs {
namespace {

namespace json = boost::json;

constexpr std::string_view kExecutionRole =
    R"("executionRoleArn":"arn:aws:iam::123456789012:role/ecsTaskExecutionRole")";

std::string with(std::string_view head, std::string_view members) {
  return members.empty() ? std::string(head) : std::string(head) + "," + std::string(members);
}

// A container with an image and no memory settings, plus `members`.
std::string box(std::string_view name, std::string_view members = "") {
  return with(R"({"name":")" + std::string(name) + R"(","image":"nginx")", members) + "}";
}

// Container "app" running `image`, with no memory settings, plus `members`.
std::string image_box(std::string_view image, std::string_view members = "") {
  return with(R"({"name":"app","image":")" + std::string(image) + R"(")", members) + "}";
}

// Container "app": nginx with a 128 MiB hard limit, plus `members`.
std::string app(std::string_view members = "") {
  return box("app", with(R"("memory":128)", members));
}

// A task definition of `containers` with `members`; ECS then defaults to EC2 and bridge.
std::string task(std::string_view containers, std::string_view members = "") {
  return with(R"({"family":"web","containerDefinitions":[)" + std::string(containers) + "]",
              members) +
         "}";
}

// A Fargate task definition of the given size, with awsvpc networking and an execution role.
std::string fargate_sized(std::string_view cpu, std::string_view memory,
                          std::string_view containers, std::string_view members = "") {
  std::string fargate = R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":")" +
                        std::string(cpu) + R"(","memory":")" + std::string(memory) + R"(",)" +
                        std::string(kExecutionRole);
  return task(containers, with(fargate, members));
}

std::string fargate(std::string_view containers, std::string_view members = "") {
  return fargate_sized("256", "512", containers, members);
}

struct Case {
  std::string name;
  std::string request;
  std::optional<ErrorCode> code;  // nullopt: the request is valid
  std::string message;            // a substring the error message must contain
};

constexpr std::optional<ErrorCode> kValid = std::nullopt;
constexpr ErrorCode kClient = ErrorCode::kClient;
constexpr ErrorCode kInvalid = ErrorCode::kInvalidParameter;

const std::string kCanonical = R"({"family": "my-task-family", "containerDefinitions": [{"name":
  "my-container", "image": "nginx:latest", "cpu": 256, "memory": 512, "essential": true,
  "portMappings": [{"containerPort": 80, "hostPort": 80}], "environment": [{"name": "ENV_VAR",
  "value": "value"}]}], "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
  "cpu": "256", "memory": "512"})";

std::vector<Case> valid_cases() {
  return {
      {"canonical Fargate example", kCanonical, kValid, ""},
      {"EC2 container with a hard limit", task(app()), kValid, ""},
      {"EC2 container with only a soft limit", task(box("app", R"("memoryReservation":64)")),
       kValid, ""},
      {"task memory instead of container memory", task(box("app"), R"("memory":"1 GB")"), kValid,
       ""},
      {"memory equal to memoryReservation",
       task(box("app", R"("memory":256,"memoryReservation":256)")), kValid, ""},
      {"vCPU and GB on Fargate", fargate_sized("1 vCPU", "2 GB", box("app")), kValid, ""},
      {"fractional vCPU and GB", fargate_sized("0.25 vcpu", "0.5GB", box("app")), kValid, ""},
      {"largest Fargate size", fargate_sized("16384", "122880", box("app")), kValid, ""},
      {"8 vCPU with 16 GB", fargate_sized("8 vCPU", "16 GB", box("app")), kValid, ""},
      {"awsvpc fills the host port",
       fargate(box("app", R"("portMappings":[{"containerPort":80}])")), kValid, ""},
      {"bridge port range", task(app(R"("portMappings":[{"containerPortRange":"8000-8010"}])")),
       kValid, ""},
      {"named port with appProtocol",
       fargate(box("app",
                   R"("portMappings":[{"containerPort":80,"name":"web","appProtocol":"http"}])")),
       kValid, ""},
      {"same container port in two bridge containers",
       task(app(R"("portMappings":[{"containerPort":80}])") + "," +
            box("b", R"("memory":64,"portMappings":[{"containerPort":80}])")),
       kValid, ""},
      {"links in bridge mode",
       task(app(R"("links":["db:database"])") + "," + box("db", R"("memory":64)")), kValid, ""},
      {"dependsOn with every condition",
       task(
           app(R"("dependsOn":[{"containerName":"init","condition":"SUCCESS"},{"containerName":"db","condition":"HEALTHY"},{"containerName":"log","condition":"START"}])") +
           "," + box("init", R"("memory":16,"essential":false)") + "," +
           box("db", R"("memory":64,"healthCheck":{"command":["CMD","pg_isready"]})") + "," +
           box("log", R"("memory":16)")),
       kValid, ""},
      {"health check NONE", task(app(R"("healthCheck":{"command":["NONE"]})")), kValid, ""},
      {"volumes, mountPoints and volumesFrom",
       task(app(R"("mountPoints":[{"sourceVolume":"data","containerPath":"/data"}])") + "," +
                box("side",
                    R"("memory":16,"volumesFrom":[{"sourceContainer":"app","readOnly":true}])"),
            R"("volumes":[{"name":"data","host":{"sourcePath":"/srv/data"}}])"),
       kValid, ""},
      {"EFS with an access point",
       fargate(
           box("app"),
           R"("volumes":[{"name":"efs","efsVolumeConfiguration":{"fileSystemId":"fs-1","transitEncryption":"ENABLED","authorizationConfig":{"accessPointId":"fsap-1","iam":"ENABLED"}}}])"),
       kValid, ""},
      {"nulls are absent members",
       task(app(R"("links":null,"hostname":null)"), R"("ipcMode":null,"cpu":null)"), kValid, ""},
      {"unknown members are ignored", task(app(R"("shinyNewFeature":1)"), R"("alsoNew":{"x":1})"),
       kValid, ""},
      {"EXTERNAL with bridge networking", task(app(), R"("requiresCompatibilities":["EXTERNAL"])"),
       kValid, ""},
      {"MANAGED_INSTANCES with awsvpc",
       task(app(), R"("requiresCompatibilities":["MANAGED_INSTANCES"],"networkMode":"awsvpc")"),
       kValid, ""},
      {"EC2 with placement constraints",
       task(
           app(),
           R"("requiresCompatibilities":["EC2"],"placementConstraints":[{"type":"memberOf","expression":"attribute:ecs.instance-type =~ t3.*"}])"),
       kValid, ""},
      {"secrets and environment files with an execution role",
       fargate(box(
           "app",
           R"("secrets":[{"name":"DB","valueFrom":"arn:aws:ssm:us-east-1:123456789012:parameter/db"}],"environmentFiles":[{"type":"s3","value":"arn:aws:s3:::bucket/app.env"}])")),
       kValid, ""},
      {"awslogs on Fargate with an execution role",
       fargate(box(
           "app",
           R"("logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/web","awslogs-region":"us-east-1"}})")),
       kValid, ""},
      {"FireLens router and user",
       fargate(box("router", R"("firelensConfiguration":{"type":"fluentbit"})") + "," +
               box("app", R"("logConfiguration":{"logDriver":"awsfirelens"})")),
       kValid, ""},
      {"ECR image on Fargate with an execution role",
       fargate(image_box("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1")), kValid, ""},
      {"image by digest",
       task(image_box("nginx@sha256:" + std::string(64, 'a'), R"("memory":128)")), kValid, ""},
      {"ephemeral storage on Fargate",
       fargate(box("app"), R"("ephemeralStorage":{"sizeInGiB":100})"), kValid, ""},
      {"App Mesh proxy",
       fargate(
           box("app") + "," + box("envoy"),
           R"("proxyConfiguration":{"type":"APPMESH","containerName":"envoy","properties":[{"name":"IgnoredUID","value":"1337"},{"name":"AppPorts","value":"80"},{"name":"ProxyIngressPort","value":"15000"},{"name":"ProxyEgressPort","value":"15001"}]})"),
       kValid, ""},
  };
}

std::vector<Case> family_and_container_cases() {
  return {
      {"empty family",
       R"({"family":"","containerDefinitions":[{"name":"a","image":"i","memory":8}]})", kClient,
       "Family should not be null or empty"},
      {"family with a space",
       R"({"family":"my task","containerDefinitions":[{"name":"a","image":"i","memory":8}]})",
       kClient, "Family contains invalid characters"},
      {"family too long",
       R"({"family":")" + std::string(256, 'f') +
           R"(","containerDefinitions":[{"name":"a","image":"i","memory":8}]})",
       kClient, "at most 255 characters"},
      {"family of the wrong type", R"({"family":7,"containerDefinitions":[]})", kInvalid,
       "Invalid type for family"},
      {"no containers", task(""), kClient, "Container list cannot be empty"},
      {"eleven containers",
       task(box("c0", R"("memory":8)") + "," + box("c1", R"("memory":8)") + "," +
            box("c2", R"("memory":8)") + "," + box("c3", R"("memory":8)") + "," +
            box("c4", R"("memory":8)") + "," + box("c5", R"("memory":8)") + "," +
            box("c6", R"("memory":8)") + "," + box("c7", R"("memory":8)") + "," +
            box("c8", R"("memory":8)") + "," + box("c9", R"("memory":8)") + "," +
            box("c10", R"("memory":8)")),
       kClient, "Too many containers"},
      {"containerDefinitions of the wrong type", R"({"family":"web","containerDefinitions":"app"})",
       kInvalid, "Invalid type for containerDefinitions"},
      {"container of the wrong type", task("5"), kInvalid,
       "Invalid type for containerDefinitions[0]"},
      {"container without a name", task(R"({"image":"nginx","memory":8})"), kClient,
       "Container.name should not be null or empty"},
      {"container name with a space", task(box("my app", R"("memory":8)")), kClient,
       "Container.name contains invalid characters"},
      {"duplicate container names", task(app() + "," + app()), kClient,
       "Container names must be unique within a Task Definition"},
      {"container without an image", task(R"({"name":"app","memory":8})"), kClient,
       "Container.image should not be null or empty."},
      {"image too long", task(image_box(std::string(256, 'x'), R"("memory":128)")), kClient,
       "1 to 255 characters"},
      {"image with a bad digest", task(image_box("nginx@sha256:abc", R"("memory":128)")), kClient,
       "'sha256:' followed by 64 hexadecimal digits"},
      {"image with a space", task(image_box("my image", R"("memory":128)")), kClient,
       "only letters, digits"},
      {"essential of the wrong type", task(app(R"("essential":"yes")")), kInvalid,
       "Invalid type for containerDefinitions[0].essential"},
      {"no essential container",
       task(app(R"("essential":false)") + "," + box("b", R"("memory":8,"essential":false)")),
       kClient, "Task definition doesn't have any essential container"},
      {"task definition over 64 KiB",
       task(app(R"("environment":[{"name":"BIG","value":")" + std::string(70000, 'x') + R"("}])")),
       kClient, "Max allowed length is '65536' bytes"},
  };
}

std::vector<Case> size_cases() {
  return {
      {"cpu that is not a number", task(app(), R"("cpu":"lots")"), kClient,
       "Invalid 'cpu' setting for task."},
      {"cpu as a JSON number", task(app(), R"("cpu":256)"), kInvalid, "Invalid type for cpu"},
      {"cpu below 128 units", task(app(), R"("cpu":"64")"), kClient,
       "must be between 128 and 196608"},
      {"cpu above 192 vCPU", task(app(), R"("cpu":"193 vCPU")"), kClient,
       "must be between 128 and 196608"},
      {"vCPU that is not a whole number of units", task(app(), R"("cpu":"0.3 vcpu")"), kClient,
       "Invalid 'cpu' setting for task."},
      {"fractional units without vCPU", task(app(), R"("cpu":"0.5")"), kClient,
       "Invalid 'cpu' setting for task."},
      {"memory in TB", task(app(), R"("memory":"2 TB")"), kClient,
       "Invalid 'memory' setting for task."},
      {"memory of zero", task(app(), R"("memory":"0")"), kClient, "at least 6 MiB"},
      {"Fargate 256 CPU with 4 GB", fargate_sized("256", "4096", box("app")), kClient,
       "No Fargate configuration exists for given values: 256 CPU, 4096 memory."},
      {"Fargate memory off the 1 GB steps", fargate_sized("512", "1536", box("app")), kClient,
       "memory must be 1024 to 4096 in steps of 1024 MiB"},
      {"Fargate CPU that is not a size", fargate_sized("384", "1024", box("app")), kClient,
       "Task cpu must be one of 256, 512"},
      {"Fargate 8 vCPU off the 4 GB steps", fargate_sized("8192", "18432", box("app")), kClient,
       "No Fargate configuration exists"},
      {"Fargate without task cpu",
       task(box("app"),
            R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","memory":"512")"),
       kClient, "Fargate requires that 'cpu' be defined at the task level."},
      {"Fargate without task memory",
       task(box("app"),
            R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256")"),
       kClient, "Fargate requires that 'memory' be defined at the task level."},
      {"Fargate with bridge networking",
       task(
           app(),
           R"("requiresCompatibilities":["FARGATE"],"networkMode":"bridge","cpu":"256","memory":"512")"),
       kClient, "Fargate only supports network mode 'awsvpc'"},
      {"Fargate without a network mode",
       task(app(), R"("requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512")"), kClient,
       "Fargate only supports network mode 'awsvpc'"},
      {"Windows on Fargate below 1 vCPU",
       fargate_sized("512", "1024", box("app"),
                     R"("runtimePlatform":{"operatingSystemFamily":"WINDOWS_SERVER_2022_CORE"})"),
       kClient, "at least 1 vCPU"},
      {"Fargate with pidMode host", fargate(box("app"), R"("pidMode":"host")"), kClient,
       "pidMode 'host'"},
      {"Fargate with ipcMode", fargate(box("app"), R"("ipcMode":"task")"), kClient,
       "does not support ipcMode"},
      {"unknown compatibility", task(app(), R"("requiresCompatibilities":["LAMBDA"])"), kInvalid,
       "Valid values: EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"},
      {"unknown network mode", task(app(), R"("networkMode":"nat")"), kInvalid,
       "Valid values: bridge, host, awsvpc, none"},
      {"EXTERNAL with awsvpc",
       task(app(), R"("requiresCompatibilities":["EXTERNAL"],"networkMode":"awsvpc")"), kClient,
       "EXTERNAL instances (ECS Anywhere) do not support networkMode 'awsvpc'"},
      {"MANAGED_INSTANCES with bridge",
       task(app(), R"("requiresCompatibilities":["MANAGED_INSTANCES"],"networkMode":"bridge")"),
       kClient, "Managed Instances only support networkMode 'awsvpc' or 'host'"},
  };
}

std::vector<Case> memory_and_cpu_cases() {
  return {
      {"EC2 container without any memory", task(box("app")), kClient,
       "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must "
       "be specified."},
      {"container memory below 6 MiB", task(box("app", R"("memory":4)")), kClient,
       "at least 6 MiB"},
      {"memoryReservation below 6 MiB", task(box("app", R"("memoryReservation":5)")), kClient,
       "Invalid 'memoryReservation' setting"},
      {"hard limit below soft limit", task(box("app", R"("memory":128,"memoryReservation":256)")),
       kClient, "'memory' must be greater than or equal to 'memoryReservation'"},
      {"container memory above task memory",
       task(box("app", R"("memory":2048)"), R"("memory":"1024")"), kClient,
       "The 'memory' setting for container 'app' is greater than for the task"},
      {"reservations above task memory",
       task(box("app", R"("memoryReservation":600)") + "," + box("b", R"("memory":600)"),
            R"("memory":"1024")"),
       kClient, "The sum of all container 'memoryReservation' values cannot be greater than"},
      {"container cpu above task cpu",
       fargate(box("app", R"("cpu":200)") + "," + box("b", R"("cpu":100)")), kClient,
       "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."},
      {"negative container cpu", task(app(R"("cpu":-1)")), kClient,
       "Invalid 'cpu' setting for container 'app'"},
      {"container memory as a string", task(box("app", R"("memory":"128")")), kInvalid,
       "Invalid type for containerDefinitions[0].memory"},
      {"container cpu beyond 32 bits", task(app(R"("cpu":4294967296)")), kInvalid,
       "expected a 32-bit integer"},
  };
}

std::vector<Case> port_cases() {
  return {
      {"container port zero", task(app(R"("portMappings":[{"containerPort":0}])")), kClient,
       "Invalid 'containerPort' setting for container 'app'."},
      {"container port above 65535", task(app(R"("portMappings":[{"containerPort":70000}])")),
       kClient, "Invalid 'containerPort' setting"},
      {"port mapping without a container port", task(app(R"("portMappings":[{"hostPort":80}])")),
       kClient, "Invalid 'containerPort' setting"},
      {"host port above 65535",
       task(app(R"("portMappings":[{"containerPort":80,"hostPort":70000}])")), kClient,
       "Invalid 'hostPort' setting"},
      {"awsvpc host port differs",
       fargate(box("app", R"("portMappings":[{"containerPort":80,"hostPort":8080}])")), kClient,
       "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
      {"awsvpc host port zero",
       fargate(box("app", R"("portMappings":[{"containerPort":80,"hostPort":0}])")), kClient,
       "When networkMode=awsvpc, the host ports"},
      {"host mode host port differs",
       task(app(R"("portMappings":[{"containerPort":80,"hostPort":81}])"),
            R"("networkMode":"host")"),
       kClient, "When networkMode=host, the host ports and container ports"},
      {"ports with networkMode none",
       task(app(R"("portMappings":[{"containerPort":80}])"), R"("networkMode":"none")"), kClient,
       "Port mappings are not supported when networkMode=none"},
      {"unknown protocol", task(app(R"("portMappings":[{"containerPort":53,"protocol":"sctp"}])")),
       kInvalid, "Valid values: tcp, udp"},
      {"same port twice in a container",
       task(app(R"("portMappings":[{"containerPort":80},{"containerPort":80,"hostPort":8080}])")),
       kClient, "A port can only be included in one port mapping per container"},
      {"port inside a range of the same container",
       task(app(R"("portMappings":[{"containerPortRange":"8000-8010"},{"containerPort":8005}])")),
       kClient, "one port mapping per container"},
      {"two awsvpc containers on one port",
       fargate(box("app", R"("portMappings":[{"containerPort":80}])") + "," +
               box("b", R"("portMappings":[{"containerPort":80}])")),
       kClient, "both use port 80/tcp"},
      {"two bridge containers on one host port",
       task(app(R"("portMappings":[{"containerPort":80,"hostPort":8080}])") + "," +
            box("b", R"("memory":8,"portMappings":[{"containerPort":81,"hostPort":8080}])")),
       kClient, "both map host port 8080/tcp"},
      {"port range with a host port",
       task(app(R"("portMappings":[{"containerPortRange":"8000-8010","hostPort":8000}])")), kClient,
       "do not set 'hostPort' with 'containerPortRange'"},
      {"port range with host networking",
       task(app(R"("portMappings":[{"containerPortRange":"8000-8010"}])"),
            R"("networkMode":"host")"),
       kClient, "'containerPortRange' needs networkMode bridge or awsvpc"},
      {"port range backwards", task(app(R"("portMappings":[{"containerPortRange":"9000-8000"}])")),
       kClient, "first-last"},
      {"port and range together",
       task(app(R"("portMappings":[{"containerPort":80,"containerPortRange":"8000-8010"}])")),
       kClient, "either 'containerPort' or 'containerPortRange'"},
      {"appProtocol without a name",
       task(app(R"("portMappings":[{"containerPort":80,"appProtocol":"http"}])")), kClient,
       "'appProtocol' needs a 'name'"},
      {"port mapping name in capitals",
       task(app(R"("portMappings":[{"containerPort":80,"name":"Web"}])")), kClient,
       "lowercase letters"},
      {"port mapping names repeated",
       task(app(R"("portMappings":[{"containerPort":80,"name":"web"}])") + "," +
            box("b", R"("memory":8,"portMappings":[{"containerPort":81,"name":"web"}])")),
       kClient, "Port mapping names must be unique"},
      {"port mapping of the wrong type", task(app(R"("portMappings":[80])")), kInvalid,
       "Invalid type for containerDefinitions[0].portMappings[0]"},
  };
}

std::vector<Case> dependency_cases() {
  return {
      {"dependency on a missing container",
       task(app(R"("dependsOn":[{"containerName":"db","condition":"START"}])")), kClient,
       "Cannot depend on container 'db' because it does not exist"},
      {"dependency on itself",
       task(app(R"("dependsOn":[{"containerName":"app","condition":"START"}])")), kClient,
       "cannot depend on itself"},
      {"SUCCESS on an essential container",
       task(app(R"("dependsOn":[{"containerName":"init","condition":"SUCCESS"}])") + "," +
            box("init", R"("memory":8)")),
       kClient,
       "A dependency container with SUCCESS or COMPLETE condition cannot be an essential "
       "container"},
      {"HEALTHY without a health check",
       task(app(R"("dependsOn":[{"containerName":"db","condition":"HEALTHY"}])") + "," +
            box("db", R"("memory":8)")),
       kClient, "has no healthCheck"},
      {"dependency cycle",
       task(
           box("a", R"("memory":8,"dependsOn":[{"containerName":"b","condition":"START"}])") + "," +
           box("b", R"("memory":8,"dependsOn":[{"containerName":"c","condition":"START"}])") + "," +
           box("c", R"("memory":8,"dependsOn":[{"containerName":"a","condition":"START"}])")),
       kClient, "Container dependsOn contains a cycle: a -> b -> c -> a"},
      {"unknown condition",
       task(app(R"("dependsOn":[{"containerName":"db","condition":"READY"}])")), kInvalid,
       "Valid values: START, COMPLETE, SUCCESS, HEALTHY"},
      {"dependency without a condition", task(app(R"("dependsOn":[{"containerName":"db"}])")),
       kClient, "Missing 'condition'"},
      {"links with awsvpc", fargate(box("app", R"("links":["db"])") + "," + box("db")), kClient,
       "Links are not supported when networkMode=awsvpc."},
      {"link to a missing container", task(app(R"("links":["db"])")), kClient,
       "links to 'db', which is not a container of this task"},
      {"link cycle",
       task(box("a", R"("memory":8,"links":["b"])") + "," +
            box("b", R"("memory":8,"links":["a:x"])")),
       kClient, "Container links should not have a cycle: a -> b -> a"},
      {"volumesFrom a missing container",
       task(app(R"("volumesFrom":[{"sourceContainer":"data"}])")), kClient,
       "sourceContainer 'data' is not a container of this task"},
      {"volumesFrom itself", task(app(R"("volumesFrom":[{"sourceContainer":"app"}])")), kClient,
       "cannot mount volumes from itself"},
      {"stopTimeout below 2 seconds", task(app(R"("stopTimeout":1)")), kClient,
       "at least 2 seconds"},
      {"Fargate stopTimeout above 120 seconds", fargate(box("app", R"("stopTimeout":121)")),
       kClient, "stopTimeout of at most 120 seconds"},
  };
}

std::vector<Case> health_and_environment_cases() {
  return {
      {"health check without a command", task(app(R"("healthCheck":{"command":[]})")), kClient,
       "'command' must not be empty"},
      {"health check without CMD", task(app(R"("healthCheck":{"command":["curl","-f","x"]})")),
       kClient, "must start with CMD, CMD-SHELL or NONE"},
      {"health check with only CMD-SHELL", task(app(R"("healthCheck":{"command":["CMD-SHELL"]})")),
       kClient, "give the command to run after CMD-SHELL"},
      {"health check interval too short",
       task(app(R"("healthCheck":{"command":["CMD","true"],"interval":2})")), kClient,
       "Invalid 'interval' setting for the healthCheck of container 'app': it must be between 5 "
       "and 300"},
      {"health check timeout too long",
       task(app(R"("healthCheck":{"command":["CMD","true"],"timeout":61})")), kClient,
       "'timeout' setting"},
      {"health check retries above 10",
       task(app(R"("healthCheck":{"command":["CMD","true"],"retries":11})")), kClient,
       "'retries' setting"},
      {"health check start period above 300",
       task(app(R"("healthCheck":{"command":["CMD","true"],"startPeriod":301})")), kClient,
       "'startPeriod' setting"},
      {"environment variable without a name", task(app(R"("environment":[{"value":"x"}])")),
       kClient, "Missing 'name' in containerDefinitions[0].environment[0]"},
      {"environment file that is not an S3 object",
       task(app(R"("environmentFiles":[{"type":"s3","value":"https://example.com/app.env"}])")),
       kClient, "Invalid environment file"},
      {"environment file of another type",
       task(app(R"("environmentFiles":[{"type":"http","value":"arn:aws:s3:::b/a.env"}])")),
       kInvalid, "Valid values: s3"},
      {"eleven environment files",
       task(app(
           R"("environmentFiles":[{"type":"s3","value":"arn:aws:s3:::b/1.env"},{"type":"s3","value":"arn:aws:s3:::b/2.env"},{"type":"s3","value":"arn:aws:s3:::b/3.env"},{"type":"s3","value":"arn:aws:s3:::b/4.env"},{"type":"s3","value":"arn:aws:s3:::b/5.env"},{"type":"s3","value":"arn:aws:s3:::b/6.env"},{"type":"s3","value":"arn:aws:s3:::b/7.env"},{"type":"s3","value":"arn:aws:s3:::b/8.env"},{"type":"s3","value":"arn:aws:s3:::b/9.env"},{"type":"s3","value":"arn:aws:s3:::b/10.env"},{"type":"s3","value":"arn:aws:s3:::b/11.env"}])")),
       kClient, "at most 10"},
      {"secrets without an execution role",
       task(app(R"("secrets":[{"name":"DB","valueFrom":"arn:aws:ssm:us-east-1:1:parameter/db"}])")),
       kClient,
       "When you are specifying container secrets, you must also specify a value for "
       "'executionRoleArn'."},
      {"secret without valueFrom", fargate(box("app", R"("secrets":[{"name":"DB"}])")), kClient,
       "Missing 'valueFrom'"},
      {"ulimit soft above hard",
       task(app(R"("ulimits":[{"name":"nofile","softLimit":2048,"hardLimit":1024}])")), kClient,
       "softLimit (2048) cannot be greater than hardLimit (1024)"},
      {"unknown ulimit", task(app(R"("ulimits":[{"name":"files","softLimit":1,"hardLimit":1}])")),
       kInvalid, "Valid values: core, cpu"},
      {"ulimit set twice",
       task(app(
           R"("ulimits":[{"name":"nofile","softLimit":1,"hardLimit":1},{"name":"nofile","softLimit":2,"hardLimit":2}])")),
       kClient, "set more than once"},
  };
}

std::vector<Case> linux_and_volume_cases() {
  return {
      {"unknown capability", task(app(R"("linuxParameters":{"capabilities":{"add":["FOO"]}})")),
       kClient, "Invalid capability 'FOO'"},
      {"Fargate adding NET_ADMIN",
       fargate(box("app", R"("linuxParameters":{"capabilities":{"add":["NET_ADMIN"]}})")), kClient,
       "Fargate only supports adding the SYS_PTRACE capability"},
      {"device without a host path",
       task(app(R"("linuxParameters":{"devices":[{"containerPath":"/dev/x"}]})")), kClient,
       "Missing 'hostPath'"},
      {"tmpfs without a size",
       task(app(R"("linuxParameters":{"tmpfs":[{"containerPath":"/tmp","size":0}]})")), kClient,
       "'size' must be a positive number of MiB"},
      {"swappiness above 100", task(app(R"("linuxParameters":{"maxSwap":0,"swappiness":101})")),
       kClient, "'swappiness' setting for container 'app': it must be between 0 and 100"},
      {"Fargate with sharedMemorySize",
       fargate(box("app", R"("linuxParameters":{"sharedMemorySize":64})")), kClient,
       "Fargate does not support linuxParameters.sharedMemorySize"},
      {"mount point on an undefined volume",
       task(app(R"("mountPoints":[{"sourceVolume":"data","containerPath":"/data"}])")), kClient,
       "sourceVolume 'data' is not defined in the task definition's volumes"},
      {"duplicate volume names", task(app(), R"("volumes":[{"name":"v"},{"name":"v"}])"), kClient,
       "Volume names must be unique"},
      {"volume name with a slash", task(app(), R"("volumes":[{"name":"a/b"}])"), kClient,
       "Invalid volume name 'a/b'"},
      {"relative host source path",
       task(app(), R"("volumes":[{"name":"v","host":{"sourcePath":"data"}}])"), kClient,
       "must be an absolute path"},
      {"Fargate host source path",
       fargate(box("app"), R"("volumes":[{"name":"v","host":{"sourcePath":"/data"}}])"), kClient,
       "Fargate does not support host volumes with a sourcePath"},
      {"Docker volume with an unknown scope",
       task(app(), R"("volumes":[{"name":"v","dockerVolumeConfiguration":{"scope":"global"}}])"),
       kInvalid, "Valid values: task, shared"},
      {"autoprovision on a task-scoped volume",
       task(
           app(),
           R"("volumes":[{"name":"v","dockerVolumeConfiguration":{"scope":"task","autoprovision":true}}])"),
       kClient, "'autoprovision' only applies when 'scope' is 'shared'"},
      {"EFS volume without a file system",
       task(app(), R"("volumes":[{"name":"v","efsVolumeConfiguration":{"rootDirectory":"/"}}])"),
       kClient, "Missing 'fileSystemId'"},
      {"EFS IAM without transit encryption",
       task(
           app(),
           R"("volumes":[{"name":"v","efsVolumeConfiguration":{"fileSystemId":"fs-1","authorizationConfig":{"iam":"ENABLED"}}}])"),
       kClient, "need transitEncryption 'ENABLED'"},
      {"volume with two kinds of storage",
       task(
           app(),
           R"("volumes":[{"name":"v","host":{},"efsVolumeConfiguration":{"fileSystemId":"fs-1"}}])"),
       kClient, "a volume can use only one kind of storage"},
      {"two volumes configured at launch",
       task(
           app(),
           R"("volumes":[{"name":"a","configuredAtLaunch":true},{"name":"b","configuredAtLaunch":true}])"),
       kClient, "only have one volume configured at launch"},
  };
}

std::vector<Case> logging_and_task_option_cases() {
  return {
      {"awslogs without a region",
       task(app(R"("logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g"}})")),
       kClient, "Log driver awslogs requires options: awslogs-region, awslogs-group"},
      {"awslogs on Fargate without an execution role",
       task(
           box("app",
               R"("logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"us-east-1"}})"),
           R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"512")"),
       kClient,
       "Fargate requires task definition to have execution role ARN to support log driver "
       "awslogs."},
      {"ECR image on Fargate without an execution role",
       task(
           image_box("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1"),
           R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"512")"),
       kClient,
       "Fargate requires task definition to have execution role ARN to support ECR images."},
      {"json-file logs on Fargate",
       fargate(box("app", R"("logConfiguration":{"logDriver":"json-file"})")), kClient,
       "Fargate only supports the awslogs, splunk and awsfirelens log drivers"},
      {"unknown log driver", task(app(R"("logConfiguration":{"logDriver":"loki"})")), kInvalid,
       "Valid values: json-file"},
      {"log option that is not a string",
       task(app(R"("logConfiguration":{"logDriver":"syslog","options":{"tag":1}})")), kInvalid,
       "Invalid type for containerDefinitions[0].logConfiguration.options.tag"},
      {"awsfirelens without a router",
       task(app(R"("logConfiguration":{"logDriver":"awsfirelens"})")), kClient,
       "no container has a firelensConfiguration"},
      {"hostname with awsvpc", fargate(box("app", R"("hostname":"web")")), kClient,
       "The 'hostname' parameter is not supported when networkMode=awsvpc"},
      {"privileged on Fargate", fargate(box("app", R"("privileged":true)")), kClient,
       "Fargate does not support privileged containers"},
      {"GPU on Fargate",
       fargate(box("app", R"("resourceRequirements":[{"type":"GPU","value":"1"}])")), kClient,
       "Fargate does not support GPU resource requirements"},
      {"network sysctl with host networking",
       task(app(R"("systemControls":[{"namespace":"net.core.somaxconn","value":"1024"}])"),
            R"("networkMode":"host")"),
       kClient, "not supported when networkMode=host"},
      {"restart attempt period too short",
       task(app(R"("restartPolicy":{"enabled":true,"restartAttemptPeriod":10})")), kClient,
       "must be between 60 and 1800"},
      {"two credential specs",
       task(app(R"("credentialSpecs":["credentialspec:arn:a","credentialspec:arn:b"])")), kClient,
       "at most 1"},
      {"eleven placement constraints",
       task(
           app(),
           R"("placementConstraints":[{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"},{"type":"memberOf","expression":"a"}])"),
       kClient, "at most 10"},
      {"distinctInstance in a task definition",
       task(app(), R"("placementConstraints":[{"type":"distinctInstance"}])"), kInvalid,
       "Valid values: memberOf"},
      {"placement constraints on Fargate",
       fargate(box("app"), R"("placementConstraints":[{"type":"memberOf","expression":"a"}])"),
       kClient, "Fargate does not support task placement constraints"},
      {"proxy for a missing container",
       fargate(box("app"), R"("proxyConfiguration":{"containerName":"envoy"})"), kClient,
       "names container 'envoy', which is not a container of this task"},
      {"proxy with bridge networking",
       task(app() + "," + box("envoy", R"("memory":8)"),
            R"("proxyConfiguration":{"containerName":"envoy"})"),
       kClient, "requires networkMode awsvpc"},
      {"proxy without AppPorts",
       fargate(
           box("app") + "," + box("envoy"),
           R"("proxyConfiguration":{"containerName":"envoy","properties":[{"name":"IgnoredUID","value":"1337"},{"name":"ProxyIngressPort","value":"15000"},{"name":"ProxyEgressPort","value":"15001"}]})"),
       kClient, "missing the AppPorts property"},
      {"ephemeral storage below 21 GiB",
       fargate(box("app"), R"("ephemeralStorage":{"sizeInGiB":20})"), kClient,
       "must be between 21 and 200"},
      {"ephemeral storage on EC2 only",
       task(app(), R"("requiresCompatibilities":["EC2"],"ephemeralStorage":{"sizeInGiB":30})"),
       kClient, "ephemeralStorage only applies to tasks on Fargate"},
      {"unknown inference accelerator",
       task(app(R"("resourceRequirements":[{"type":"InferenceAccelerator","value":"dev1"}])")),
       kClient, "requires inference accelerator 'dev1'"},
  };
}

void run(const std::vector<Case>& cases) {
  for (const Case& test : cases) {
    SCOPED_TRACE(test.name);
    boost::system::error_code parse_error;
    json::value request = json::parse(test.request, parse_error);
    ASSERT_FALSE(parse_error) << test.request;
    ASSERT_TRUE(request.is_object());
    auto result = validate_task_definition(request.as_object());
    if (!test.code) {
      EXPECT_TRUE(result.has_value()) << result.error().message;
      continue;
    }
    ASSERT_FALSE(result.has_value()) << "accepted: " << test.request;
    EXPECT_EQ(result.error().code, *test.code) << result.error().message;
    EXPECT_NE(result.error().message.find(test.message), std::string::npos)
        << "message: " << result.error().message << "\nexpected to contain: " << test.message;
  }
}

TEST(TaskDefinitionValidation, AcceptsValidDefinitions) {
  run(valid_cases());
}
TEST(TaskDefinitionValidation, FamilyAndContainers) {
  run(family_and_container_cases());
}
TEST(TaskDefinitionValidation, TaskSizeAndCompatibilities) {
  run(size_cases());
}
TEST(TaskDefinitionValidation, ContainerMemoryAndCpu) {
  run(memory_and_cpu_cases());
}
TEST(TaskDefinitionValidation, PortMappings) {
  run(port_cases());
}
TEST(TaskDefinitionValidation, DependenciesLinksAndTimeouts) {
  run(dependency_cases());
}
TEST(TaskDefinitionValidation, HealthChecksEnvironmentAndUlimits) {
  run(health_and_environment_cases());
}
TEST(TaskDefinitionValidation, LinuxParametersAndVolumes) {
  run(linux_and_volume_cases());
}
TEST(TaskDefinitionValidation, LoggingAndTaskOptions) {
  run(logging_and_task_option_cases());
}

json::object validated(const std::string& request) {
  auto result = validate_task_definition(json::parse(request).as_object());
  EXPECT_TRUE(result.has_value()) << result.error().message;
  return result.value_or(json::object());
}

TEST(TaskDefinitionValidation, DescribesTheCanonicalExampleAsEcsDoes) {
  json::value expected = json::parse(R"({
    "containerDefinitions": [{
      "name": "my-container", "image": "nginx:latest", "cpu": 256, "memory": 512,
      "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
      "essential": true, "environment": [{"name": "ENV_VAR", "value": "value"}],
      "mountPoints": [], "volumesFrom": [], "systemControls": []
    }],
    "family": "my-task-family", "networkMode": "awsvpc", "volumes": [],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
                           {"name": "ecs.capability.task-eni"}],
    "placementConstraints": [], "compatibilities": ["EC2", "FARGATE"],
    "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512"
  })");
  EXPECT_EQ(json::value(validated(kCanonical)), expected) << json::serialize(validated(kCanonical));
}

TEST(TaskDefinitionValidation, NormalisesTaskCpuAndMemoryStrings) {
  struct Size {
    std::string_view cpu, memory, units, mib;
  };
  for (const Size& size :
       {Size{"1 vCPU", "2 GB", "1024", "2048"}, Size{"0.5 vcpu", "1GB", "512", "1024"},
        Size{".25 vCPU", "0.5 GB", "256", "512"}, Size{" 2048 ", "4096", "2048", "4096"},
        Size{"4 vcpus", "30 gb", "4096", "30720"}}) {
    SCOPED_TRACE(std::string(size.cpu) + " / " + std::string(size.memory));
    json::object definition = validated(fargate_sized(size.cpu, size.memory, box("app")));
    EXPECT_EQ(definition["cpu"], json::value(size.units));
    EXPECT_EQ(definition["memory"], json::value(size.mib));
  }
}

TEST(TaskDefinitionValidation, DescribesAMultiContainerEc2Definition) {
  json::object definition = validated(task(
      box("web", R"("cpu":512,"memory":512,"links":["db"],"portMappings":[{"containerPort":80}],)"
                 R"("dependsOn":[{"containerName":"db","condition":"HEALTHY"},)"
                 R"({"containerName":"migrate","condition":"SUCCESS"}])") +
          "," +
          box("db",
              R"("memoryReservation":256,"healthCheck":{"command":["CMD-SHELL","pg_isready"]},)"
              R"("portMappings":[{"containerPort":5432,"hostPort":5432,"protocol":"tcp"}])") +
          "," + box("migrate", R"("memory":64,"essential":false,"command":["migrate","up"])"),
      R"("requiresCompatibilities":["EC2"],"cpu":"1 vCPU","memory":"1 GB","tags":[{"key":"a","value":"b"}])"));

  EXPECT_EQ(definition["compatibilities"], json::parse(R"(["EXTERNAL","EC2"])"));
  EXPECT_EQ(definition["cpu"], json::value("1024"));
  EXPECT_EQ(definition["memory"], json::value("1024"));
  EXPECT_FALSE(definition.contains("networkMode"));  // absent stays absent, as ECS describes it
  EXPECT_FALSE(definition.contains("tags"));
  EXPECT_EQ(definition["volumes"], json::value(json::array()));
  EXPECT_EQ(definition["placementConstraints"], json::value(json::array()));

  const json::array& containers = definition["containerDefinitions"].as_array();
  ASSERT_EQ(containers.size(), 3u);
  const json::object& web = containers[0].as_object();
  EXPECT_EQ(web.at("portMappings"),
            json::parse(R"([{"containerPort":80,"hostPort":0,"protocol":"tcp"}])"));
  EXPECT_EQ(web.at("essential"), json::value(true));
  EXPECT_EQ(web.at("links"), json::parse(R"(["db"])"));
  EXPECT_EQ(web.at("dependsOn").as_array().size(), 2u);
  const json::object& db = containers[1].as_object();
  EXPECT_EQ(db.at("cpu"), json::value(0));
  EXPECT_EQ(db.at("healthCheck"), json::parse(R"({"command":["CMD-SHELL","pg_isready"],
                                                  "interval":30,"timeout":5,"retries":3})"));
  const json::object& migrate = containers[2].as_object();
  EXPECT_EQ(migrate.at("essential"), json::value(false));
  EXPECT_EQ(migrate.at("environment"), json::value(json::array()));
  EXPECT_EQ(migrate.at("portMappings"), json::value(json::array()));

  json::array attributes;
  for (std::string_view name :
       {"ecs.capability.container-ordering", "ecs.capability.container-health-check",
        "com.amazonaws.ecs.capability.docker-remote-api.1.24",
        "com.amazonaws.ecs.capability.docker-remote-api.1.21"}) {
    attributes.push_back(json::object{{"name", name}});
  }
  for (const json::value& attribute : attributes) {
    EXPECT_NE(std::ranges::find(definition["requiresAttributes"].as_array(), attribute),
              definition["requiresAttributes"].as_array().end())
        << json::serialize(attribute);
  }
}

TEST(TaskDefinitionValidation, DropsUnknownMembersAndNulls) {
  json::object definition = validated(task(
      app(R"("hostname":null,"futureField":true,"portMappings":[{"containerPort":80,"extra":1}])"),
      R"("pidMode":null,"somethingNew":[1])"));
  EXPECT_FALSE(definition.contains("somethingNew"));
  EXPECT_FALSE(definition.contains("pidMode"));
  const json::object& container = definition["containerDefinitions"].as_array()[0].as_object();
  EXPECT_FALSE(container.contains("futureField"));
  EXPECT_FALSE(container.contains("hostname"));
  EXPECT_FALSE(container.at("portMappings").as_array()[0].as_object().contains("extra"));
}

TEST(TaskDefinitionValidation, ComputesCompatibilitiesFromTheDefinition) {
  // Fargate-shaped but not asked for: FARGATE is still offered, EXTERNAL is not (awsvpc).
  json::object awsvpc =
      validated(task(box("app"), R"("networkMode":"awsvpc","cpu":"512","memory":"1024")"));
  EXPECT_EQ(awsvpc["compatibilities"], json::parse(R"(["EC2","FARGATE"])"));
  // A privileged container cannot run on Fargate, so only EC2 is offered.
  json::object privileged = validated(task(
      box("app", R"("privileged":true)"), R"("networkMode":"awsvpc","cpu":"512","memory":"1024")"));
  EXPECT_EQ(privileged["compatibilities"], json::parse(R"(["EC2"])"));
  json::object managed = validated(
      task(app(), R"("requiresCompatibilities":["MANAGED_INSTANCES"],"networkMode":"host")"));
  EXPECT_EQ(managed["compatibilities"], json::parse(R"(["EXTERNAL","EC2","MANAGED_INSTANCES"])"));
}

// Every member of a rich definition, replaced by every JSON type, must give a value or an error
// and never throw.
TEST(TaskDefinitionValidation, WrongTypesAnywhereAreErrorsNotCrashes) {
  const std::string rich = fargate(
      box("app",
          R"("cpu":128,"memory":256,"memoryReservation":128,"links":[],)"
          R"("portMappings":[{"containerPort":80,"protocol":"tcp","name":"web","appProtocol":"http"}],)"
          R"("environment":[{"name":"A","value":"b"}],"secrets":[{"name":"S","valueFrom":"arn:aws:ssm:x"}],)"
          R"("mountPoints":[{"sourceVolume":"v","containerPath":"/v"}],"volumesFrom":[],)"
          R"("linuxParameters":{"capabilities":{"add":["SYS_PTRACE"]},"initProcessEnabled":true,)"
          R"("tmpfs":[{"containerPath":"/t","size":8,"mountOptions":["rw"]}]},)"
          R"("dependsOn":[{"containerName":"side","condition":"START"}],"stopTimeout":30,)"
          R"("healthCheck":{"command":["CMD","true"],"interval":10,"startPeriod":5},)"
          R"("ulimits":[{"name":"nofile","softLimit":1,"hardLimit":2}],"dockerLabels":{"a":"b"},)"
          R"("logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"r"},)"
          R"("secretOptions":[]},"systemControls":[{"namespace":"net.core.somaxconn","value":"1"}],)"
          R"("restartPolicy":{"enabled":true,"ignoredExitCodes":[1],"restartAttemptPeriod":60},)"
          R"("environmentFiles":[{"type":"s3","value":"arn:aws:s3:::b/a.env"}])") +
          "," + box("side", R"("essential":false)"),
      R"("volumes":[{"name":"v","efsVolumeConfiguration":{"fileSystemId":"fs","transitEncryption":"ENABLED",)"
      R"("authorizationConfig":{"iam":"ENABLED"}}}],"ephemeralStorage":{"sizeInGiB":30},)"
      R"("runtimePlatform":{"cpuArchitecture":"ARM64","operatingSystemFamily":"LINUX"},"pidMode":"task")");
  json::value original = json::parse(rich);
  ASSERT_TRUE(validate_task_definition(original.as_object()).has_value())
      << validate_task_definition(original.as_object()).error().message;

  const json::value replacements[] = {
      nullptr, 7, -1, 1.5, "text", true, json::array{1}, json::object{{"k", 1}}};
  std::size_t mutations = 0;
  // Visits every member and element of `value`, trying each replacement in its place.
  auto mutate_all = [&](auto& self, json::value& value) -> void {
    auto try_here = [&](json::value& slot) {
      json::value saved = slot;
      for (const json::value& replacement : replacements) {
        slot = replacement;
        ++mutations;
        EXPECT_NO_THROW((void)validate_task_definition(original.as_object()))
            << json::serialize(original);
      }
      slot = saved;
    };
    if (value.is_object()) {
      for (auto& member : value.as_object()) {
        try_here(member.value());
        self(self, member.value());
      }
    }
    if (value.is_array()) {
      for (json::value& element : value.as_array()) {
        try_here(element);
        self(self, element);
      }
    }
  };
  mutate_all(mutate_all, original);
  EXPECT_GT(mutations, 500u);
}

}  // namespace
}  // namespace wharf::ecs
