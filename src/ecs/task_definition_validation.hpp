// Pure validation and normalisation of RegisterTaskDefinition requests, following the ECS rules.
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>

#include "common/error.hpp"

namespace wharf::ecs {

// The "task definition size" quota: the JSON of one definition (tags excluded).
inline constexpr std::size_t kMaxTaskDefinitionBytes = 64 * 1024;
// The "containers per task definition" quota.
inline constexpr std::size_t kMaxContainersPerTaskDefinition = 10;

// Validates a RegisterTaskDefinition request body and returns the task definition as ECS stores
// and describes it, minus what the caller assigns (taskDefinitionArn, revision, status,
// registeredAt, registeredBy) and minus `tags` (handled elsewhere).
//
// Normalisation matches DescribeTaskDefinition: task `cpu`/`memory` become unit and MiB strings
// ("1 vCPU" -> "1024", "2 GB" -> "2048"); containers get `cpu: 0`, `essential: true` and empty
// `portMappings`, `environment`, `mountPoints`, `volumesFrom` and `systemControls` when absent;
// port mappings get `protocol` and `hostPort`; health checks get interval, timeout and retries;
// `volumes` and `placementConstraints` default to []; `compatibilities` and `requiresAttributes`
// are computed. Members outside the TaskDefinition and ContainerDefinition shapes are dropped.
//
// Errors are ErrorCode::kClient where ECS answers ClientException and kInvalidParameter for wrong
// JSON types and values outside the model's enums. Never throws.
Result<boost::json::object> validate_task_definition(const boost::json::object& request);

}  // namespace wharf::ecs
