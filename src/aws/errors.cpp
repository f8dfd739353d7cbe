// Error code → AWS exception mapping.
#include "aws/errors.hpp"

#include <utility>

namespace wharf::aws {

namespace {

// EC2's codes (its "Common client errors"); an error whose exact code matters to callers
// ("InvalidGroup.NotFound") carries it in Error::wire_type instead. EC2 answers every client
// fault with 400.
WireError ec2_wire(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMissingParameter:
      return {"MissingParameter", 400};
    case ErrorCode::kSerialization:
      return {"MalformedQueryString", 400};
    case ErrorCode::kUnknownOperation:
      return {"InvalidAction", 400};
    case ErrorCode::kLimitExceeded:
      return {"ResourceLimitExceeded", 400};
    case ErrorCode::kResourceInUse:
      return {"DependencyViolation", 400};
    case ErrorCode::kAccessDenied:
      return {"UnauthorizedOperation", 400};
    case ErrorCode::kUnrecognizedClient:
    case ErrorCode::kInvalidSignature:
      return {"AuthFailure", 400};
    case ErrorCode::kIncompleteSignature:
      return {"IncompleteSignature", 400};
    case ErrorCode::kMissingAuthentication:
      return {"MissingAuthenticationToken", 400};
    case ErrorCode::kPayloadTooLarge:
      return {"RequestEntityTooLarge", 400};
    case ErrorCode::kUnsupportedFeature:
      return {"UnsupportedOperation", 400};
    case ErrorCode::kValidation:
      return {"ValidationError", 400};
    case ErrorCode::kInternal:
      return {"InternalError", 500};
    default:  // kInvalidParameter, kClient, kNotFound, and the ECS and ECR codes
      return {"InvalidParameterValue", 400};
  }
}

// The JSON protocols' (ECS, ECR) names and statuses.
WireError json_wire(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidParameter:
    case ErrorCode::kMissingParameter:
      return {"InvalidParameterException", 400};
    case ErrorCode::kClient:
      return {"ClientException", 400};
    case ErrorCode::kSerialization:
      return {"SerializationException", 400};
    case ErrorCode::kUnknownOperation:
      return {"UnknownOperationException", 400};
    case ErrorCode::kNotFound:
      return {"ResourceNotFoundException", 400};
    case ErrorCode::kClusterNotFound:
      return {"ClusterNotFoundException", 400};
    case ErrorCode::kLimitExceeded:
      return {"LimitExceededException", 400};
    case ErrorCode::kResourceInUse:
      return {"ResourceInUseException", 400};
    case ErrorCode::kClusterContainsServices:
      return {"ClusterContainsServicesException", 400};
    case ErrorCode::kClusterContainsTasks:
      return {"ClusterContainsTasksException", 400};
    case ErrorCode::kClusterContainsContainerInstances:
      return {"ClusterContainsContainerInstancesException", 400};
    case ErrorCode::kAttributeLimitExceeded:
      return {"AttributeLimitExceededException", 400};
    case ErrorCode::kTargetNotFound:
      return {"TargetNotFoundException", 400};
    case ErrorCode::kAccessDenied:
      return {"AccessDeniedException", 400};
    case ErrorCode::kUnrecognizedClient:
      return {"UnrecognizedClientException", 403};
    case ErrorCode::kInvalidSignature:
      return {"InvalidSignatureException", 403};
    case ErrorCode::kIncompleteSignature:
      return {"IncompleteSignatureException", 403};
    case ErrorCode::kMissingAuthentication:
      return {"MissingAuthenticationTokenException", 403};
    case ErrorCode::kPayloadTooLarge:
      return {"RequestEntityTooLargeException", 413};
    case ErrorCode::kUnsupportedFeature:
      return {"UnsupportedFeatureException", 400};
    case ErrorCode::kRepositoryNotFound:
      return {"RepositoryNotFoundException", 400};
    case ErrorCode::kRepositoryAlreadyExists:
      return {"RepositoryAlreadyExistsException", 400};
    case ErrorCode::kRepositoryNotEmpty:
      return {"RepositoryNotEmptyException", 400};
    case ErrorCode::kRepositoryPolicyNotFound:
      return {"RepositoryPolicyNotFoundException", 400};
    case ErrorCode::kImageNotFound:
      return {"ImageNotFoundException", 400};
    case ErrorCode::kImageAlreadyExists:
      return {"ImageAlreadyExistsException", 400};
    case ErrorCode::kImageTagAlreadyExists:
      return {"ImageTagAlreadyExistsException", 400};
    case ErrorCode::kImageDigestDoesNotMatch:
      return {"ImageDigestDoesNotMatchException", 400};
    case ErrorCode::kLayersNotFound:
      return {"LayersNotFoundException", 400};
    case ErrorCode::kLayerAlreadyExists:
      return {"LayerAlreadyExistsException", 400};
    case ErrorCode::kInvalidLayer:
      return {"InvalidLayerException", 400};
    case ErrorCode::kInvalidLayerPart:
      return {"InvalidLayerPartException", 400};
    case ErrorCode::kLayerPartTooSmall:
      return {"LayerPartTooSmallException", 400};
    case ErrorCode::kEmptyUpload:
      return {"EmptyUploadException", 400};
    case ErrorCode::kUploadNotFound:
      return {"UploadNotFoundException", 400};
    case ErrorCode::kLifecyclePolicyNotFound:
      return {"LifecyclePolicyNotFoundException", 400};
    case ErrorCode::kLifecyclePolicyPreviewNotFound:
      return {"LifecyclePolicyPreviewNotFoundException", 400};
    case ErrorCode::kLifecyclePolicyPreviewInProgress:
      return {"LifecyclePolicyPreviewInProgressException", 400};
    case ErrorCode::kScanNotFound:
      return {"ScanNotFoundException", 400};
    case ErrorCode::kInvalidTagParameter:
      return {"InvalidTagParameterException", 400};
    case ErrorCode::kTooManyTags:
      return {"TooManyTagsException", 400};
    case ErrorCode::kUnsupportedImageType:
      return {"UnsupportedImageTypeException", 400};
    case ErrorCode::kReferencedImagesNotFound:
      return {"ReferencedImagesNotFoundException", 400};
    case ErrorCode::kValidation:
      return {"ValidationException", 400};
    case ErrorCode::kInternal:
      return {"ServerException", 500};
  }
  return {"ServerException", 500};
}

