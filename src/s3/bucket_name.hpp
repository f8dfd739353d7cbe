// S3's rules for general purpose bucket names, as a pure check.
#pragma once

#include <string_view>

#include "common/error.hpp"

namespace wharf::s3 {

// Ok, or an InvalidBucketName error whose message says which rule `name` breaks.
Status check_bucket_name(std::string_view name);

}  // namespace wharf::s3
