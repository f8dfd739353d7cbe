// Validation and normalisation of RegisterTaskDefinition, rule by rule from the ECS documentation.
#include "ecs/task_definition_validation.hpp"
#include "common/text.hpp"
#include "ecs/validation.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::ecs {
namespace {

namespace json = boost::json;

using NameSet = std::set<std::string, std::less<>>;

// ---- Vocabulary: enums from the botocore ECS model, lists and limits from the ECS docs ----------

constexpr std::string_view kCompatibilities[] = {"EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"};
constexpr std::string_view kNetworkModes[] = {"bridge", "host", "awsvpc", "none"};
constexpr std::string_view kPidModes[] = {"host", "task"};
constexpr std::string_view kIpcModes[] = {"host", "task", "none"};
constexpr std::string_view kCpuArchitectures[] = {"X86_64", "ARM64"};
constexpr std::string_view kOsFamilies[] = {"WINDOWS_SERVER_2019_FULL", "WINDOWS_SERVER_2019_CORE",
                                            "WINDOWS_SERVER_2016_FULL", "WINDOWS_SERVER_2004_CORE",
                                            "WINDOWS_SERVER_2022_CORE", "WINDOWS_SERVER_2022_FULL",
                                            "WINDOWS_SERVER_2025_CORE", "WINDOWS_SERVER_2025_FULL",
                                            "WINDOWS_SERVER_20H2_CORE", "LINUX"};
constexpr std::string_view kProtocols[] = {"tcp", "udp"};
constexpr std::string_view kAppProtocols[] = {"http", "http2", "grpc"};
constexpr std::string_view kConditions[] = {"START", "COMPLETE", "SUCCESS", "HEALTHY"};
constexpr std::string_view kHealthCheckModes[] = {"CMD", "CMD-SHELL", "NONE"};
constexpr std::string_view kLogDrivers[] = {"json-file", "syslog",  "journald", "gelf",
                                            "fluentd",   "awslogs", "splunk",   "awsfirelens"};
constexpr std::string_view kFargateLogDrivers[] = {"awslogs", "splunk", "awsfirelens"};
constexpr std::string_view kUlimitNames[] = {
    "core",   "cpu",   "data", "fsize",  "locks",  "memlock",    "msgqueue", "nice",
    "nofile", "nproc", "rss",  "rtprio", "rttime", "sigpending", "stack"};
constexpr std::string_view kCapabilities[] = {
    "ALL",        "AUDIT_CONTROL",   "AUDIT_WRITE",      "BLOCK_SUSPEND",
    "CHOWN",      "DAC_OVERRIDE",    "DAC_READ_SEARCH",  "FOWNER",
    "FSETID",     "IPC_LOCK",        "IPC_OWNER",        "KILL",
    "LEASE",      "LINUX_IMMUTABLE", "MAC_ADMIN",        "MAC_OVERRIDE",
    "MKNOD",      "NET_ADMIN",       "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_RAW",    "SETFCAP",         "SETGID",           "SETPCAP",
    "SETUID",     "SYS_ADMIN",       "SYS_BOOT",         "SYS_CHROOT",
    "SYS_MODULE", "SYS_NICE",        "SYS_PACCT",        "SYS_PTRACE",
    "SYS_RAWIO",  "SYS_RESOURCE",    "SYS_TIME",         "SYS_TTY_CONFIG",
    "SYSLOG",     "WAKE_ALARM"};
constexpr std::string_view kTmpfsMountOptions[] = {
    "defaults",   "ro",          "rw",         "suid",        "nosuid",        "dev",     "nodev",
    "exec",       "noexec",      "sync",       "async",       "dirsync",       "remount", "mand",
    "nomand",     "atime",       "noatime",    "diratime",    "nodiratime",    "bind",    "rbind",
    "unbindable", "runbindable", "private",    "rprivate",    "shared",        "rshared", "slave",
    "rslave",     "relatime",    "norelatime", "strictatime", "nostrictatime", "mode",    "uid",
    "gid",        "nr_inodes",   "nr_blocks",  "mpol"};
constexpr std::string_view kDevicePermissions[] = {"read", "write", "mknod"};
constexpr std::string_view kVolumeScopes[] = {"task", "shared"};
constexpr std::string_view kEnabledDisabled[] = {"ENABLED", "DISABLED"};
constexpr std::string_view kResourceTypes[] = {"GPU", "InferenceAccelerator"};
constexpr std::string_view kFirelensTypes[] = {"fluentd", "fluentbit"};
constexpr std::string_view kEnvironmentFileTypes[] = {"s3"};
constexpr std::string_view kPlacementConstraintTypes[] = {"memberOf"};
constexpr std::string_view kProxyTypes[] = {"APPMESH"};
constexpr std::string_view kVersionConsistency[] = {"enabled", "disabled"};
constexpr std::string_view kProxyProperties[] = {
    "IgnoredUID",      "IgnoredGID",         "AppPorts",        "ProxyIngressPort",
    "ProxyEgressPort", "EgressIgnoredPorts", "EgressIgnoredIPs"};

// Members of the TaskDefinition shape that RegisterTaskDefinition produces, in the model's order.
// The caller adds taskDefinitionArn, revision, status, registeredAt and registeredBy.
constexpr std::string_view kTaskMembers[] = {"containerDefinitions",
                                             "family",
                                             "taskRoleArn",
                                             "executionRoleArn",
                                             "networkMode",
                                             "volumes",
                                             "requiresAttributes",
                                             "placementConstraints",
                                             "compatibilities",
                                             "runtimePlatform",
                                             "requiresCompatibilities",
                                             "cpu",
                                             "memory",
                                             "inferenceAccelerators",
                                             "pidMode",
                                             "ipcMode",
                                             "proxyConfiguration",
                                             "ephemeralStorage",
                                             "enableFaultInjection"};
// Members of the ContainerDefinition shape, in the model's order.
constexpr std::string_view kContainerMembers[] = {"name",
                                                  "image",
                                                  "repositoryCredentials",
                                                  "cpu",
                                                  "memory",
                                                  "memoryReservation",
                                                  "links",
                                                  "portMappings",
                                                  "essential",
                                                  "restartPolicy",
                                                  "entryPoint",
                                                  "command",
                                                  "environment",
                                                  "environmentFiles",
                                                  "mountPoints",
                                                  "volumesFrom",
                                                  "linuxParameters",
                                                  "secrets",
                                                  "dependsOn",
                                                  "startTimeout",
                                                  "stopTimeout",
                                                  "versionConsistency",
                                                  "hostname",
                                                  "user",
                                                  "workingDirectory",
                                                  "disableNetworking",
                                                  "privileged",
                                                  "readonlyRootFilesystem",
                                                  "dnsServers",
                                                  "dnsSearchDomains",
                                                  "extraHosts",
                                                  "dockerSecurityOptions",
                                                  "interactive",
                                                  "pseudoTerminal",
                                                  "dockerLabels",
                                                  "ulimits",
                                                  "logConfiguration",
                                                  "healthCheck",
                                                  "systemControls",
                                                  "resourceRequirements",
                                                  "firelensConfiguration",
                                                  "credentialSpecs"};
constexpr std::string_view kPortMappingMembers[] = {
    "containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange"};
constexpr std::string_view kHealthCheckMembers[] = {"command", "interval", "timeout", "retries",
                                                    "startPeriod"};

constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxImageLength = 255;
constexpr std::size_t kMaxPortMappingNameLength = 64;
constexpr std::size_t kMaxPlacementConstraints = 10;
constexpr std::size_t kMaxEnvironmentFiles = 10;
constexpr std::size_t kMaxPortRangesPerContainer = 100;
constexpr std::size_t kMaxIgnoredExitCodes = 50;
constexpr std::size_t kMaxCredentialSpecs = 1;
constexpr int64_t kMinEc2TaskCpu = 128;
constexpr int64_t kMaxEc2TaskCpu = 196608;
// Docker 20.10 reserves 6 MiB per container, so ECS tells users not to go below it.
constexpr int64_t kMinContainerMemory = 6;
constexpr int64_t kMinWindowsFargateCpu = 1024;
constexpr int64_t kMinTimeoutSeconds = 2;
constexpr int64_t kMaxFargateTimeoutSeconds = 120;
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMinEphemeralStorageGiB = 21;
constexpr int64_t kMaxEphemeralStorageGiB = 200;
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

// ---- Small text helpers ------------------------------------------------------------------------

bool is_one_of(std::string_view value, std::span<const std::string_view> allowed) {
  return std::ranges::find(allowed, value) != allowed.end();
}

std::string join(std::span<const std::string_view> values) {
  std::string text;
  for (std::string_view value : values) {
    if (!text.empty()) text += ", ";
    text += value;
  }
  return text;
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string str(int64_t number) {
  return std::to_string(number);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_all_name_chars(std::string_view text) {
  return std::ranges::all_of(text, is_name_char);
}

bool is_all_digits(std::string_view text) {
  return !text.empty() && std::ranges::all_of(text, is_digit);
}

// POSIX absolute paths, plus Windows drive paths ("C:\data") for Windows container instances.
bool is_absolute_path(std::string_view path) {
  if (path.starts_with('/')) return true;
  return path.size() >= 3 && std::isalpha(static_cast<unsigned char>(path[0])) && path[1] == ':' &&
         (path[2] == '\\' || path[2] == '/');
}

// ---- Reading JSON defensively: a wrong type is an error, never an exception -------------------

std::string member_path(std::string_view parent, std::string_view key) {
  std::string path(parent);
  if (!path.empty()) path += '.';
  path += key;
  return path;
}

std::string element_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::unexpected<Error> wrong_type(std::string_view path, std::string_view expected) {
  return invalid("Invalid type for " + std::string(path) + ": expected " + std::string(expected) +
                 ".");
}

// AWS treats a JSON null member like an absent one (describe output pasted back has nulls).
const json::value* present(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return nullptr;
  return value;
}

// The model's Integer is 32-bit; JSON numbers may arrive as int64, uint64 or an integral double.
std::optional<int64_t> as_int32(const json::value& value) {
  std::optional<int64_t> number;
  if (value.is_int64()) number = value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= static_cast<uint64_t>(kMaxInt32)) {
    number = static_cast<int64_t>(value.get_uint64());
  }
  if (value.is_double()) {
    double real = value.get_double();
    if (std::isfinite(real) && std::trunc(real) == real && std::abs(real) <= 4294967296.0) {
      number = static_cast<int64_t>(real);
    }
  }
  if (!number || *number < std::numeric_limits<int32_t>::min() || *number > kMaxInt32) {
    return std::nullopt;
  }
  return number;
}

Result<std::optional<int64_t>> read_int(const json::object& object, std::string_view key,
                                        std::string_view where) {
  const json::value* value = present(object, key);
  if (value == nullptr) return std::nullopt;
  auto number = as_int32(*value);
  if (!number) return wrong_type(member_path(where, key), "a 32-bit integer");
  return number;
}

Result<std::optional<std::string>> read_string(const json::object& object, std::string_view key,
                                               std::string_view where) {
  const json::value* value = present(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return wrong_type(member_path(where, key), "a string");
  return std::string(value->get_string());
}

Result<std::optional<bool>> read_bool(const json::object& object, std::string_view key,
                                      std::string_view where) {
  const json::value* value = present(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_bool()) return wrong_type(member_path(where, key), "a boolean");
  return value->get_bool();
}

Result<const json::object*> read_object(const json::object& object, std::string_view key,
                                        std::string_view where) {
  const json::value* value = present(object, key);
  if (value == nullptr) return nullptr;
  if (!value->is_object()) return wrong_type(member_path(where, key), "an object");
  return &value->get_object();
}

Result<const json::array*> read_array(const json::object& object, std::string_view key,
                                      std::string_view where) {
  const json::value* value = present(object, key);
  if (value == nullptr) return nullptr;
  if (!value->is_array()) return wrong_type(member_path(where, key), "an array");
  return &value->get_array();
}

Result<const json::object*> as_object(const json::value& value, std::string_view path) {
  if (!value.is_object()) return wrong_type(path, "an object");
  return &value.get_object();
}

// A StringList member; empty when absent.
Result<std::vector<std::string>> read_strings(const json::object& object, std::string_view key,
                                              std::string_view where) {
  auto array = read_array(object, key, where);
  if (!array) return std::unexpected(array.error());
  std::vector<std::string> strings;
  if (*array == nullptr) return strings;
  for (std::size_t item_idx = 0; item_idx < (*array)->size(); ++item_idx) {
    const json::value& item = (**array)[item_idx];
    if (!item.is_string()) {
      return wrong_type(element_path(member_path(where, key), item_idx), "a string");
    }
    strings.emplace_back(item.get_string());
  }
  return strings;
}

// A string-to-string map member such as dockerLabels or log options; empty when absent.
Result<std::map<std::string, std::string>> read_string_map(const json::object& object,
                                                           std::string_view key,
                                                           std::string_view where) {
  auto map = read_object(object, key, where);
  if (!map) return std::unexpected(map.error());
  std::map<std::string, std::string> entries;
  if (*map == nullptr) return entries;
  for (const auto& entry : **map) {
    if (!entry.value().is_string()) {
      return wrong_type(member_path(member_path(where, key), entry.key()), "a string");
    }
    entries.emplace(entry.key(), entry.value().get_string());
  }
  return entries;
}

// A string member whose value must be one of the model's enum values.
Result<std::optional<std::string>> read_enum(const json::object& object, std::string_view key,
                                             std::string_view where,
                                             std::span<const std::string_view> allowed) {
  auto value = read_string(object, key, where);
  if (!value || !*value || is_one_of(**value, allowed)) return value;
  return invalid("Invalid value " + quoted(**value) + " for " + member_path(where, key) +
                 ". Valid values: " + join(allowed) + ".");
}

// An optional integer that must lie in [min, max]; `owner` says whose setting it is.
Result<std::optional<int64_t>> read_bounded(const json::object& object, std::string_view key,
                                            std::string_view where, std::string_view owner,
                                            int64_t min, int64_t max) {
  auto value = read_int(object, key, where);
  if (!value || !*value) return value;
  if (**value >= min && **value <= max) return value;
  return client_error("Invalid '" + std::string(key) + "' setting for " + std::string(owner) +
                      ": it must be between " + str(min) + " and " + str(max) + " (got " +
                      str(**value) + ").");
}

// A required, non-empty string member of a list item, e.g. a secret's valueFrom.
Result<std::string> read_required_string(const json::object& object, std::string_view key,
                                         std::string_view where, std::string_view owner) {
  auto value = read_string(object, key, where);
  if (!value) return std::unexpected(value.error());
  if (!*value || (*value)->empty()) {
    return client_error("Missing '" + std::string(key) + "' in " + std::string(where) + " of " +
                        std::string(owner) + ". Set it to a non-empty value.");
  }
  return **value;
}

// Copies `members` of `source` in the model's order, taking `overrides` first. Unknown members
// and nulls are dropped, as ECS does.
json::object assemble(const json::object& source, const json::object& overrides,
                      std::span<const std::string_view> members) {
  json::object out;
  for (std::string_view key : members) {
    if (const json::value* value = overrides.if_contains(key)) {
      out[key] = *value;
      continue;
    }
    if (const json::value* value = present(source, key)) out[key] = *value;
  }
  return out;
}

// ---- Task size: cpu and memory strings ---------------------------------------------------------

// Parses "2", "0.5" or ".25" and multiplies by `scale`; nullopt unless the result is a whole
// number that fits the model's 32-bit integers.
std::optional<int64_t> scaled_decimal(std::string_view text, int64_t scale) {
  int64_t whole = 0;
  int64_t fraction = 0;
  int64_t fraction_scale = 1;
  bool any_digit = false;
  std::size_t char_idx = 0;
  for (; char_idx < text.size() && is_digit(text[char_idx]); ++char_idx) {
    whole = whole * 10 + (text[char_idx] - '0');
    if (whole > kMaxInt32) return std::nullopt;
    any_digit = true;
  }
  if (char_idx < text.size() && text[char_idx] == '.') {
    for (++char_idx; char_idx < text.size() && is_digit(text[char_idx]); ++char_idx) {
      if (fraction_scale >= 1'000'000) return std::nullopt;
      fraction = fraction * 10 + (text[char_idx] - '0');
      fraction_scale *= 10;
      any_digit = true;
    }
  }
  if (!any_digit || char_idx != text.size()) return std::nullopt;
  int64_t scaled = (whole * fraction_scale + fraction) * scale;
  if (scaled % fraction_scale != 0 || scaled / fraction_scale > kMaxInt32) return std::nullopt;
  return scaled / fraction_scale;
}

// Splits "0.5 vCPU" into the number and the lower-cased unit.
std::pair<std::string_view, std::string> split_unit(std::string_view text) {
  text = trim(text);
  std::size_t end = text.size();
  while (end > 0 && std::isalpha(static_cast<unsigned char>(text[end - 1]))) --end;
  return {trim(text.substr(0, end)), lower(text.substr(end))};
}

// Task cpu as CPU units ("1024") or vCPUs ("1 vCPU", "0.5 vcpu"); one vCPU is 1024 units.
std::optional<int64_t> parse_task_cpu(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (unit.empty()) return is_all_digits(number) ? scaled_decimal(number, 1) : std::nullopt;
  if (unit == "vcpu" || unit == "vcpus") return scaled_decimal(number, 1024);
  return std::nullopt;
}

// Task memory as MiB ("512") or GB ("2 GB", "2GB", "0.5 GB"); ECS counts a GB as 1024 MiB.
std::optional<int64_t> parse_task_memory(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (unit.empty()) return is_all_digits(number) ? scaled_decimal(number, 1) : std::nullopt;
  if (unit == "gb") return scaled_decimal(number, 1024);
  return std::nullopt;
}

// One row of the Fargate task size table: for `cpu` units, memory from `min_memory` to
// `max_memory` MiB in `step` MiB increments. 256 units need two rows (512, then 1024–2048).
struct FargateSize {
  int64_t cpu;
  int64_t min_memory;
  int64_t max_memory;
  int64_t step;
};

constexpr FargateSize kFargateSizes[] = {
    {256, 512, 512, 512},       {256, 1024, 2048, 1024},      {512, 1024, 4096, 1024},
    {1024, 2048, 8192, 1024},   {2048, 4096, 16384, 1024},    {4096, 8192, 30720, 1024},
    {8192, 16384, 61440, 4096}, {16384, 32768, 122880, 8192},
};

bool is_fargate_size(int64_t cpu, int64_t memory) {
  return std::ranges::any_of(kFargateSizes, [&](const FargateSize& size) {
    return size.cpu == cpu && memory >= size.min_memory && memory <= size.max_memory &&
           (memory - size.min_memory) % size.step == 0;
  });
}

// The memory values Fargate allows with `cpu` units, in words; empty when `cpu` is not a size.
std::string fargate_memory_choices(int64_t cpu) {
  std::string choices;
  for (const FargateSize& size : kFargateSizes) {
    if (size.cpu != cpu) continue;
    if (!choices.empty()) choices += ", or ";
    choices += size.min_memory == size.max_memory
                   ? str(size.min_memory)
                   : str(size.min_memory) + " to " + str(size.max_memory) + " in steps of " +
                         str(size.step);
  }
  return choices;
}

std::string fargate_size_error(int64_t cpu, int64_t memory) {
  std::string message = "No Fargate configuration exists for given values: " + str(cpu) + " CPU, " +
                        str(memory) +
                        " memory. See the Amazon ECS documentation for the valid values. ";
  std::string choices = fargate_memory_choices(cpu);
  if (choices.empty()) {
    return message + "Task cpu must be one of 256, 512, 1024, 2048, 4096, 8192 or 16384 units.";
  }
  return message + "With " + str(cpu) + " CPU units, memory must be " + choices + " MiB.";
}

// ---- What validation learns besides errors -----------------------------------------------------

// The first reason each capacity type cannot run the definition (it decides `compatibilities`,
// and is the error when that type is in requiresCompatibilities), and the container instance
// attributes the definition needs (`requiresAttributes`).
struct Findings {
  std::optional<std::string> not_fargate;
  std::optional<std::string> not_external;
  std::optional<std::string> not_managed_instances;
  std::vector<std::string> attributes;

  void rule_out_fargate(std::string reason) {
    if (!not_fargate) not_fargate = std::move(reason);
  }
  void rule_out_external(std::string reason) {
    if (!not_external) not_external = std::move(reason);
  }
  void rule_out_managed_instances(std::string reason) {
    if (!not_managed_instances) not_managed_instances = std::move(reason);
  }
  void require(std::string_view attribute) {
    if (std::ranges::find(attributes, attribute) == attributes.end()) {
      attributes.emplace_back(attribute);
    }
  }
};

// requiresAttributes use the names the ECS agent advertises. Which setting needs which follows
// the ECS documentation ("This parameter requires version 1.18 of the Docker Remote API", ...) and
// what DescribeTaskDefinition reports for such definitions:
//   networkMode awsvpc           docker-remote-api.1.18, ecs.capability.task-eni
//   pidMode or ipcMode           ecs.capability.pid-ipc-namespace-sharing
//   taskRoleArn                  com.amazonaws.ecs.capability.task-iam-role
//   ECR image                    com.amazonaws.ecs.capability.ecr-auth, and with an execution role
//                                ecs.capability.execution-role-ecr-pull
//   memoryReservation            docker-remote-api.1.21
//   dependsOn, start/stopTimeout ecs.capability.container-ordering
//   healthCheck                  ecs.capability.container-health-check, docker-remote-api.1.24
//                                (1.29 with startPeriod)
//   logConfiguration             com.amazonaws.ecs.capability.logging-driver.<driver>,
//                                docker-remote-api.1.18 (1.19 and, with an execution role,
//                                ecs.capability.execution-role-awslogs for awslogs)
//   ulimits, dockerLabels        docker-remote-api.1.18
//   tmpfs, sharedMemorySize      docker-remote-api.1.22
//   initProcessEnabled           docker-remote-api.1.25
//   secrets                      ecs.capability.secrets.{ssm,asm}.environment-variables
//   environmentFiles             ecs.capability.env-files.s3
//   repositoryCredentials        ...private-registry-authentication.secretsmanager
//   firelensConfiguration        ecs.capability.firelens.<type>
//   proxyConfiguration           ecs.capability.aws-appmesh
//   EFS volumes                  ecs.capability.efs (+ ecs.capability.efsAuth with IAM or an
//                                access point); FSx volumes ecs.capability.fsxWindowsFileServer
constexpr std::string_view kDockerApiPrefix = "com.amazonaws.ecs.capability.docker-remote-api.";

std::string docker_api(std::string_view version) {
  return std::string(kDockerApiPrefix) + std::string(version);
}

// Task-level settings that container rules depend on.
struct TaskSettings {
  std::string network_mode;       // as given; empty when absent (ECS then uses bridge on EC2)
  std::optional<int64_t> cpu;     // CPU units
  std::optional<int64_t> memory;  // MiB
  NameSet required;               // requiresCompatibilities
  bool has_execution_role = false;
  bool has_task_role = false;
  bool windows = false;
  std::string pid_mode;
  std::string ipc_mode;

  std::string_view mode() const {
    if (network_mode.empty()) return "bridge";
    return network_mode;
  }
  bool requires_type(std::string_view type) const { return required.contains(type); }
};

Status check_size(const json::object& request) {
  json::object definition = request;
  definition.erase("tags");
  std::size_t length = json::serialize(definition).size();
  if (length <= kMaxTaskDefinitionBytes) return {};
  return client_error("Actual length: '" + std::to_string(length) + "'. Max allowed length is '" +
                      std::to_string(kMaxTaskDefinitionBytes) +
                      "' bytes. Shrink the task definition, for example by moving environment "
                      "variables into environmentFiles or secrets.");
}

Status check_family(const json::object& request) {
  auto family = read_string(request, "family", "");
  if (!family) return std::unexpected(family.error());
  if (!*family || (*family)->empty()) {
    return client_error("Family should not be null or empty. Name the task definition family.");
  }
  if ((*family)->size() > kMaxNameLength) {
    return client_error("Family is too long: it may have at most 255 characters.");
  }
  if (!is_all_name_chars(**family)) {
    return client_error(
        "Family contains invalid characters. Use only letters, digits, hyphens and underscores.");
  }
  return {};
}

Status read_compatibilities(const json::object& request, TaskSettings& task) {
  auto list = read_array(request, "requiresCompatibilities", "");
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr) return {};
  for (std::size_t item_idx = 0; item_idx < (*list)->size(); ++item_idx) {
    const json::value& item = (**list)[item_idx];
    std::string path = element_path("requiresCompatibilities", item_idx);
    if (!item.is_string()) return wrong_type(path, "a string");
    std::string_view type = item.get_string();
    if (!is_one_of(type, kCompatibilities)) {
      return invalid("Invalid value " + quoted(type) + " for " + path +
                     ". Valid values: " + join(kCompatibilities) + ".");
    }
    task.required.emplace(type);
  }
  return {};
}

Status read_task_size(const json::object& request, TaskSettings& task) {
  auto cpu = read_string(request, "cpu", "");
  if (!cpu) return std::unexpected(cpu.error());
  if (*cpu) {
    task.cpu = parse_task_cpu(**cpu);
    if (!task.cpu) {
      return client_error(
          "Invalid 'cpu' setting for task. Express it in CPU units (\"1024\") or "
          "vCPUs (\"1 vCPU\", \"0.5 vcpu\"); got " +
          quoted(**cpu) + ".");
    }
    if (*task.cpu < kMinEc2TaskCpu || *task.cpu > kMaxEc2TaskCpu) {
      return client_error(
          "Invalid 'cpu' setting for task. Task cpu must be between 128 and "
          "196608 CPU units (0.125 to 192 vCPU); got " +
          str(*task.cpu) + ".");
    }
  }
  auto memory = read_string(request, "memory", "");
  if (!memory) return std::unexpected(memory.error());
  if (*memory) {
    task.memory = parse_task_memory(**memory);
    if (!task.memory) {
      return client_error(
          "Invalid 'memory' setting for task. Express it in MiB (\"512\") or GB "
          "(\"2 GB\", \"0.5GB\"); got " +
          quoted(**memory) + ".");
    }
    // ECS documents no floor for EC2, but no container below Docker's minimum could start.
    if (*task.memory < kMinContainerMemory) {
      return client_error(
          "Invalid 'memory' setting for task. Task memory must be at least 6 MiB; "
          "got " +
          str(*task.memory) + ".");
    }
  }
  return {};
}

Status read_runtime_platform(const json::object& request, TaskSettings& task) {
  auto platform = read_object(request, "runtimePlatform", "");
  if (!platform) return std::unexpected(platform.error());
  if (*platform == nullptr) return {};
  auto architecture =
      read_enum(**platform, "cpuArchitecture", "runtimePlatform", kCpuArchitectures);
  if (!architecture) return std::unexpected(architecture.error());
  auto family = read_enum(**platform, "operatingSystemFamily", "runtimePlatform", kOsFamilies);
  if (!family) return std::unexpected(family.error());
  task.windows = *family && (*family)->starts_with("WINDOWS");
  return {};
}

Status read_modes(const json::object& request, TaskSettings& task) {
  auto mode = read_enum(request, "networkMode", "", kNetworkModes);
  if (!mode) return std::unexpected(mode.error());
  task.network_mode = mode->value_or("");
  auto pid_mode = read_enum(request, "pidMode", "", kPidModes);
  if (!pid_mode) return std::unexpected(pid_mode.error());
  task.pid_mode = pid_mode->value_or("");
  auto ipc_mode = read_enum(request, "ipcMode", "", kIpcModes);
  if (!ipc_mode) return std::unexpected(ipc_mode.error());
  task.ipc_mode = ipc_mode->value_or("");
  return {};
}

Status read_roles(const json::object& request, TaskSettings& task) {
  auto execution_role = read_string(request, "executionRoleArn", "");
  if (!execution_role) return std::unexpected(execution_role.error());
  task.has_execution_role = *execution_role && !(*execution_role)->empty();
  auto task_role = read_string(request, "taskRoleArn", "");
  if (!task_role) return std::unexpected(task_role.error());
  task.has_task_role = *task_role && !(*task_role)->empty();
  return {};
}

Result<TaskSettings> read_task_settings(const json::object& request) {
  if (auto status = check_family(request); !status) return std::unexpected(status.error());
  using Reader = Status (*)(const json::object&, TaskSettings&);
  constexpr Reader kReaders[] = {read_modes, read_roles, read_compatibilities, read_task_size,
                                 read_runtime_platform};
  TaskSettings task;
  for (Reader reader : kReaders) {
    if (auto status = reader(request, task); !status) return std::unexpected(status.error());
  }
  return task;
}

// ---- Capacity types judged from task-level settings --------------------------------------------

std::optional<std::string> fargate_task_reason(const TaskSettings& task) {
  if (task.network_mode != "awsvpc") {
    return "Fargate only supports network mode 'awsvpc'. Set networkMode to awsvpc.";
  }
  if (!task.cpu) {
    return "Fargate requires that 'cpu' be defined at the task level. Set task cpu, for example "
           "\"256\" or \"1 vCPU\".";
  }
  if (!task.memory) {
    return "Fargate requires that 'memory' be defined at the task level. Set task memory, for "
           "example \"512\" or \"2 GB\".";
  }
  if (!is_fargate_size(*task.cpu, *task.memory)) return fargate_size_error(*task.cpu, *task.memory);
  if (task.windows && *task.cpu < kMinWindowsFargateCpu) {
    return "Windows containers on Fargate need at least 1 vCPU (1024 CPU units) of task cpu.";
  }
  if (task.pid_mode == "host") {
    return "Fargate does not support pidMode 'host'. Use pidMode 'task' or remove it.";
  }
  if (!task.ipc_mode.empty()) return "Fargate does not support ipcMode. Remove ipcMode.";
  return std::nullopt;
}

std::optional<std::string> external_task_reason(const TaskSettings& task) {
  if (task.network_mode == "awsvpc") {
    return "EXTERNAL instances (ECS Anywhere) do not support networkMode 'awsvpc'. Use bridge, "
           "host or none.";
  }
  return std::nullopt;
}

std::optional<std::string> managed_instances_task_reason(const TaskSettings& task) {
  if (!task.network_mode.empty() && task.network_mode != "awsvpc" && task.network_mode != "host") {
    return "ECS Managed Instances only support networkMode 'awsvpc' or 'host'.";
  }
  if (task.windows) {
    return "ECS Managed Instances only run Linux tasks; remove the Windows platform.";
  }
  return std::nullopt;
}

// Rejects at once what a required capacity type cannot run at the task level, so that a
// Fargate definition without task memory hears about Fargate rather than per-container memory.
Status judge_task_level(const TaskSettings& task, Findings& findings) {
  if (auto reason = fargate_task_reason(task)) {
    if (task.requires_type("FARGATE")) return client_error(*reason);
    findings.rule_out_fargate(*reason);
  }
  if (auto reason = external_task_reason(task)) {
    if (task.requires_type("EXTERNAL")) return client_error(*reason);
    findings.rule_out_external(*reason);
  }
  if (auto reason = managed_instances_task_reason(task)) {
    if (task.requires_type("MANAGED_INSTANCES")) return client_error(*reason);
    findings.rule_out_managed_instances(*reason);
  }
  if (task.network_mode == "awsvpc") {
    findings.require(docker_api("1.18"));
    findings.require("ecs.capability.task-eni");
  }
  if (!task.pid_mode.empty() || !task.ipc_mode.empty()) {
    findings.require("ecs.capability.pid-ipc-namespace-sharing");
  }
  return {};
}

// ---- Volumes -----------------------------------------------------------------------------------

struct Volumes {
  json::array wire;
  NameSet names;
};

using VolumeCheck = Status (*)(const json::object& config, const std::string& where,
                               const std::string& volume, Findings& findings);

Status check_host_volume(const json::object& config, const std::string& where,
                         const std::string& volume, Findings& findings) {
  auto source_path = read_string(config, "sourcePath", where);
  if (!source_path) return std::unexpected(source_path.error());
  if (!*source_path) return {};
  if (!is_absolute_path(**source_path)) {
    return client_error("Invalid 'sourcePath' for volume " + quoted(volume) +
                        ": it must be an absolute path on the container instance (got " +
                        quoted(**source_path) + ").");
  }
  findings.rule_out_fargate("Fargate does not support host volumes with a sourcePath (volume " +
                            quoted(volume) +
                            "). Leave 'host' empty for a task-scoped bind mount, "
                            "or use an EFS volume.");
  return {};
}

Status check_docker_volume(const json::object& config, const std::string& where,
                           const std::string& volume, Findings& findings) {
  auto scope = read_enum(config, "scope", where, kVolumeScopes);
  if (!scope) return std::unexpected(scope.error());
  auto autoprovision = read_bool(config, "autoprovision", where);
  if (!autoprovision) return std::unexpected(autoprovision.error());
  if (autoprovision->value_or(false) && scope->value_or("task") != "shared") {
    return client_error("Invalid dockerVolumeConfiguration for volume " + quoted(volume) +
                        ": 'autoprovision' only applies when 'scope' is 'shared'.");
  }
  auto driver = read_string(config, "driver", where);
  if (!driver) return std::unexpected(driver.error());
  for (std::string_view map_key : {"driverOpts", "labels"}) {
    auto map = read_string_map(config, map_key, where);
    if (!map) return std::unexpected(map.error());
  }
  findings.rule_out_fargate(
      "Fargate does not support Docker volumes (dockerVolumeConfiguration "
      "on volume " +
      quoted(volume) + "). Use an EFS volume or a bind mount.");
  return {};
}

Status check_efs_volume(const json::object& config, const std::string& where,
                        const std::string& volume, Findings& findings) {
  std::string owner = "volume " + quoted(volume);
  auto file_system = read_required_string(config, "fileSystemId", where, owner);
  if (!file_system) return std::unexpected(file_system.error());
  auto root = read_string(config, "rootDirectory", where);
  if (!root) return std::unexpected(root.error());
  auto encryption = read_enum(config, "transitEncryption", where, kEnabledDisabled);
  if (!encryption) return std::unexpected(encryption.error());
  auto port = read_bounded(config, "transitEncryptionPort", where, owner, 0, kMaxPort);
  if (!port) return std::unexpected(port.error());
  auto auth = read_object(config, "authorizationConfig", where);
  if (!auth) return std::unexpected(auth.error());
  bool encrypted = encryption->value_or("DISABLED") == "ENABLED";
  if (*auth != nullptr) {
    std::string auth_where = member_path(where, "authorizationConfig");
    auto access_point = read_string(**auth, "accessPointId", auth_where);
    if (!access_point) return std::unexpected(access_point.error());
    auto iam = read_enum(**auth, "iam", auth_where, kEnabledDisabled);
    if (!iam) return std::unexpected(iam.error());
    bool uses_iam = iam->value_or("DISABLED") == "ENABLED";
    if ((uses_iam || *access_point) && !encrypted) {
      return client_error("Invalid efsVolumeConfiguration for " + owner +
                          ": EFS IAM "
                          "authorization and access points need transitEncryption 'ENABLED'.");
    }
    if (*access_point && *root && **root != "/") {
      return client_error("Invalid efsVolumeConfiguration for " + owner +
                          ": with an access "
                          "point, rootDirectory must be omitted or '/'; the access point sets "
                          "the path.");
    }
    if (uses_iam || *access_point) findings.require("ecs.capability.efsAuth");
  }
  findings.require("ecs.capability.efs");
  findings.rule_out_external(
      "EXTERNAL instances (ECS Anywhere) do not support EFS volumes "
      "(volume " +
      quoted(volume) + ").");
  return {};
}

Status check_fsx_volume(const json::object& config, const std::string& where,
                        const std::string& volume, Findings& findings) {
  std::string owner = "volume " + quoted(volume);
  for (std::string_view key : {"fileSystemId", "rootDirectory"}) {
    auto value = read_required_string(config, key, where, owner);
    if (!value) return std::unexpected(value.error());
  }
  auto auth = read_object(config, "authorizationConfig", where);
  if (!auth) return std::unexpected(auth.error());
  if (*auth == nullptr) {
    return client_error("Missing 'authorizationConfig' in " + where + " of " + owner +
                        ". FSx for Windows File Server volumes need credentialsParameter and "
                        "domain.");
  }
  for (std::string_view key : {"credentialsParameter", "domain"}) {
    auto value =
        read_required_string(**auth, key, member_path(where, "authorizationConfig"), owner);
    if (!value) return std::unexpected(value.error());
  }
  findings.require("ecs.capability.fsxWindowsFileServer");
  findings.rule_out_external(
      "EXTERNAL instances (ECS Anywhere) do not support FSx volumes "
      "(volume " +
      quoted(volume) + ").");
  return {};
}

Status check_s3files_volume(const json::object& config, const std::string& where,
                            const std::string& volume, Findings& findings) {
  std::string owner = "volume " + quoted(volume);
  auto arn = read_required_string(config, "fileSystemArn", where, owner);
  if (!arn) return std::unexpected(arn.error());
  auto port = read_bounded(config, "transitEncryptionPort", where, owner, 0, kMaxPort);
  if (!port) return std::unexpected(port.error());
  findings.rule_out_external(
      "EXTERNAL instances (ECS Anywhere) do not support S3 Files volumes "
      "(volume " +
      quoted(volume) + ").");
  return {};
}

struct VolumeKind {
  std::string_view key;
  VolumeCheck check;
};

constexpr VolumeKind kVolumeKinds[] = {
    {"host", check_host_volume},
    {"dockerVolumeConfiguration", check_docker_volume},
    {"efsVolumeConfiguration", check_efs_volume},
    {"fsxWindowsFileServerVolumeConfiguration", check_fsx_volume},
    {"s3filesVolumeConfiguration", check_s3files_volume},
};

Result<std::string> read_volume_name(const json::object& volume, const std::string& where) {
  auto name = read_string(volume, "name", where);
  if (!name) return std::unexpected(name.error());
  if (!*name || (*name)->empty()) {
    return client_error("Volume name should not be null or empty (" + where +
                        "). Name the volume so mountPoints can refer to it.");
  }
  if ((*name)->size() > kMaxNameLength || !is_all_name_chars(**name)) {
    return client_error("Invalid volume name " + quoted(**name) +
                        ": use up to 255 letters, digits, hyphens and underscores.");
  }
  return **name;
}

// Validates one volume and returns its name; `at_launch` counts EBS volumes configured at launch.
Result<std::string> validate_volume(const json::object& volume, const std::string& where,
                                    std::size_t& at_launch, Findings& findings) {
  auto name = read_volume_name(volume, where);
  if (!name) return name;
  auto configured_at_launch = read_bool(volume, "configuredAtLaunch", where);
  if (!configured_at_launch) return std::unexpected(configured_at_launch.error());
  std::vector<std::string_view> kinds;
  if (configured_at_launch->value_or(false)) kinds.push_back("configuredAtLaunch");
  for (const VolumeKind& kind : kVolumeKinds) {
    auto config = read_object(volume, kind.key, where);
    if (!config) return std::unexpected(config.error());
    if (*config == nullptr) continue;
    kinds.push_back(kind.key);
    auto status = kind.check(**config, member_path(where, kind.key), *name, findings);
    if (!status) return std::unexpected(status.error());
  }
  if (kinds.size() > 1) {
    return client_error("Volume " + quoted(*name) + " sets both '" + std::string(kinds[0]) +
                        "' and '" + std::string(kinds[1]) +
                        "'; a volume can use only one kind of storage.");
  }
  if (configured_at_launch->value_or(false)) {
    ++at_launch;
    findings.rule_out_external(
        "EXTERNAL instances (ECS Anywhere) do not support EBS volumes "
        "configured at launch (volume " +
        quoted(*name) + ").");
  }
  return name;
}

Result<Volumes> validate_volumes(const json::object& request, Findings& findings) {
  auto list = read_array(request, "volumes", "");
  if (!list) return std::unexpected(list.error());
  Volumes volumes;
  if (*list == nullptr) return volumes;
  std::size_t at_launch = 0;
  for (std::size_t volume_idx = 0; volume_idx < (*list)->size(); ++volume_idx) {
    std::string where = element_path("volumes", volume_idx);
    auto volume = as_object((**list)[volume_idx], where);
    if (!volume) return std::unexpected(volume.error());
    auto name = validate_volume(**volume, where, at_launch, findings);
    if (!name) return std::unexpected(name.error());
    if (!volumes.names.insert(*name).second) {
      return client_error("Volume names must be unique within a task definition; " + quoted(*name) +
                          " is used more than once.");
    }
    volumes.wire.push_back(**volume);
  }
  if (at_launch > 1) {
    return client_error(
        "Each task definition revision may only have one volume configured at "
        "launch; set configuredAtLaunch on one volume only.");
  }
  return volumes;
}

// ---- Containers, one at a time -----------------------------------------------------------------

// A port a container uses: one container port, or a containerPortRange.
struct PortUse {
  int64_t first = 0;
  int64_t last = 0;
  int64_t host = 0;  // 0 when ECS picks the host port
  std::string protocol;
};

bool overlaps(const PortUse& left, const PortUse& right) {
  return left.protocol == right.protocol && left.first <= right.last && right.first <= left.last;
}

std::string describe_port(const PortUse& use) {
  std::string ports = use.first == use.last ? str(use.first) : str(use.first) + "-" + str(use.last);
  return ports + "/" + use.protocol;
}

// What cross-container rules need to know about a container, and its normalised wire form.
struct Container {
  std::string name;
  int64_t cpu = 0;
  std::optional<int64_t> memory;
  std::optional<int64_t> memory_reservation;
  bool essential = true;
  bool has_health_check = false;
  bool is_log_router = false;                                   // has firelensConfiguration
  bool uses_log_router = false;                                 // logs with the awsfirelens driver
  std::vector<std::pair<std::string, std::string>> depends_on;  // container, condition
  std::vector<std::string> links;                               // linked container names
  std::vector<std::string> volumes_from;
  std::vector<std::string> accelerators;  // inference accelerator device names it uses
  std::vector<std::string> port_names;
  std::vector<PortUse> ports;
  json::object overrides;  // normalised members and defaults
  json::object wire;
};

struct ContainerInput {
  const json::object& source;
  std::string where;  // "containerDefinitions[2]", for type errors
  std::string label;  // "container 'web'", for rule errors
  const TaskSettings& task;
  const NameSet& volumes;
};

using ContainerCheck = Status (*)(const ContainerInput& in, Container& out, Findings& findings);

Result<std::string> read_container_name(const json::object& source, const std::string& where) {
  auto name = read_string(source, "name", where);
  if (!name) return std::unexpected(name.error());
  if (!*name || (*name)->empty()) {
    return client_error("Container.name should not be null or empty. Name every container (" +
                        where + ").");
  }
  if ((*name)->size() > kMaxNameLength || !is_all_name_chars(**name)) {
    return client_error("Container.name contains invalid characters: " + quoted(**name) +
                        ". Use up to 255 letters, digits, hyphens and underscores.");
  }
  return **name;
}

bool is_image_char(char c) {
  return is_name_char(c) || c == ':' || c == '.' || c == '/' || c == '#';
}

bool is_hex_digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!digest.starts_with(kPrefix) || digest.size() != kPrefix.size() + 64) return false;
  return std::ranges::all_of(digest.substr(kPrefix.size()),
                             [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

bool is_ecr_image(std::string_view repository) {
  std::string_view registry = repository.substr(0, repository.find('/'));
  return registry.find(".dkr.ecr.") != std::string_view::npos &&
         registry.find(".amazonaws.com") != std::string_view::npos;
}

// Images: up to 255 letters, digits and - _ : . / # before any "@sha256:<64 hex digits>".
Status check_image(const ContainerInput& in, Container&, Findings& findings) {
  auto image = read_string(in.source, "image", in.where);
  if (!image) return std::unexpected(image.error());
  if (!*image || (*image)->empty()) {
    return client_error("Container.image should not be null or empty. Set 'image' for " + in.label +
                        ", for example \"nginx:latest\".");
  }
  std::string_view text = **image;
  std::string_view repository = text.substr(0, text.find('@'));
  if (repository.size() < text.size() && !is_hex_digest(text.substr(repository.size() + 1))) {
    return client_error("Invalid 'image' setting for " + in.label +
                        ": a digest must be "
                        "'sha256:' followed by 64 hexadecimal digits.");
  }
  if (repository.empty() || repository.size() > kMaxImageLength) {
    return client_error("Invalid 'image' setting for " + in.label +
                        ": the image name must have "
                        "1 to 255 characters before any '@' digest.");
  }
  if (!std::ranges::all_of(repository, is_image_char)) {
    return client_error("Invalid 'image' setting for " + in.label +
                        ": only letters, digits and "
                        "- _ : . / # are allowed in " +
                        quoted(repository) + ".");
  }
  if (!is_ecr_image(repository)) return {};
  findings.require("com.amazonaws.ecs.capability.ecr-auth");
  if (in.task.has_execution_role) {
    findings.require("ecs.capability.execution-role-ecr-pull");
    return {};
  }
  findings.rule_out_fargate(
      "Fargate requires task definition to have execution role ARN to "
      "support ECR images. Set executionRoleArn to a role that can pull "
      "from ECR.");
  return {};
}

Status check_memory_values(const ContainerInput& in, const Container& out) {
  for (const auto& [key, value] :
       {std::pair{"memory", out.memory}, std::pair{"memoryReservation", out.memory_reservation}}) {
    if (value && *value < kMinContainerMemory) {
      return client_error("Invalid '" + std::string(key) + "' setting for " + in.label +
                          ": it must be at least 6 MiB, the minimum Docker reserves for a "
                          "container (got " +
                          str(*value) + ").");
    }
  }
  if (!out.memory && !out.memory_reservation && !in.task.memory) {
    return client_error("Invalid setting for " + in.label +
                        ". At least one of 'memory' or "
                        "'memoryReservation' must be specified. Set one of them, or set the "
                        "task-level 'memory'.");
  }
  if (out.memory && out.memory_reservation && *out.memory < *out.memory_reservation) {
    return client_error("Invalid setting for " + in.label +
                        ". 'memory' must be greater than or "
                        "equal to 'memoryReservation' (hard limit " +
                        str(*out.memory) + " MiB, soft limit " + str(*out.memory_reservation) +
                        " MiB). Raise 'memory' or lower 'memoryReservation'.");
  }
  return {};
}

// cpu defaults to 0 (ECS describes it so); memory rules follow ContainerDefinition.memory.
Status check_resources(const ContainerInput& in, Container& out, Findings& findings) {
  auto cpu = read_int(in.source, "cpu", in.where);
  if (!cpu) return std::unexpected(cpu.error());
  if (*cpu && **cpu < 0) {
    return client_error("Invalid 'cpu' setting for " + in.label +
                        ": container cpu units must be 0 or more (got " + str(**cpu) + ").");
  }
  out.cpu = cpu->value_or(0);
  out.overrides["cpu"] = out.cpu;
  auto memory = read_int(in.source, "memory", in.where);
  if (!memory) return std::unexpected(memory.error());
  auto reservation = read_int(in.source, "memoryReservation", in.where);
  if (!reservation) return std::unexpected(reservation.error());
  out.memory = *memory;
  out.memory_reservation = *reservation;
  if (auto status = check_memory_values(in, out); !status) return status;
  if (out.memory) out.overrides["memory"] = *out.memory;
  if (out.memory_reservation) {
    out.overrides["memoryReservation"] = *out.memory_reservation;
    findings.require(docker_api("1.21"));
  }
  return {};
}

Status check_essential(const ContainerInput& in, Container& out, Findings&) {
  auto essential = read_bool(in.source, "essential", in.where);
  if (!essential) return std::unexpected(essential.error());
  out.essential = essential->value_or(true);
  out.overrides["essential"] = out.essential;
  return {};
}

// "8000-8010": a first port below the last, both within 1–65535.
std::optional<std::pair<int64_t, int64_t>> parse_port_range(std::string_view text) {
  std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view first = text.substr(0, dash);
  std::string_view last = text.substr(dash + 1);
  if (!is_all_digits(first) || !is_all_digits(last) || first.size() > 5 || last.size() > 5) {
    return std::nullopt;
  }
  int64_t low = std::stoll(std::string(first));
  int64_t high = std::stoll(std::string(last));
  if (low < 1 || high > kMaxPort || low >= high) return std::nullopt;
  return std::pair{low, high};
}

// Port mapping names: up to 64 lowercase letters, digits, underscores and hyphens, not starting
// with a hyphen (Service Connect refers to them).
bool is_port_mapping_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxPortMappingNameLength || name.front() == '-') return false;
  return std::ranges::all_of(
      name, [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-'; });
}

Status check_port_range(const ContainerInput& in, std::string_view range,
                        const std::optional<int64_t>& container_port,
                        const std::optional<int64_t>& host_port, PortUse& use) {
  if (container_port) {
    return client_error("Invalid port mapping for " + in.label +
                        ": set either 'containerPort' "
                        "or 'containerPortRange', not both.");
  }
  if (host_port) {
    return client_error("Invalid port mapping for " + in.label +
                        ": do not set 'hostPort' with "
                        "'containerPortRange'; ECS chooses the host ports.");
  }
  if (in.task.mode() != "bridge" && in.task.mode() != "awsvpc") {
    return client_error("Invalid port mapping for " + in.label +
                        ": 'containerPortRange' needs "
                        "networkMode bridge or awsvpc.");
  }
  auto ports = parse_port_range(range);
  if (!ports) {
    return client_error("Invalid 'containerPortRange' setting for " + in.label + ": " +
                        quoted(range) + " must be \"first-last\" with 1 <= first < last <= 65535.");
  }
  use.first = ports->first;
  use.last = ports->second;
  return {};
}

// Single ports. With awsvpc and host networking the host port is the container port; ECS fills
// it in. With bridge an omitted host port means a dynamic one, described as 0.
Status check_single_port(const ContainerInput& in, const std::optional<int64_t>& container_port,
                         const std::optional<int64_t>& host_port, PortUse& use) {
  if (!container_port || *container_port < 1 || *container_port > kMaxPort) {
    return client_error("Invalid 'containerPort' setting for " + in.label +
                        ". Container ports must be between 1 and 65535.");
  }
  if (host_port && (*host_port < 0 || *host_port > kMaxPort)) {
    return client_error("Invalid 'hostPort' setting for " + in.label +
                        ". Host ports must be between 0 and 65535.");
  }
  use.first = use.last = *container_port;
  std::string_view mode = in.task.mode();
  if (mode != "awsvpc" && mode != "host") {
    use.host = host_port.value_or(0);
    return {};
  }
  if (host_port && *host_port != *container_port) {
    return client_error("When networkMode=" + std::string(mode) +
                        ", the host ports and container "
                        "ports in port mappings must match. Omit 'hostPort' or set it to " +
                        str(*container_port) + " for " + in.label + ".");
  }
  use.host = *container_port;
  return {};
}

Result<json::object> check_port_mapping(const ContainerInput& in, const json::value& value,
                                        const std::string& where, Container& out) {
  auto mapping = as_object(value, where);
  if (!mapping) return std::unexpected(mapping.error());
  const json::object& source = **mapping;
  auto container_port = read_int(source, "containerPort", where);
  if (!container_port) return std::unexpected(container_port.error());
  auto host_port = read_int(source, "hostPort", where);
  if (!host_port) return std::unexpected(host_port.error());
  auto protocol = read_enum(source, "protocol", where, kProtocols);
  if (!protocol) return std::unexpected(protocol.error());
  auto name = read_string(source, "name", where);
  if (!name) return std::unexpected(name.error());
  auto app_protocol = read_enum(source, "appProtocol", where, kAppProtocols);
  if (!app_protocol) return std::unexpected(app_protocol.error());
  auto range = read_string(source, "containerPortRange", where);
  if (!range) return std::unexpected(range.error());

  PortUse use{.protocol = protocol->value_or("tcp")};
  Status ports = *range ? check_port_range(in, **range, *container_port, *host_port, use)
                        : check_single_port(in, *container_port, *host_port, use);
  if (!ports) return std::unexpected(ports.error());
  if (*name && !is_port_mapping_name(**name)) {
    return client_error("Invalid port mapping name " + quoted(**name) + " for " + in.label +
                        ": use up to 64 lowercase letters, digits, underscores and hyphens, not "
                        "starting with a hyphen.");
  }
  if (*app_protocol && !*name) {
    return client_error("Invalid port mapping for " + in.label +
                        ": 'appProtocol' needs a 'name' "
                        "so Service Connect can refer to the port.");
  }
  if (*name) out.port_names.push_back(**name);
  json::object overrides;
  overrides["protocol"] = use.protocol;
  if (!*range) {
    overrides["containerPort"] = use.first;
    overrides["hostPort"] = use.host;
  }
  out.ports.push_back(std::move(use));
  return assemble(source, overrides, kPortMappingMembers);
}

Status check_ports_within_container(const ContainerInput& in, const Container& out) {
  std::size_t ranges =
      std::ranges::count_if(out.ports, [](const PortUse& use) { return use.first != use.last; });
  if (ranges > kMaxPortRangesPerContainer) {
    return client_error("Too many port ranges for " + in.label +
                        ": a container can have at most 100 containerPortRange mappings.");
  }
  for (std::size_t port_idx = 0; port_idx < out.ports.size(); ++port_idx) {
    for (std::size_t other_idx = 0; other_idx < port_idx; ++other_idx) {
      if (!overlaps(out.ports[port_idx], out.ports[other_idx])) continue;
      return client_error("Port " + describe_port(out.ports[port_idx]) + " of " + in.label +
                          " is mapped more than once. A port can only be included in one port "
                          "mapping per container.");
    }
  }
  return {};
}

Status check_port_mappings(const ContainerInput& in, Container& out, Findings&) {
  auto mappings = read_array(in.source, "portMappings", in.where);
  if (!mappings) return std::unexpected(mappings.error());
  json::array wire;
  if (*mappings != nullptr && !(*mappings)->empty() && in.task.mode() == "none") {
    return client_error(
        "Port mappings are not supported when networkMode=none. Remove "
        "portMappings from " +
        in.label + " or use another network mode.");
  }
  std::size_t count = *mappings == nullptr ? 0 : (*mappings)->size();
  std::string where = member_path(in.where, "portMappings");
  for (std::size_t mapping_idx = 0; mapping_idx < count; ++mapping_idx) {
    auto mapping =
        check_port_mapping(in, (**mappings)[mapping_idx], element_path(where, mapping_idx), out);
    if (!mapping) return std::unexpected(mapping.error());
    wire.push_back(std::move(*mapping));
  }
  if (auto status = check_ports_within_container(in, out); !status) return status;
  out.overrides["portMappings"] = std::move(wire);
  return {};
}

// links: "name" or "name:alias"; ECS only supports them with bridge networking.
Status check_links(const ContainerInput& in, Container& out, Findings&) {
  auto links = read_strings(in.source, "links", in.where);
  if (!links) return std::unexpected(links.error());
  if (links->empty()) return {};
  if (in.task.mode() != "bridge") {
    return client_error("Links are not supported when networkMode=" + std::string(in.task.mode()) +
                        ". Remove links from " + in.label +
                        "; containers in one task reach each other over localhost.");
  }
  for (const std::string& link : *links) {
    std::size_t colon = link.find(':');
    std::string_view target = std::string_view(link).substr(0, colon);
    std::string_view alias =
        colon == std::string::npos ? target : std::string_view(link).substr(colon + 1);
    if (target.empty() || alias.empty() || !is_all_name_chars(target) ||
        !is_all_name_chars(alias)) {
      return client_error("Invalid link " + quoted(link) + " in " + in.label +
                          ": use \"name\" or \"name:alias\" with letters, digits, hyphens and "
                          "underscores.");
    }
    out.links.emplace_back(target);
  }
  return {};
}

Status check_depends_on(const ContainerInput& in, Container& out, Findings& findings) {
  auto list = read_array(in.source, "dependsOn", in.where);
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr) return {};
  std::string where = member_path(in.where, "dependsOn");
  for (std::size_t item_idx = 0; item_idx < (*list)->size(); ++item_idx) {
    std::string item_where = element_path(where, item_idx);
    auto item = as_object((**list)[item_idx], item_where);
    if (!item) return std::unexpected(item.error());
    auto target = read_required_string(**item, "containerName", item_where, in.label);
    if (!target) return std::unexpected(target.error());
    auto condition = read_enum(**item, "condition", item_where, kConditions);
    if (!condition) return std::unexpected(condition.error());
    if (!*condition) {
      return client_error("Missing 'condition' in " + item_where + " of " + in.label +
                          ". Use one of " + join(kConditions) + ".");
    }
    out.depends_on.emplace_back(*target, **condition);
  }
  if (!out.depends_on.empty()) findings.require("ecs.capability.container-ordering");
  return {};
}

// startTimeout and stopTimeout: at least 2 seconds; Fargate accepts at most 120.
Status check_timeouts(const ContainerInput& in, Container&, Findings& findings) {
  for (std::string_view key : {"startTimeout", "stopTimeout"}) {
    auto seconds = read_int(in.source, key, in.where);
    if (!seconds) return std::unexpected(seconds.error());
    if (!*seconds) continue;
    if (**seconds < kMinTimeoutSeconds) {
      return client_error("Invalid '" + std::string(key) + "' setting for " + in.label +
                          ": it must be at least 2 seconds (got " + str(**seconds) + ").");
    }
    if (**seconds > kMaxFargateTimeoutSeconds) {
      findings.rule_out_fargate("Fargate supports a container " + std::string(key) +
                                " of at most 120 seconds; " + in.label + " has " + str(**seconds) +
                                ". Lower it.");
    }
    findings.require("ecs.capability.container-ordering");
  }
  return {};
}

Status check_health_command(const ContainerInput& in, const std::vector<std::string>& command) {
  if (command.empty()) {
    return client_error("Invalid 'healthCheck' setting for " + in.label +
                        ": 'command' must not "
                        "be empty. Start it with CMD or CMD-SHELL, for example [\"CMD-SHELL\", "
                        "\"curl -f http://localhost/ || exit 1\"].");
  }
  if (!is_one_of(command.front(), kHealthCheckModes)) {
    return client_error("Invalid 'healthCheck' setting for " + in.label +
                        ": the command must "
                        "start with CMD, CMD-SHELL or NONE (got " +
                        quoted(command.front()) + ").");
  }
  if (command.front() == "NONE" ? command.size() != 1 : command.size() < 2) {
    return client_error("Invalid 'healthCheck' setting for " + in.label + ": " +
                        (command.front() == "NONE"
                             ? "NONE takes no arguments."
                             : "give the command to run after " + command.front() + "."));
  }
  return {};
}

// Ranges and defaults from the HealthCheck shape; ECS describes interval, timeout and retries
// with their defaults but leaves startPeriod out unless it was given.
Status check_health_check(const ContainerInput& in, Container& out, Findings& findings) {
  auto health = read_object(in.source, "healthCheck", in.where);
  if (!health) return std::unexpected(health.error());
  if (*health == nullptr) return {};
  std::string where = member_path(in.where, "healthCheck");
  std::string owner = "the healthCheck of " + in.label;
  auto command = read_strings(**health, "command", where);
  if (!command) return std::unexpected(command.error());
  if (auto status = check_health_command(in, *command); !status) return status;
  struct Setting {
    std::string_view key;
    int64_t min;
    int64_t max;
    std::optional<int64_t> fallback;
  };
  constexpr Setting kSettings[] = {{"interval", 5, 300, 30},
                                   {"timeout", 2, 60, 5},
                                   {"retries", 1, 10, 3},
                                   {"startPeriod", 0, 300, std::nullopt}};
  json::object overrides;
  for (const Setting& setting : kSettings) {
    auto value = read_bounded(**health, setting.key, where, owner, setting.min, setting.max);
    if (!value) return std::unexpected(value.error());
    std::optional<int64_t> effective = value->has_value() ? *value : setting.fallback;
    if (effective) overrides[setting.key] = *effective;
  }
  if (overrides.contains("startPeriod")) findings.require(docker_api("1.29"));
  out.overrides["healthCheck"] = assemble(**health, overrides, kHealthCheckMembers);
  out.has_health_check = true;
  findings.require("ecs.capability.container-health-check");
  findings.require(docker_api("1.24"));
  return {};
}

// Runs `check` on each object of an array member; absent arrays have no items.
template <typename Check>
Status for_each_object(const json::object& source, std::string_view key, std::string_view where,
                       Check&& check) {
  auto list = read_array(source, key, where);
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr) return {};
  std::string list_where = member_path(where, key);
  for (std::size_t item_idx = 0; item_idx < (*list)->size(); ++item_idx) {
    std::string item_where = element_path(list_where, item_idx);
    auto item = as_object((**list)[item_idx], item_where);
    if (!item) return std::unexpected(item.error());
    if (auto status = check(**item, item_where); !status) return status;
  }
  return {};
}

Status check_environment(const ContainerInput& in, Container& out, Findings&) {
  auto status =
      for_each_object(in.source, "environment", in.where,
                      [&](const json::object& variable, const std::string& where) -> Status {
                        auto name = read_required_string(variable, "name", where, in.label);
                        if (!name) return std::unexpected(name.error());
                        auto value = read_string(variable, "value", where);
                        if (!value) return std::unexpected(value.error());
                        return {};
                      });
  if (!status) return status;
  if (!present(in.source, "environment")) out.overrides["environment"] = json::array();
  return {};
}

// arn:<partition>:s3:::<bucket>/<key>.env
bool is_s3_env_file_arn(std::string_view arn) {
  if (!arn.starts_with("arn:aws")) return false;
  std::size_t service = arn.find(":s3:::");
  if (service == std::string_view::npos) return false;
  std::string_view object = arn.substr(service + 6);
  std::size_t slash = object.find('/');
  return slash != std::string_view::npos && slash > 0 && object.ends_with(".env");
}

Status check_environment_files(const ContainerInput& in, Container&, Findings& findings) {
  auto list = read_array(in.source, "environmentFiles", in.where);
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr || (*list)->empty()) return {};
  if ((*list)->size() > kMaxEnvironmentFiles) {
    return client_error("Too many environmentFiles for " + in.label +
                        ": a container can have at most 10.");
  }
  findings.require("ecs.capability.env-files.s3");
  return for_each_object(
      in.source, "environmentFiles", in.where,
      [&](const json::object& file, const std::string& where) -> Status {
        auto type = read_enum(file, "type", where, kEnvironmentFileTypes);
        if (!type) return std::unexpected(type.error());
        if (!*type) return client_error("Missing 'type' in " + where + ": use \"s3\".");
        auto value = read_required_string(file, "value", where, in.label);
        if (!value) return std::unexpected(value.error());
        if (is_s3_env_file_arn(*value)) return {};
        return client_error("Invalid environment file " + quoted(*value) + " for " + in.label +
                            ": use the ARN of an S3 object with a .env extension, for example "
                            "arn:aws:s3:::my-bucket/app.env.");
      });
}