WireError ssm_wire(ErrorCode code, WireError json) {
  switch (code) {
    case ErrorCode::kInvalidParameter:
    case ErrorCode::kMissingParameter:
    case ErrorCode::kValidation:
      return {"ValidationException", 400};
    case ErrorCode::kInternal:
      return {"InternalServerError", 500};
    default:
      return json;
  }
}

// S3's REST-XML codes. Its specific codes travel in Error::wire_type; their statuses are here.
int s3_status(std::string_view code) {
  static constexpr std::pair<std::string_view, int> kStatuses[] = {
      {"NoSuchBucket", 404},        {"NoSuchKey", 404},
      {"NoSuchUpload", 404},        {"BucketAlreadyOwnedByYou", 409},
      {"BucketAlreadyExists", 409}, {"BucketNotEmpty", 409},
      {"AccessDenied", 403},        {"SignatureDoesNotMatch", 403},
      {"InvalidAccessKeyId", 403},  {"RequestTimeTooSkewed", 403},
      {"InvalidRange", 416},        {"MethodNotAllowed", 405},
      {"PreconditionFailed", 412},  {"NotImplemented", 501},
      {"InternalError", 500}};
  for (const auto& [name, status] : kStatuses) {
    if (name == code) return status;
  }
  return 400;
}

WireError s3_wire(const Error& error) {
  if (!error.wire_type.empty()) return {error.wire_type, s3_status(error.wire_type)};
  switch (error.code) {
    case ErrorCode::kAccessDenied:
    case ErrorCode::kMissingAuthentication:
      return {"AccessDenied", 403};
    case ErrorCode::kUnrecognizedClient:
      return {"InvalidAccessKeyId", 403};
    case ErrorCode::kInvalidSignature:
      return {"SignatureDoesNotMatch", 403};
    case ErrorCode::kIncompleteSignature:
      return {"AuthorizationHeaderMalformed", 400};
    case ErrorCode::kSerialization:
      return {"MalformedXML", 400};
    case ErrorCode::kUnknownOperation:
      return {"NotImplemented", 501};
    case ErrorCode::kPayloadTooLarge:
      return {"EntityTooLarge", 400};
    case ErrorCode::kInternal:
      return {"InternalError", 500};
    default:
      return {"InvalidArgument", 400};
  }
}

}  // namespace

WireError to_wire(const Error& error, std::string_view service) {
  if (service == "s3") return s3_wire(error);
  WireError wire = service == "ec2" ? ec2_wire(error.code) : json_wire(error.code);
  // Secrets Manager names its server fault differently from ECS and ECR.
  if (error.code == ErrorCode::kInternal && service == "secretsmanager") {
    wire.type = "InternalServiceError";
  }
  // SSM reports every bad or missing member as a ValidationException, and its fault as
  // InternalServerError.
  if (service == "ssm") wire = ssm_wire(error.code, wire);
  if (!error.wire_type.empty()) wire.type = error.wire_type;
  return wire;
}

std::optional<ErrorCode> error_code_for(std::string_view type, std::string_view service) {
  // Every code up to kInternal, the last; the first whose wire name matches wins.
  for (int code = 0; code <= static_cast<int>(ErrorCode::kInternal); ++code) {
    auto candidate = static_cast<ErrorCode>(code);
    if (to_wire(Error{candidate, ""}, service).type == type) return candidate;
  }
  return std::nullopt;
}

}  // namespace wharf::aws
