// Errors as values: a code that says what kind of fault it is, and a message with context.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace wharf {

// What went wrong, independent of any wire protocol. src/aws/ maps each code to an AWS
// exception name and HTTP status; nothing else does.
enum class ErrorCode {
  kInvalidParameter,  // a request member has a bad value
  kClient,            // the request is wrong in a way AWS reports as ClientException
  kMissingParameter,  // a required member is absent
  kSerialization,     // the body is not the JSON the operation expects
  kUnknownOperation,  // no such operation
  kNotFound,          // a named resource does not exist
  kClusterNotFound,   // the named cluster does not exist
  kLimitExceeded,     // a quota would be exceeded
  kResourceInUse,     // the resource is busy
  kClusterContainsServices,
  kClusterContainsTasks,
  kClusterContainsContainerInstances,
  kAttributeLimitExceeded,  // more custom attributes than a resource may have
  kTargetNotFound,          // the resource an attribute names does not exist
  kAccessDenied,
  kUnrecognizedClient,     // unknown access key
  kInvalidSignature,       // the signature does not match, or has expired
  kIncompleteSignature,    // the Authorization header is malformed
  kMissingAuthentication,  // no Authorization header at all
  kPayloadTooLarge,
  kUnsupportedFeature,
  // ECR
  kRepositoryNotFound,
  kRepositoryAlreadyExists,
  kRepositoryNotEmpty,
  kRepositoryPolicyNotFound,
  kImageNotFound,
  kImageAlreadyExists,
  kImageTagAlreadyExists,
  kImageDigestDoesNotMatch,
  kLayersNotFound,
  kLayerAlreadyExists,
  kInvalidLayer,
  kInvalidLayerPart,
  kLayerPartTooSmall,
  kEmptyUpload,
  kUploadNotFound,
  kLifecyclePolicyNotFound,
  kLifecyclePolicyPreviewNotFound,
  kLifecyclePolicyPreviewInProgress,
  kScanNotFound,
  kInvalidTagParameter,
  kTooManyTags,
  kUnsupportedImageType,
  kReferencedImagesNotFound,
  kValidation,
  kInternal,  // a real server fault (storage failed, a bug)
};

struct Error {
  Error() = default;
  Error(ErrorCode code, std::string message, std::string wire_type = {})
      : code(code), message(std::move(message)), wire_type(std::move(wire_type)) {}

  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // When set, the exact error code to put on the wire instead of the one `code` maps to: EC2's
  // codes ("InvalidGroup.NotFound") are too many and too specific for ErrorCode.
  std::string wire_type;

  // Prefixes what the caller was doing: "loading clusters: " + message.
  Error context(std::string_view doing) const& {
    return Error{code, std::string(doing) + ": " + message, wire_type};
  }
  Error context(std::string_view doing) && {
    message.insert(0, std::string(doing) + ": ");
    return std::move(*this);
  }
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

// An error with its exact wire code, e.g. fail_as(ErrorCode::kNotFound, "InvalidGroup.NotFound",
// "The security group 'sg-1' does not exist").
inline std::unexpected<Error> fail_as(ErrorCode code, std::string wire_type, std::string message) {
  return std::unexpected(Error{code, std::move(message), std::move(wire_type)});
}

inline std::unexpected<Error> invalid(std::string message) {
  return fail(ErrorCode::kInvalidParameter, std::move(message));
}

inline std::unexpected<Error> client_error(std::string message) {
  return fail(ErrorCode::kClient, std::move(message));
}

// A failed system call, read from errno: "<doing>: <what errno says>", kInternal.
inline Error errno_error(std::string_view doing) {
  int saved = errno;
  return Error{ErrorCode::kInternal,
               std::string(doing) + ": " + std::generic_category().message(saved)};
}

}  // namespace wharf
