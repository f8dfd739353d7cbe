// The stripped service models in src/aws/models/, linked into the binary as read-only data.
#pragma once

#include <string_view>

namespace wharf::aws {

// The text of src/aws/models/ecs.json, ecr.json, ec2.json, secretsmanager.json and ssm.json as
// they were when this binary was built.
std::string_view embedded_ecs_model();
std::string_view embedded_ecr_model();
std::string_view embedded_ec2_model();
std::string_view embedded_secretsmanager_model();
std::string_view embedded_ssm_model();

}  // namespace wharf::aws
