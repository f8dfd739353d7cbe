// Embeds src/aws/models/*.json with the assembler's .incbin, so that the build needs neither
// botocore nor a code generator. src/aws/CMakeLists.txt defines WHARF_AWS_MODELS_DIR and makes
// this object depend on the JSON files, which the compiler's own dependency scan cannot see.
#include "aws/embedded_models.hpp"

#ifndef WHARF_AWS_MODELS_DIR
#error "WHARF_AWS_MODELS_DIR must name src/aws/models (set in src/aws/CMakeLists.txt)"
#endif

// Defines <symbol>_begin and <symbol>_end around the bytes of models/<file>.
#define WHARF_EMBED_FILE(symbol, file)           \
  asm(".pushsection .rodata\n"                   \
      ".global " #symbol                         \
      "_begin\n"                                 \
      ".hidden " #symbol "_begin\n" #symbol      \
      "_begin:\n"                                \
      ".incbin \"" WHARF_AWS_MODELS_DIR "/" file \
      "\"\n"                                     \
      ".global " #symbol                         \
      "_end\n"                                   \
      ".hidden " #symbol "_end\n" #symbol        \
      "_end:\n"                                  \
      ".popsection\n")

WHARF_EMBED_FILE(wharf_aws_ecs_model, "ecs.json");
WHARF_EMBED_FILE(wharf_aws_ecr_model, "ecr.json");
WHARF_EMBED_FILE(wharf_aws_ec2_model, "ec2.json");
WHARF_EMBED_FILE(wharf_aws_secretsmanager_model, "secretsmanager.json");
WHARF_EMBED_FILE(wharf_aws_ssm_model, "ssm.json");

extern "C" {
extern const char wharf_aws_ecs_model_begin[];
extern const char wharf_aws_ecs_model_end[];
extern const char wharf_aws_ecr_model_begin[];
extern const char wharf_aws_ecr_model_end[];
extern const char wharf_aws_ec2_model_begin[];
extern const char wharf_aws_ec2_model_end[];
extern const char wharf_aws_secretsmanager_model_begin[];
extern const char wharf_aws_secretsmanager_model_end[];
extern const char wharf_aws_ssm_model_begin[];
extern const char wharf_aws_ssm_model_end[];
}

namespace wharf::aws {

std::string_view embedded_ecs_model() {
  return {wharf_aws_ecs_model_begin, wharf_aws_ecs_model_end};
}

std::string_view embedded_ecr_model() {
  return {wharf_aws_ecr_model_begin, wharf_aws_ecr_model_end};
}

std::string_view embedded_ec2_model() {
  return {wharf_aws_ec2_model_begin, wharf_aws_ec2_model_end};
}

std::string_view embedded_secretsmanager_model() {
  return {wharf_aws_secretsmanager_model_begin, wharf_aws_secretsmanager_model_end};
}

std::string_view embedded_ssm_model() {
  return {wharf_aws_ssm_model_begin, wharf_aws_ssm_model_end};
}

}  // namespace wharf::aws
