// The rules of CompleteMultipartUpload: which parts make the object, and its ETag.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "s3/records.hpp"

namespace wharf::s3 {

inline constexpr uint64_t kMinPartSize = 5 * 1024 * 1024;  // every part but the last
inline constexpr int kMaxPartNumber = 10000;

// A part as the CompleteMultipartUpload body names it.
struct RequestedPart {
  int number = 0;
  std::string etag;  // quotes allowed
};

// The uploaded parts the request names, in order. InvalidPartOrder when numbers do not ascend,
// InvalidPart when one was not uploaded or its ETag differs, EntityTooSmall when a part but
// the last is under kMinPartSize, MalformedXML when none are named.
Result<std::vector<const PartRecord*>> select_parts(const std::vector<RequestedPart>& requested,
                                                    const std::map<int, PartRecord>& uploaded);

// "<MD5 of the parts' binary MD5s>-<count>" (without quotes).
std::string multipart_etag(const std::vector<const PartRecord*>& parts);

}  // namespace wharf::s3
