// What the S3 API keeps about buckets, objects and multipart uploads, and how each is stored
// (store kinds s3.bucket, s3.object, s3.upload, s3.part; values are JSON).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::s3 {

inline constexpr const char* kBucketKind = "s3.bucket";  // key: bucket name
inline constexpr const char* kObjectKind = "s3.object";  // key: bucket "/" object key
inline constexpr const char* kUploadKind = "s3.upload";  // key: upload id
inline constexpr const char* kPartKind = "s3.part";      // key: upload id "/" 5-digit number

// Headers stored with an object and sent back on reads ("Content-Type", "Cache-Control", ...),
// and user metadata by lower-case name without "x-amz-meta-".
using HeaderMap = std::map<std::string, std::string>;

struct BucketRecord {
  std::string name;
  std::string region;
  TimePoint created;
};

struct ObjectRecord {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without quotes: MD5 hex, or "hex-N" for a multipart object
  TimePoint last_modified;
  HeaderMap headers;
  HeaderMap metadata;
  std::string file;  // the body's file name under the data directory's s3/data/
};

struct UploadRecord {
  std::string id;
  std::string bucket;
  std::string key;
  TimePoint initiated;
  HeaderMap headers;
  HeaderMap metadata;
};

struct PartRecord {
  int number = 0;
  uint64_t size = 0;
  std::string etag;  // MD5 hex, without quotes
  TimePoint last_modified;
  std::string file;
};

std::string object_store_key(std::string_view bucket, std::string_view key);
std::string part_store_key(std::string_view upload_id, int number);

std::string encode(const BucketRecord& bucket);
std::string encode(const ObjectRecord& object);
std::string encode(const UploadRecord& upload);
std::string encode(const PartRecord& part);
Result<BucketRecord> decode_bucket(std::string_view value);
// The object's key is the store key after "bucket/".
Result<ObjectRecord> decode_object(std::string_view value);
Result<UploadRecord> decode_upload(std::string_view value);
Result<PartRecord> decode_part(std::string_view value);

}  // namespace wharf::s3