// Secrets (container secrets and log secretOptions) are fetched by the task execution role.
Status check_secret_list(const ContainerInput& in, const json::object& source, std::string_view key,
                         std::string_view where, Findings& findings) {
  return for_each_object(
      source, key, where, [&](const json::object& secret, const std::string& item_where) -> Status {
        auto name = read_required_string(secret, "name", item_where, in.label);
        if (!name) return std::unexpected(name.error());
        auto value_from = read_required_string(secret, "valueFrom", item_where, in.label);
        if (!value_from) return std::unexpected(value_from.error());
        if (!in.task.has_execution_role) {
          return client_error(
              "When you are specifying container secrets, you must also specify "
              "a value for 'executionRoleArn'. Set executionRoleArn to a role "
              "that can read the secrets of " +
              in.label + ".");
        }
        bool secrets_manager = value_from->find(":secretsmanager:") != std::string::npos;
        findings.require(secrets_manager ? "ecs.capability.secrets.asm.environment-variables"
                                         : "ecs.capability.secrets.ssm.environment-variables");
        return {};
      });
}

Status check_secrets(const ContainerInput& in, Container&, Findings& findings) {
  return check_secret_list(in, in.source, "secrets", in.where, findings);
}

Status check_mount_points(const ContainerInput& in, Container& out, Findings&) {
  auto status = for_each_object(
      in.source, "mountPoints", in.where,
      [&](const json::object& mount, const std::string& where) -> Status {
        auto volume = read_required_string(mount, "sourceVolume", where, in.label);
        if (!volume) return std::unexpected(volume.error());
        if (!in.volumes.contains(*volume)) {
          return client_error("Invalid 'mountPoints' setting for " + in.label + ": sourceVolume " +
                              quoted(*volume) +
                              " is not defined in the task definition's "
                              "volumes. Add a volume with that name or fix the name.");
        }
        auto path = read_required_string(mount, "containerPath", where, in.label);
        if (!path) return std::unexpected(path.error());
        auto read_only = read_bool(mount, "readOnly", where);
        if (!read_only) return std::unexpected(read_only.error());
        return {};
      });
  if (!status) return status;
  if (!present(in.source, "mountPoints")) out.overrides["mountPoints"] = json::array();
  return {};
}

