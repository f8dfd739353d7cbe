// Registry answers as errors: "HTTP 404: MANIFEST_UNKNOWN: manifest unknown", with the
// registry's {"errors":[{code,message}]} and an ErrorCode that says what kind of failure it is.
#pragma once

#include "common/error.hpp"
#include "oci/http_transport.hpp"

namespace wharf::oci {

// kAccessDenied (401/403), kLimitExceeded (429), kRepositoryNotFound (NAME_UNKNOWN),
// kImageNotFound (MANIFEST_UNKNOWN), kLayersNotFound (BLOB_UNKNOWN), kImageDigestDoesNotMatch
// (DIGEST_INVALID), kNotFound (other 404s), kInvalidParameter (other 4xx), kInternal (5xx).
Error response_error(const HttpResponse& response);

}  // namespace wharf::oci
