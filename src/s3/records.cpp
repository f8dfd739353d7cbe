// JSON codecs for the S3 store records.
#include "s3/records.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>

#include "common/json.hpp"

namespace wharf::s3 {

namespace bj = boost::json;

namespace {

int64_t to_millis(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

TimePoint from_millis(int64_t millis) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(millis)));
}

bj::object to_json(const HeaderMap& headers) {
  bj::object out;
  for (const auto& [name, value] : headers) out[name] = value;
  return out;
}

HeaderMap header_map(const bj::object& object, std::string_view member) {
  HeaderMap out;
  const auto* map = json::get_object(object, member);
  if (map == nullptr) return out;
  for (const auto& [name, value] : *map) {
    if (value.is_string()) out[std::string(name)] = std::string(value.as_string());
  }
  return out;
}

Result<bj::object> parse_object(std::string_view value, std::string_view what) {
  boost::system::error_code ec;
  auto parsed = bj::parse(value, ec);
  if (ec || !parsed.is_object()) {
    return fail(ErrorCode::kInternal, "a stored " + std::string(what) + " record is not JSON");
  }
  return std::move(parsed.as_object());
}

}  // namespace

std::string object_store_key(std::string_view bucket, std::string_view key) {
  return std::string(bucket) + "/" + std::string(key);
}

std::string part_store_key(std::string_view upload_id, int number) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%05d", number);
  return std::string(upload_id) + "/" + digits;
}

std::string encode(const BucketRecord& bucket) {
  return bj::serialize(bj::object{
      {"name", bucket.name}, {"region", bucket.region}, {"created", to_millis(bucket.created)}});
}

std::string encode(const ObjectRecord& object) {
  return bj::serialize(bj::object{{"key", object.key},
                                  {"size", object.size},
                                  {"etag", object.etag},
                                  {"lastModified", to_millis(object.last_modified)},
                                  {"headers", to_json(object.headers)},
                                  {"metadata", to_json(object.metadata)},
                                  {"file", object.file}});
}

std::string encode(const UploadRecord& upload) {
  return bj::serialize(bj::object{{"id", upload.id},
                                  {"bucket", upload.bucket},
                                  {"key", upload.key},
                                  {"initiated", to_millis(upload.initiated)},
                                  {"headers", to_json(upload.headers)},
                                  {"metadata", to_json(upload.metadata)}});
}

std::string encode(const PartRecord& part) {
  return bj::serialize(bj::object{{"number", part.number},
                                  {"size", part.size},
                                  {"etag", part.etag},
                                  {"lastModified", to_millis(part.last_modified)},
                                  {"file", part.file}});
}

Result<BucketRecord> decode_bucket(std::string_view value) {
  auto object = parse_object(value, "bucket");
  if (!object) return std::unexpected(object.error());
  return BucketRecord{json::string_or(*object, "name", ""), json::string_or(*object, "region", ""),
                      from_millis(json::get_int(*object, "created").value_or(0))};
}

Result<ObjectRecord> decode_object(std::string_view value) {
  auto object = parse_object(value, "object");
  if (!object) return std::unexpected(object.error());
  ObjectRecord out;
  out.key = json::string_or(*object, "key", "");
  out.size = static_cast<uint64_t>(json::get_int(*object, "size").value_or(0));
  out.etag = json::string_or(*object, "etag", "");
  out.last_modified = from_millis(json::get_int(*object, "lastModified").value_or(0));
  out.headers = header_map(*object, "headers");
  out.metadata = header_map(*object, "metadata");
  out.file = json::string_or(*object, "file", "");
  if (out.file.empty()) return fail(ErrorCode::kInternal, "a stored object record has no file");
  return out;
}

Result<UploadRecord> decode_upload(std::string_view value) {
  auto object = parse_object(value, "upload");
  if (!object) return std::unexpected(object.error());
  UploadRecord out;
  out.id = json::string_or(*object, "id", "");
  out.bucket = json::string_or(*object, "bucket", "");
  out.key = json::string_or(*object, "key", "");
  out.initiated = from_millis(json::get_int(*object, "initiated").value_or(0));
  out.headers = header_map(*object, "headers");
  out.metadata = header_map(*object, "metadata");
  return out;
}

Result<PartRecord> decode_part(std::string_view value) {
  auto object = parse_object(value, "part");
  if (!object) return std::unexpected(object.error());
  PartRecord out;
  out.number = static_cast<int>(json::get_int(*object, "number").value_or(0));
  out.size = static_cast<uint64_t>(json::get_int(*object, "size").value_or(0));
  out.etag = json::string_or(*object, "etag", "");
  out.last_modified = from_millis(json::get_int(*object, "lastModified").value_or(0));
  out.file = json::string_or(*object, "file", "");
  if (out.file.empty()) return fail(ErrorCode::kInternal, "a stored part record has no file");
  return out;
}

}  // namespace wharf::s3