Status check_volumes_from(const ContainerInput& in, Container& out, Findings&) {
  auto status = for_each_object(
      in.source, "volumesFrom", in.where,
      [&](const json::object& source, const std::string& where) -> Status {
        auto container = read_required_string(source, "sourceContainer", where, in.label);
        if (!container) return std::unexpected(container.error());
        auto read_only = read_bool(source, "readOnly", where);
        if (!read_only) return std::unexpected(read_only.error());
        out.volumes_from.push_back(*container);
        return {};
      });
  if (!status) return status;
  if (!present(in.source, "volumesFrom")) out.overrides["volumesFrom"] = json::array();
  return {};
}

Status check_capabilities(const ContainerInput& in, const json::object& linux_params,
                          const std::string& where, Findings& findings) {
  auto capabilities = read_object(linux_params, "capabilities", where);
  if (!capabilities) return std::unexpected(capabilities.error());
  if (*capabilities == nullptr) return {};
  std::string caps_where = member_path(where, "capabilities");
  for (std::string_view key : {"add", "drop"}) {
    auto names = read_strings(**capabilities, key, caps_where);
    if (!names) return std::unexpected(names.error());
    for (const std::string& name : *names) {
      if (!is_one_of(name, kCapabilities)) {
        return client_error("Invalid capability " + quoted(name) + " in linuxParameters." +
                            "capabilities." + std::string(key) + " of " + in.label +
                            ". Valid values: " + join(kCapabilities) + ".");
      }
      if (key == "add" && name != "SYS_PTRACE") {
        findings.rule_out_fargate("Fargate only supports adding the SYS_PTRACE capability; " +
                                  in.label + " adds " + name + ".");
      }
    }
  }
  return {};
}

