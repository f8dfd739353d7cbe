// select_parts and multipart_etag.
#include "s3/multipart.hpp"

#include <openssl/evp.h>

#include "common/crypto.hpp"
#include "common/text.hpp"

namespace wharf::s3 {

namespace {

std::string unquoted(std::string_view etag) {
  etag = trim(etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return lower(etag);
}

std::string hex_to_bytes(std::string_view hex) {
  std::string out;
  for (std::size_t char_idx = 0; char_idx + 1 < hex.size(); char_idx += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(char_idx, 2)), nullptr, 16));
  }
  return out;
}

}  // namespace

Result<std::vector<const PartRecord*>> select_parts(const std::vector<RequestedPart>& requested,
                                                    const std::map<int, PartRecord>& uploaded) {
  if (requested.empty()) {
    return fail_as(ErrorCode::kSerialization, "MalformedXML",
                   "The XML you provided was not well-formed or did not validate against our "
                   "published schema: CompleteMultipartUpload names no parts.");
  }
  std::vector<const PartRecord*> out;
  for (std::size_t part_idx = 0; part_idx < requested.size(); ++part_idx) {
    const auto& wanted = requested[part_idx];
    if (part_idx > 0 && wanted.number <= requested[part_idx - 1].number) {
      return fail_as(ErrorCode::kInvalidParameter, "InvalidPartOrder",
                     "The list of parts was not in ascending order. Parts must be ordered by part "
                     "number.");
    }
    auto found = uploaded.find(wanted.number);
    if (found == uploaded.end() || found->second.etag != unquoted(wanted.etag)) {
      return fail_as(ErrorCode::kInvalidParameter, "InvalidPart",
                     "One or more of the specified parts could not be found. The part may not "
                     "have been uploaded, or the specified entity tag may not match the part's "
                     "entity tag (part " +
                         std::to_string(wanted.number) + ").");
    }
    out.push_back(&found->second);
  }
  for (std::size_t part_idx = 0; part_idx + 1 < out.size(); ++part_idx) {
    if (out[part_idx]->size < kMinPartSize) {
      return fail_as(ErrorCode::kInvalidParameter, "EntityTooSmall",
                     "Your proposed upload is smaller than the minimum allowed size: part " +
                         std::to_string(out[part_idx]->number) + " has " +
                         std::to_string(out[part_idx]->size) +
                         " bytes, and every part but the "
                         "last needs at least 5 MiB.");
    }
  }
  return out;
}

std::string multipart_etag(const std::vector<const PartRecord*>& parts) {
  std::string digests;
  for (const auto* part : parts) digests += hex_to_bytes(part->etag);
  unsigned char md5[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(digests.data(), digests.size(), md5, &length, EVP_md5(), nullptr);
  return to_hex(std::string_view(reinterpret_cast<char*>(md5), length)) + "-" +
         std::to_string(parts.size());
}

}  // namespace wharf::s3
