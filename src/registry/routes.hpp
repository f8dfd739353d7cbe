// Pure parsing for the /v2/ API: which endpoint a path names, and the byte ranges of Range and
// Content-Range headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::registry {

enum class Endpoint {
  kBase,         // /v2/
  kToken,        // /v2/token
  kCatalog,      // /v2/_catalog
  kManifest,     // /v2/<name>/manifests/<reference>
  kBlob,         // /v2/<name>/blobs/<digest>
  kUploadStart,  // /v2/<name>/blobs/uploads/
  kUpload,       // /v2/<name>/blobs/uploads/<id>
  kTags,         // /v2/<name>/tags/list
  kReferrers,    // /v2/<name>/referrers/<digest>
  kUnknown,
};

struct Route {
  Endpoint endpoint = Endpoint::kUnknown;
  std::string name;       // still encoded as it came; validate before use
  std::string reference;  // tag, digest or upload id (percent-decoded)
};

// Parses the path part of a request target (no query). Names may contain '/', so the endpoint
// is read from the end: the last segment is the reference and the one or two before it say
// what kind. The name is everything before; it is not validated here.
Route parse_route(std::string_view path);

// An inclusive byte range.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

// A Range request header ("bytes=0-99", "bytes=100-", "bytes=-50") against a blob of `size`
// bytes. nullopt: serve the whole blob (no header, several ranges, or a malformed one, which
// RFC 9110 says to ignore). kInvalidParameter: the range cannot be satisfied (answer 416).
Result<std::optional<ByteRange>> parse_range(std::string_view header, uint64_t size);

// An upload chunk's Content-Range: "<first>-<last>" as the distribution spec writes it, also
// with a "bytes " or "bytes=" prefix and a "/<total>" suffix. kInvalidParameter when malformed.
Result<ByteRange> parse_content_range(std::string_view header);

// Decodes %XX escapes; nullopt when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace wharf::registry