Status check_devices(const ContainerInput& in, const json::object& linux_params,
                     const std::string& where, Findings& findings) {
  auto list = read_array(linux_params, "devices", where);
  if (!list) return std::unexpected(list.error());
  if (*list != nullptr && !(*list)->empty()) {
    findings.rule_out_fargate("Fargate does not support linuxParameters.devices (" + in.label +
                              ").");
  }
  return for_each_object(
      linux_params, "devices", where,
      [&](const json::object& device, const std::string& item) -> Status {
        auto host_path = read_required_string(device, "hostPath", item, in.label);
        if (!host_path) return std::unexpected(host_path.error());
        if (!is_absolute_path(*host_path)) {
          return client_error("Invalid device for " + in.label + ": hostPath " +
                              quoted(*host_path) + " must be an absolute path.");
        }
        auto container_path = read_string(device, "containerPath", item);
        if (!container_path) return std::unexpected(container_path.error());
        auto permissions = read_strings(device, "permissions", item);
        if (!permissions) return std::unexpected(permissions.error());
        for (const std::string& permission : *permissions) {
          if (is_one_of(permission, kDevicePermissions)) continue;
          return invalid("Invalid value " + quoted(permission) + " in " + item +
                         ".permissions. Valid values: " + join(kDevicePermissions) + ".");
        }
        return {};
      });
}

Status check_tmpfs(const ContainerInput& in, const json::object& linux_params,
                   const std::string& where, Findings& findings) {
  return for_each_object(
      linux_params, "tmpfs", where,
      [&](const json::object& mount, const std::string& item) -> Status {
        auto path = read_required_string(mount, "containerPath", item, in.label);
        if (!path) return std::unexpected(path.error());
        auto size = read_int(mount, "size", item);
        if (!size) return std::unexpected(size.error());
        if (!*size || **size <= 0) {
          return client_error("Invalid tmpfs mount for " + in.label +
                              ": 'size' must be a "
                              "positive number of MiB.");
        }
        auto options = read_strings(mount, "mountOptions", item);
        if (!options) return std::unexpected(options.error());
        for (const std::string& option : *options) {
          if (is_one_of(option, kTmpfsMountOptions)) continue;
          return client_error("Invalid tmpfs mount option " + quoted(option) + " for " + in.label +
                              ". Valid values: " + join(kTmpfsMountOptions) + ".");
        }
        findings.require(docker_api("1.22"));
        return {};
      });
}

// Memory knobs Fargate does not offer: sharedMemorySize, maxSwap, swappiness.
Status check_memory_knobs(const ContainerInput& in, const json::object& linux_params,
                          const std::string& where, Findings& findings) {
  auto shared_memory = read_int(linux_params, "sharedMemorySize", where);
  if (!shared_memory) return std::unexpected(shared_memory.error());
  if (*shared_memory && **shared_memory <= 0) {
    return client_error("Invalid 'sharedMemorySize' setting for " + in.label +
                        ": it must be a positive number of MiB.");
  }
  auto max_swap = read_bounded(linux_params, "maxSwap", where, in.label, 0, kMaxInt32);
  if (!max_swap) return std::unexpected(max_swap.error());
  auto swappiness = read_bounded(linux_params, "swappiness", where, in.label, 0, 100);
  if (!swappiness) return std::unexpected(swappiness.error());
  if (*shared_memory) findings.require(docker_api("1.22"));
  for (const auto& [key, value] :
       {std::pair{"sharedMemorySize", *shared_memory}, std::pair{"maxSwap", *max_swap},
        std::pair{"swappiness", *swappiness}}) {
    if (value) {
      findings.rule_out_fargate("Fargate does not support linuxParameters." + std::string(key) +
                                " (" + in.label + ").");
    }
  }
  return {};
}

Status check_linux_parameters(const ContainerInput& in, Container&, Findings& findings) {
  auto linux_params = read_object(in.source, "linuxParameters", in.where);
  if (!linux_params) return std::unexpected(linux_params.error());
  if (*linux_params == nullptr) return {};
  std::string where = member_path(in.where, "linuxParameters");
  if (auto status = check_capabilities(in, **linux_params, where, findings); !status) return status;
  if (auto status = check_devices(in, **linux_params, where, findings); !status) return status;
  if (auto status = check_tmpfs(in, **linux_params, where, findings); !status) return status;
  if (auto status = check_memory_knobs(in, **linux_params, where, findings); !status) return status;
  auto init = read_bool(**linux_params, "initProcessEnabled", where);
  if (!init) return std::unexpected(init.error());
  if (init->value_or(false)) findings.require(docker_api("1.25"));
  return {};
}

Status check_ulimits(const ContainerInput& in, Container&, Findings& findings) {
  NameSet seen;
  return for_each_object(
      in.source, "ulimits", in.where,
      [&](const json::object& ulimit, const std::string& where) -> Status {
        auto name = read_enum(ulimit, "name", where, kUlimitNames);
        if (!name) return std::unexpected(name.error());
        if (!*name) return client_error("Missing 'name' in " + where + " of " + in.label + ".");
        auto soft = read_int(ulimit, "softLimit", where);
        if (!soft) return std::unexpected(soft.error());
        auto hard = read_int(ulimit, "hardLimit", where);
        if (!hard) return std::unexpected(hard.error());
        if (!*soft || !*hard) {
          return client_error("Ulimit " + quoted(**name) + " of " + in.label +
                              " needs both 'softLimit' and 'hardLimit'.");
        }
        if (**soft > **hard) {
          return client_error("Invalid ulimit " + quoted(**name) + " for " + in.label +
                              ": softLimit (" + str(**soft) +
                              ") cannot be greater than "
                              "hardLimit (" +
                              str(**hard) + ").");
        }
        if (!seen.insert(**name).second) {
          return client_error("Ulimit " + quoted(**name) + " is set more than once for " +
                              in.label + ".");
        }
        findings.require(docker_api("1.18"));
        return {};
      });
}

// The awslogs driver needs a group and a region; on Fargate it also needs the execution role.
Status check_awslogs(const ContainerInput& in, const std::map<std::string, std::string>& options,
                     Findings& findings) {
  std::vector<std::string_view> missing;
  for (std::string_view option : {"awslogs-region", "awslogs-group"}) {
    auto found = options.find(std::string(option));
    if (found == options.end() || found->second.empty()) missing.push_back(option);
  }
  if (!missing.empty()) {
    return client_error("Log driver awslogs requires options: awslogs-region, awslogs-group. " +
                        in.label + " is missing " + join(missing) + ".");
  }
  findings.require(docker_api("1.19"));
  if (in.task.has_execution_role) {
    findings.require("ecs.capability.execution-role-awslogs");
    return {};
  }
  findings.rule_out_fargate(
      "Fargate requires task definition to have execution role ARN to "
      "support log driver awslogs. Set executionRoleArn.");
  return {};
}

Status check_log_configuration(const ContainerInput& in, Container& out, Findings& findings) {
  auto config = read_object(in.source, "logConfiguration", in.where);
  if (!config) return std::unexpected(config.error());
  if (*config == nullptr) return {};
  std::string where = member_path(in.where, "logConfiguration");
  auto driver = read_enum(**config, "logDriver", where, kLogDrivers);
  if (!driver) return std::unexpected(driver.error());
  if (!*driver) {
    return client_error("Missing 'logDriver' in the logConfiguration of " + in.label +
                        ". Valid values: " + join(kLogDrivers) + ".");
  }
  auto options = read_string_map(**config, "options", where);
  if (!options) return std::unexpected(options.error());
  if (auto status = check_secret_list(in, **config, "secretOptions", where, findings); !status) {
    return status;
  }
  findings.require("com.amazonaws.ecs.capability.logging-driver." + **driver);
  findings.require(docker_api("1.18"));
  if (!is_one_of(**driver, kFargateLogDrivers)) {
    findings.rule_out_fargate(
        "Fargate only supports the awslogs, splunk and awsfirelens log "
        "drivers; " +
        in.label + " uses " + **driver + ".");
  }
  out.uses_log_router = **driver == "awsfirelens";
  if (**driver == "awslogs") return check_awslogs(in, *options, findings);
  return {};
}

// hostname and extraHosts cannot be set when the task has its own network interface.
Status check_networking(const ContainerInput& in, Container&, Findings&) {
  auto hostname = read_string(in.source, "hostname", in.where);
  if (!hostname) return std::unexpected(hostname.error());
  auto status = for_each_object(in.source, "extraHosts", in.where,
                                [&](const json::object& host, const std::string& where) -> Status {
                                  for (std::string_view key : {"hostname", "ipAddress"}) {
                                    auto value = read_required_string(host, key, where, in.label);
                                    if (!value) return std::unexpected(value.error());
                                  }
                                  return {};
                                });
  if (!status) return status;
  bool extra_hosts = present(in.source, "extraHosts") != nullptr;
  if (in.task.mode() == "awsvpc" && (*hostname || extra_hosts)) {
    return client_error("The '" + std::string(*hostname ? "hostname" : "extraHosts") +
                        "' parameter is not supported when networkMode=awsvpc. Remove it from " +
                        in.label + ".");
  }
  for (std::string_view key : {"dnsServers", "dnsSearchDomains", "entryPoint", "command"}) {
    auto list = read_strings(in.source, key, in.where);
    if (!list) return std::unexpected(list.error());
  }
  auto disable = read_bool(in.source, "disableNetworking", in.where);
  if (!disable) return std::unexpected(disable.error());
  return {};
}

// Settings that need host privileges Fargate does not grant, and plain process settings.
Status check_privileges(const ContainerInput& in, Container&, Findings& findings) {
  for (std::string_view key :
       {"privileged", "readonlyRootFilesystem", "interactive", "pseudoTerminal"}) {
    auto flag = read_bool(in.source, key, in.where);
    if (!flag) return std::unexpected(flag.error());
    if (key == "privileged" && flag->value_or(false)) {
      findings.rule_out_fargate("Fargate does not support privileged containers; " + in.label +
                                " sets 'privileged'.");
    }
  }
  auto options = read_strings(in.source, "dockerSecurityOptions", in.where);
  if (!options) return std::unexpected(options.error());
  if (!options->empty()) {
    findings.rule_out_fargate("Fargate does not support dockerSecurityOptions (" + in.label + ").");
  }
  for (std::string_view key : {"user", "workingDirectory"}) {
    auto value = read_string(in.source, key, in.where);
    if (!value) return std::unexpected(value.error());
  }
  auto labels = read_string_map(in.source, "dockerLabels", in.where);
  if (!labels) return std::unexpected(labels.error());
  if (!labels->empty()) findings.require(docker_api("1.18"));
  auto consistency = read_enum(in.source, "versionConsistency", in.where, kVersionConsistency);
  if (!consistency) return std::unexpected(consistency.error());
  return {};
}

// Namespaced sysctls; network ones clash with host networking, IPC ones with ipcMode host.
Status check_system_controls(const ContainerInput& in, Container& out, Findings&) {
  auto status =
      for_each_object(in.source, "systemControls", in.where,
                      [&](const json::object& control, const std::string& where) -> Status {
                        auto name = read_required_string(control, "namespace", where, in.label);
                        if (!name) return std::unexpected(name.error());
                        auto value = read_string(control, "value", where);
                        if (!value) return std::unexpected(value.error());
                        if (name->starts_with("net.") && in.task.mode() == "host") {
                          return client_error("Network systemControls such as " + quoted(*name) +
                                              " are not "
                                              "supported when networkMode=host (" +
                                              in.label + ").");
                        }
                        bool ipc = name->starts_with("kernel.") || name->starts_with("fs.mqueue.");
                        if (ipc && in.task.ipc_mode == "host") {
                          return client_error("IPC systemControls such as " + quoted(*name) +
                                              " are not "
                                              "supported with ipcMode 'host' (" +
                                              in.label + ").");
                        }
                        return {};
                      });
  if (!status) return status;
  if (!present(in.source, "systemControls")) out.overrides["systemControls"] = json::array();
  return {};
}

Status check_resource_requirements(const ContainerInput& in, Container& out, Findings& findings) {
  NameSet types;
  return for_each_object(
      in.source, "resourceRequirements", in.where,
      [&](const json::object& requirement, const std::string& where) -> Status {
        auto type = read_enum(requirement, "type", where, kResourceTypes);
        if (!type) return std::unexpected(type.error());
        if (!*type) return client_error("Missing 'type' in " + where + " of " + in.label + ".");
        auto value = read_required_string(requirement, "value", where, in.label);
        if (!value) return std::unexpected(value.error());
        if (!types.insert(**type).second) {
          return client_error("Resource requirement " + quoted(**type) +
                              " is set more than "
                              "once for " +
                              in.label + ".");
        }
        if (**type == "InferenceAccelerator") {
          out.accelerators.push_back(*value);
          return {};
        }
        if (!is_all_digits(*value) || *value == "0" || value->size() > 4) {
          return client_error("Invalid GPU requirement for " + in.label +
                              ": 'value' must be "
                              "a positive whole number of GPUs (got " +
                              quoted(*value) + ").");
        }
        findings.rule_out_fargate("Fargate does not support GPU resource requirements (" +
                                  in.label + ").");
        return {};
      });
}

Status check_firelens(const ContainerInput& in, Container& out, Findings& findings) {
  auto config = read_object(in.source, "firelensConfiguration", in.where);
  if (!config) return std::unexpected(config.error());
  if (*config == nullptr) return {};
  std::string where = member_path(in.where, "firelensConfiguration");
  auto type = read_enum(**config, "type", where, kFirelensTypes);
  if (!type) return std::unexpected(type.error());
  if (!*type) {
    return client_error("Missing 'type' in the firelensConfiguration of " + in.label +
                        ". Use fluentd or fluentbit.");
  }
  auto options = read_string_map(**config, "options", where);
  if (!options) return std::unexpected(options.error());
  out.is_log_router = true;
  findings.require("ecs.capability.firelens." + **type);
  return {};
}

Status check_repository_credentials(const ContainerInput& in, Container&, Findings& findings) {
  auto credentials = read_object(in.source, "repositoryCredentials", in.where);
  if (!credentials) return std::unexpected(credentials.error());
  if (*credentials == nullptr) return {};
  auto parameter = read_required_string(**credentials, "credentialsParameter",
                                        member_path(in.where, "repositoryCredentials"), in.label);
  if (!parameter) return std::unexpected(parameter.error());
  findings.require("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
  return {};
}

Status check_restart_policy(const ContainerInput& in, Container&, Findings&) {
  auto policy = read_object(in.source, "restartPolicy", in.where);
  if (!policy) return std::unexpected(policy.error());
  if (*policy == nullptr) return {};
  std::string where = member_path(in.where, "restartPolicy");
  auto enabled = read_bool(**policy, "enabled", where);
  if (!enabled) return std::unexpected(enabled.error());
  if (!*enabled) {
    return client_error("Missing 'enabled' in the restartPolicy of " + in.label + ".");
  }
  auto period = read_bounded(**policy, "restartAttemptPeriod", where,
                             "the restartPolicy of " + in.label, 60, 1800);
  if (!period) return std::unexpected(period.error());
  auto codes = read_array(**policy, "ignoredExitCodes", where);
  if (!codes) return std::unexpected(codes.error());
  if (*codes == nullptr) return {};
  if ((*codes)->size() > kMaxIgnoredExitCodes) {
    return client_error("Too many ignoredExitCodes in the restartPolicy of " + in.label +
                        ": at most 50.");
  }
  for (std::size_t code_idx = 0; code_idx < (*codes)->size(); ++code_idx) {
    if (!as_int32((**codes)[code_idx])) {
      return wrong_type(element_path(member_path(where, "ignoredExitCodes"), code_idx),
                        "an integer");
    }
  }
  return {};
}

Status check_credential_specs(const ContainerInput& in, Container&, Findings&) {
  auto specs = read_strings(in.source, "credentialSpecs", in.where);
  if (!specs) return std::unexpected(specs.error());
  if (specs->size() > kMaxCredentialSpecs) {
    return client_error("Too many credentialSpecs for " + in.label + ": at most 1.");
  }
  for (const std::string& spec : *specs) {
    if (spec.starts_with("credentialspec:") || spec.starts_with("credentialspecdomainless:")) {
      continue;
    }
    return client_error("Invalid credentialSpec " + quoted(spec) + " for " + in.label +
                        ": use credentialspec:<ARN> or credentialspecdomainless:<ARN>.");
  }
  return {};
}

// Order matters only for which error a request with several faults hears first.
constexpr ContainerCheck kContainerChecks[] = {
    check_image,           check_resources,
    check_essential,       check_port_mappings,
    check_links,           check_depends_on,
    check_timeouts,        check_health_check,
    check_environment,     check_environment_files,
    check_secrets,         check_mount_points,
    check_volumes_from,    check_linux_parameters,
    check_ulimits,         check_log_configuration,
    check_networking,      check_privileges,
    check_system_controls, check_resource_requirements,
    check_firelens,        check_repository_credentials,
    check_restart_policy,  check_credential_specs,
};

Result<Container> validate_container(const json::value& value, std::size_t index,
                                     const TaskSettings& task, const NameSet& volumes,
                                     Findings& findings) {
  std::string where = element_path("containerDefinitions", index);
  auto source = as_object(value, where);
  if (!source) return std::unexpected(source.error());
  auto name = read_container_name(**source, where);
  if (!name) return std::unexpected(name.error());
  Container container;
  container.name = *name;
  ContainerInput input{**source, where, "container " + quoted(*name), task, volumes};
  for (ContainerCheck check : kContainerChecks) {
    if (auto status = check(input, container, findings); !status) {
      return std::unexpected(status.error());
    }
  }
  container.wire = assemble(**source, container.overrides, kContainerMembers);
  return container;
}

Result<std::vector<Container>> validate_containers(const json::object& request,
                                                   const TaskSettings& task, const NameSet& volumes,
                                                   Findings& findings) {
  auto list = read_array(request, "containerDefinitions", "");
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr || (*list)->empty()) {
    return client_error("Container list cannot be empty. Add at least one container definition.");
  }
  if ((*list)->size() > kMaxContainersPerTaskDefinition) {
    return client_error(
        "Too many containers. A task definition can have at most 10 container "
        "definitions; this one has " +
        std::to_string((*list)->size()) + ".");
  }
  std::vector<Container> containers;
  NameSet names;
  for (std::size_t container_idx = 0; container_idx < (*list)->size(); ++container_idx) {
    auto container =
        validate_container((**list)[container_idx], container_idx, task, volumes, findings);
    if (!container) return std::unexpected(container.error());
    if (!names.insert(container->name).second) {
      return client_error("Container names must be unique within a Task Definition. " +
                          quoted(container->name) + " is used more than once.");
    }
    containers.push_back(std::move(*container));
  }
  return containers;
}

// ---- Rules across containers -------------------------------------------------------------------

const Container* find_container(const std::vector<Container>& containers, std::string_view name) {
  auto found = std::ranges::find(containers, name, &Container::name);
  return found == containers.end() ? nullptr : &*found;
}

using Graph = std::map<std::string, std::vector<std::string>, std::less<>>;

// Depth-first search for a cycle, reported as "a -> b -> a".
class CycleSearch {
 public:
  explicit CycleSearch(const Graph& graph) : graph_(graph) {}

  std::optional<std::string> find() {
    for (const auto& [node, edges] : graph_) {
      if (state_[node] != kUnvisited) continue;
      if (auto cycle = visit(node)) return cycle;
    }
    return std::nullopt;
  }

 private:
  enum State { kUnvisited, kOnPath, kDone };

  std::optional<std::string> visit(std::string_view node) {
    state_[node] = kOnPath;
    path_.push_back(node);
    for (const std::string& next : graph_.find(node)->second) {
      auto target = graph_.find(next);
      if (target == graph_.end()) continue;  // unknown containers are reported elsewhere
      std::string_view key = target->first;
      if (state_[key] == kOnPath) return describe(key);
      if (state_[key] == kUnvisited) {
        if (auto cycle = visit(key)) return cycle;
      }
    }
    path_.pop_back();
    state_[node] = kDone;
    return std::nullopt;
  }

  std::string describe(std::string_view start) const {
    std::string text;
    for (auto node = std::ranges::find(path_, start); node != path_.end(); ++node) {
      text += std::string(*node) + " -> ";
    }
    return text + std::string(start);
  }

  const Graph& graph_;
  std::map<std::string_view, State> state_;
  std::vector<std::string_view> path_;
};

Status check_essential_containers(const std::vector<Container>& containers) {
  if (std::ranges::any_of(containers, &Container::essential)) return {};
  return client_error(
      "Task definition doesn't have any essential container. Mark at least one "
      "container \"essential\": true (omitting 'essential' means true).");
}

Status check_dependency(const Container& container, const std::string& target_name,
                        const std::string& condition, const std::vector<Container>& containers) {
  const Container* target = find_container(containers, target_name);
  if (target == nullptr) {
    return client_error("Cannot depend on container " + quoted(target_name) +
                        " because it does not exist. Fix dependsOn of container " +
                        quoted(container.name) + ".");
  }
  if (target == &container) {
    return client_error("Container " + quoted(container.name) + " cannot depend on itself.");
  }
  if ((condition == "SUCCESS" || condition == "COMPLETE") && target->essential) {
    return client_error(
        "A dependency container with SUCCESS or COMPLETE condition cannot be an "
        "essential container. Set \"essential\": false on container " +
        quoted(target_name) + " or use START or HEALTHY.");
  }
  if (condition == "HEALTHY" && !target->has_health_check) {
    return client_error("Container " + quoted(container.name) + " waits for container " +
                        quoted(target_name) + " to be HEALTHY, but " + quoted(target_name) +
                        " has no healthCheck. Add one or use another condition.");
  }
  return {};
}

Status check_dependencies(const std::vector<Container>& containers) {
  Graph graph;
  for (const Container& container : containers) {
    auto& edges = graph[container.name];
    for (const auto& [target, condition] : container.depends_on) {
      if (auto status = check_dependency(container, target, condition, containers); !status) {
        return status;
      }
      edges.push_back(target);
    }
  }
  if (auto cycle = CycleSearch(graph).find()) {
    return client_error("Container dependsOn contains a cycle: " + *cycle +
                        ". Remove one of these dependencies.");
  }
  return {};
}

Status check_links_between(const std::vector<Container>& containers) {
  Graph graph;
  for (const Container& container : containers) {
    auto& edges = graph[container.name];
    for (const std::string& target : container.links) {
      if (target == container.name) {
        return client_error("Container " + quoted(container.name) + " cannot link to itself.");
      }
      if (find_container(containers, target) == nullptr) {
        return client_error("Container " + quoted(container.name) + " links to " + quoted(target) +
                            ", which is not a container of this task.");
      }
      edges.push_back(target);
    }
  }
  if (auto cycle = CycleSearch(graph).find()) {
    return client_error("Container links should not have a cycle: " + *cycle + ".");
  }
  return {};
}

Status check_volumes_from_between(const std::vector<Container>& containers) {
  for (const Container& container : containers) {
    for (const std::string& source : container.volumes_from) {
      if (source == container.name) {
        return client_error("Container " + quoted(container.name) +
                            " cannot mount volumes from itself (volumesFrom).");
      }
      if (find_container(containers, source) == nullptr) {
        return client_error("Invalid 'volumesFrom' setting for container " +
                            quoted(container.name) + ": sourceContainer " + quoted(source) +
                            " is not a container of this task.");
      }
    }
  }
  return {};
}

Status check_log_router(const std::vector<Container>& containers) {
  auto routers = std::ranges::count_if(containers, &Container::is_log_router);
  if (routers > 1) {
    return client_error(
        "A task definition can have only one container with "
        "firelensConfiguration (the log router).");
  }
  const auto user = std::ranges::find_if(containers, &Container::uses_log_router);
  if (routers == 0 && user != containers.end()) {
    return client_error("Container " + quoted(user->name) +
                        " uses the awsfirelens log driver, "
                        "but no container has a firelensConfiguration. Add a FireLens log "
                        "router container.");
  }
  return {};
}

// With awsvpc and host networking every container shares one network namespace, so container
// ports must differ across the task; with bridge only fixed host ports must.
Status check_task_ports(const std::vector<Container>& containers, const TaskSettings& task) {
  bool shared_namespace = task.mode() == "awsvpc" || task.mode() == "host";
  NameSet port_names;
  for (std::size_t container_idx = 0; container_idx < containers.size(); ++container_idx) {
    const Container& container = containers[container_idx];
    for (const std::string& name : container.port_names) {
      if (!port_names.insert(name).second) {
        return client_error("Port mapping names must be unique within a task definition; " +
                            quoted(name) + " is used more than once.");
      }
    }
    for (std::size_t other_idx = 0; other_idx < container_idx; ++other_idx) {
      const Container& other = containers[other_idx];
      for (const PortUse& use : container.ports) {
        for (const PortUse& earlier : other.ports) {
          if (shared_namespace && overlaps(use, earlier)) {
            return client_error("Containers " + quoted(other.name) + " and " +
                                quoted(container.name) + " both use port " + describe_port(use) +
                                ". With networkMode=" + std::string(task.mode()) +
                                " the containers of a task share one network namespace.");
          }
          if (!shared_namespace && use.host != 0 && use.host == earlier.host &&
              use.protocol == earlier.protocol) {
            return client_error(
                "Containers " + quoted(other.name) + " and " + quoted(container.name) +
                " both map host port " + str(use.host) + "/" + use.protocol +
                ". Give each its own hostPort, or omit hostPort for a dynamic one.");
          }
        }
      }
    }
  }
  return {};
}

// Container reservations must fit the task size: each memory reservation is memoryReservation
// when set, else memory.
Status check_task_resources(const std::vector<Container>& containers, const TaskSettings& task) {
  if (task.cpu) {
    int64_t cpu = 0;
    for (const Container& container : containers) cpu += container.cpu;
    if (cpu > *task.cpu) {
      return client_error(
          "The sum of all container 'cpu' values cannot be greater than the "
          "value of the task 'cpu'. The containers reserve " +
          str(cpu) + " CPU units but the task has " + str(*task.cpu) + ".");
    }
  }
  if (!task.memory) return {};
  int64_t reserved = 0;
  for (const Container& container : containers) {
    if (container.memory && *container.memory > *task.memory) {
      return client_error("The 'memory' setting for container " + quoted(container.name) +
                          " is greater than for the task (" + str(*container.memory) + " MiB > " +
                          str(*task.memory) + " MiB). Lower it or raise the task memory.");
    }
    reserved += container.memory_reservation.value_or(container.memory.value_or(0));
  }
  if (reserved > *task.memory) {
    return client_error(
        "The sum of all container 'memoryReservation' values cannot be greater "
        "than the value of the task 'memory'. The containers reserve " +
        str(reserved) +
        " MiB (memoryReservation, or memory where no "
        "reservation is set) but the task has " +
        str(*task.memory) + " MiB.");
  }
  return {};
}

Status check_containers_together(const std::vector<Container>& containers,
                                 const TaskSettings& task) {
  for (Status status : {check_essential_containers(containers), check_dependencies(containers),
                        check_links_between(containers), check_volumes_from_between(containers),
                        check_log_router(containers), check_task_ports(containers, task),
                        check_task_resources(containers, task)}) {
    if (!status) return status;
  }
  return {};
}

// ---- Other task-level members ------------------------------------------------------------------

Result<json::array> validate_placement_constraints(const json::object& request,
                                                   Findings& findings) {
  auto list = read_array(request, "placementConstraints", "");
  if (!list) return std::unexpected(list.error());
  if (*list == nullptr || (*list)->empty()) return json::array();
  if ((*list)->size() > kMaxPlacementConstraints) {
    return client_error("Too many placement constraints: a task definition can have at most 10.");
  }
  auto status = for_each_object(
      request, "placementConstraints", "",
      [&](const json::object& constraint, const std::string& where) -> Status {
        auto type = read_enum(constraint, "type", where, kPlacementConstraintTypes);
        if (!type) return std::unexpected(type.error());
        if (!*type) return client_error("Missing 'type' in " + where + ": use memberOf.");
        auto expression = read_required_string(constraint, "expression", where, "the task");
        if (!expression) return std::unexpected(expression.error());
        return {};
      });
  if (!status) return std::unexpected(status.error());
  findings.rule_out_fargate(
      "Fargate does not support task placement constraints. Remove "
      "placementConstraints.");
  return **list;
}

// The proxy properties App Mesh's CNI plugin needs: who the proxy is and which ports it serves.
Status check_proxy_properties(const json::object& proxy, const std::string& where) {
  NameSet names;
  auto status = for_each_object(
      proxy, "properties", where, [&](const json::object& pair, const std::string& item) -> Status {
        auto name = read_required_string(pair, "name", item, "the proxyConfiguration");
        if (!name) return std::unexpected(name.error());
        auto value = read_string(pair, "value", item);
        if (!value) return std::unexpected(value.error());
        if (!is_one_of(*name, kProxyProperties)) {
          return client_error("Unknown proxyConfiguration property " + quoted(*name) +
                              ". Valid names: " + join(kProxyProperties) + ".");
        }
        names.insert(*name);
        return {};
      });
  if (!status) return status;
  if (!names.contains("IgnoredUID") && !names.contains("IgnoredGID")) {
    return client_error(
        "The proxyConfiguration needs IgnoredUID or IgnoredGID so the proxy can "
        "ignore its own traffic.");
  }
  for (std::string_view required : {"AppPorts", "ProxyIngressPort", "ProxyEgressPort"}) {
    if (!names.contains(required)) {
      return client_error("The proxyConfiguration is missing the " + std::string(required) +
                          " property.");
    }
  }
  return {};
}

Status validate_proxy_configuration(const json::object& request, const TaskSettings& task,
                                    const std::vector<Container>& containers, Findings& findings) {
  auto proxy = read_object(request, "proxyConfiguration", "");
  if (!proxy) return std::unexpected(proxy.error());
  if (*proxy == nullptr) return {};
  std::string where = "proxyConfiguration";
  auto type = read_enum(**proxy, "type", where, kProxyTypes);
  if (!type) return std::unexpected(type.error());
  auto name = read_required_string(**proxy, "containerName", where, "the task");
  if (!name) return std::unexpected(name.error());
  if (find_container(containers, *name) == nullptr) {
    return client_error("The proxyConfiguration names container " + quoted(*name) +
                        ", which is not a container of this task.");
  }
  if (task.network_mode != "awsvpc") {
    return client_error("A proxyConfiguration (App Mesh) requires networkMode awsvpc.");
  }
  if (auto status = check_proxy_properties(**proxy, where); !status) return status;
  findings.require("ecs.capability.aws-appmesh");
  findings.rule_out_external(
      "EXTERNAL instances (ECS Anywhere) do not support App Mesh "
      "proxyConfiguration.");
  return {};
}

Status validate_inference_accelerators(const json::object& request,
                                       const std::vector<Container>& containers,
                                       Findings& findings) {
  NameSet devices;
  auto status = for_each_object(
      request, "inferenceAccelerators", "",
      [&](const json::object& accelerator, const std::string& where) -> Status {
        auto name = read_required_string(accelerator, "deviceName", where, "the task");
        if (!name) return std::unexpected(name.error());
        auto type = read_required_string(accelerator, "deviceType", where, "the task");
        if (!type) return std::unexpected(type.error());
        if (!devices.insert(*name).second) {
          return client_error("Inference accelerator device names must be unique; " +
                              quoted(*name) + " is used more than once.");
        }
        return {};
      });
  if (!status) return status;
  for (const Container& container : containers) {
    for (const std::string& device : container.accelerators) {
      if (devices.contains(device)) continue;
      return client_error("Container " + quoted(container.name) +
                          " requires inference "
                          "accelerator " +
                          quoted(device) +
                          ", which is not in the task's "
                          "inferenceAccelerators.");
    }
  }
  if (devices.empty()) return {};
  findings.rule_out_fargate("Fargate does not support inference accelerators.");
  findings.rule_out_external(
      "EXTERNAL instances (ECS Anywhere) do not support inference "
      "accelerators.");
  return {};
}

Status validate_ephemeral_storage(const json::object& request, const TaskSettings& task) {
  auto storage = read_object(request, "ephemeralStorage", "");
  if (!storage) return std::unexpected(storage.error());
  if (*storage == nullptr) return {};
  auto size = read_bounded(**storage, "sizeInGiB", "ephemeralStorage", "ephemeralStorage",
                           kMinEphemeralStorageGiB, kMaxEphemeralStorageGiB);
  if (!size) return std::unexpected(size.error());
  if (!*size) {
    return client_error("Missing 'sizeInGiB' in ephemeralStorage: give a size from 21 to 200 GiB.");
  }
  if (!task.required.empty() && !task.requires_type("FARGATE")) {
    return client_error(
        "ephemeralStorage only applies to tasks on Fargate. Add FARGATE to "
        "requiresCompatibilities or remove ephemeralStorage.");
  }
  return {};
}

Status validate_task_options(const json::object& request, const TaskSettings& task,
                             const std::vector<Container>& containers, Findings& findings) {
  if (auto status = validate_proxy_configuration(request, task, containers, findings); !status) {
    return status;
  }
  if (auto status = validate_inference_accelerators(request, containers, findings); !status) {
    return status;
  }
  if (auto status = validate_ephemeral_storage(request, task); !status) return status;
  auto fault_injection = read_bool(request, "enableFaultInjection", "");
  if (!fault_injection) return std::unexpected(fault_injection.error());
  if (task.has_task_role) findings.require("com.amazonaws.ecs.capability.task-iam-role");
  return {};
}

// ---- Compatibilities and the stored definition
// ---------------------------------------------------

Status enforce_requested_compatibilities(const TaskSettings& task, const Findings& findings) {
  if (task.requires_type("FARGATE") && findings.not_fargate) {
    return client_error(*findings.not_fargate);
  }
  if (task.requires_type("EXTERNAL") && findings.not_external) {
    return client_error(*findings.not_external);
  }
  if (task.requires_type("MANAGED_INSTANCES") && findings.not_managed_instances) {
    return client_error(*findings.not_managed_instances);
  }
  return {};
}

// EC2 can run any valid definition. FARGATE and EXTERNAL are added whenever the definition
// suits them, as ECS does; MANAGED_INSTANCES only when asked for, since it needs a capacity
// provider set up for it. The order follows DescribeTaskDefinition.
json::array compatibilities(const TaskSettings& task, const Findings& findings) {
  json::array list;
  if (!findings.not_external) list.emplace_back("EXTERNAL");
  list.emplace_back("EC2");
  if (task.requires_type("MANAGED_INSTANCES")) list.emplace_back("MANAGED_INSTANCES");
  if (!findings.not_fargate) list.emplace_back("FARGATE");
  return list;
}

json::object assemble_task_definition(const json::object& request, const TaskSettings& task,
                                      Volumes volumes, std::vector<Container> containers,
                                      json::array constraints, const Findings& findings) {
  json::object overrides;
  json::array wire_containers;
  for (Container& container : containers) wire_containers.push_back(std::move(container.wire));
  overrides["containerDefinitions"] = std::move(wire_containers);
  overrides["volumes"] = std::move(volumes.wire);
  json::array attributes;
  for (const std::string& name : findings.attributes) {
    attributes.push_back(json::object{{"name", name}});
  }
  overrides["requiresAttributes"] = std::move(attributes);
  overrides["placementConstraints"] = std::move(constraints);
  overrides["compatibilities"] = compatibilities(task, findings);
  if (task.cpu) overrides["cpu"] = std::to_string(*task.cpu);
  if (task.memory) overrides["memory"] = std::to_string(*task.memory);
  return assemble(request, overrides, kTaskMembers);
}

}  // namespace

Result<json::object> validate_task_definition(const json::object& request) {
  if (auto status = check_size(request); !status) return std::unexpected(status.error());
  auto task = read_task_settings(request);
  if (!task) return std::unexpected(task.error());
  Findings findings;
  if (auto status = judge_task_level(*task, findings); !status) {
    return std::unexpected(status.error());
  }
  auto volumes = validate_volumes(request, findings);
  if (!volumes) return std::unexpected(volumes.error());
  auto containers = validate_containers(request, *task, volumes->names, findings);
  if (!containers) return std::unexpected(containers.error());
  if (auto status = check_containers_together(*containers, *task); !status) {
    return std::unexpected(status.error());
  }
  auto constraints = validate_placement_constraints(request, findings);
  if (!constraints) return std::unexpected(constraints.error());
  if (auto status = validate_task_options(request, *task, *containers, findings); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = enforce_requested_compatibilities(*task, findings); !status) {
    return std::unexpected(status.error());
  }
  return assemble_task_definition(request, *task, std::move(*volumes), std::move(*containers),
                                  std::move(*constraints), findings);
}

}  // namespace wharf::ecs
