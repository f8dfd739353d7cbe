// Internal to the S3 API: the parsed request (Call), the replies, and the state and operations
// behind S3Api (split over s3_api.cpp, object_operations.cpp and multipart_operations.cpp).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aws/credentials.hpp"
#include "aws/sigv4.hpp"
#include "common/clock.hpp"
#include "common/work_queue.hpp"
#include "http/server.hpp"
#include "s3/body_files.hpp"
#include "s3/checksums.hpp"
#include "s3/listing.hpp"
#include "s3/records.hpp"
#include "s3/s3_api.hpp"
#include "store/store.hpp"

namespace wharf::s3 {

namespace beast_http = http::beast_http;
using HttpStatus = beast_http::status;

// One request as S3 sees it: path-style bucket and key, decoded query, lower-case headers.
struct Call {
  std::string request_id;
  beast_http::verb method = beast_http::verb::get;
  unsigned version = 11;
  bool keep_alive = true;
  std::string bucket;
  std::string key;
  std::map<std::string, std::string, std::less<>> query;
  std::map<std::string, std::string, std::less<>> headers;
  std::string region;  // the credential scope's, once authenticated

  bool has(std::string_view param) const { return query.contains(param); }
  std::optional<std::string> param(std::string_view name) const;
  std::optional<std::string> header(std::string_view lower_name) const;
};

Call parse_call(const http::RequestHeader& header);

// x-amz-copy-source ("/bucket/key" or "bucket/key", URL-encoded, maybe "?versionId=…") as
// bucket and key; InvalidArgument when it names no object.
Result<std::pair<std::string, std::string>> copy_source(const Call& call);

// Replies, with S3's x-amz-request-id.
http::Response empty_response(const Call& call, HttpStatus status);
http::Response xml_response(const Call& call, HttpStatus status, std::string body);
// S3's <Error> document (no body for HEAD), status and code from aws::to_wire(error, "s3").
http::Reply error_reply(const Call& call, const Error& error);

std::string quoted_etag(std::string_view etag);

std::unexpected<Error> s3_error(std::string code, std::string message);
std::unexpected<Error> no_such_bucket(std::string_view bucket);
std::unexpected<Error> no_such_key();
std::unexpected<Error> no_such_upload();

class S3Api::Impl {
 public:
  Impl(S3Options options, store::Store& store, const aws::CredentialStore& credentials,
       const Clock& clock);

  Status load();
  void handle(http::Request&& request, http::Responder respond);
  std::unique_ptr<http::BodySink> stream_body(const http::RequestHeader& header);
  std::size_t expire_uploads();
  void stop() { workers_.stop(); }

  // ---- used by the body sink ----
  // Checks the signature (an Authorization header, or a presigned URL's query) of a request
  // whose body is not at hand; fills call.region.
  Status authenticate(Call& call, const http::RequestHeader& header);
  // Takes a verified signature's scope for the call: it must be S3's.
  static Status accept_scope(Call& call, const aws::VerifiedCaller& verified);
  // Declared hashes of the body (x-amz-content-sha256, Content-MD5, x-amz-checksum-*).
  Result<DeclaredHashes> declared_hashes(const Call& call) const;
  BodyFiles& files() { return files_; }
  // After a streamed body arrived and its hashes matched: install and record it.
  void finish_put_object(Call call, BodyFiles::Temp temp, BodyHasher hasher, uint64_t size,
                         http::Responder respond);
  // `copied`: the part came from UploadPartCopy, which answers with a CopyPartResult.
  void finish_upload_part(Call call, BodyFiles::Temp temp, BodyHasher hasher, uint64_t size,
                          http::Responder respond, bool copied = false);
  // Runs `task` on a disk thread.
  void off_loop(std::function<void()> task);

 private:
  struct Bucket {
    BucketRecord record;
    ObjectIndex objects;
    int pending_writes = 0;  // objects being committed: the bucket is not empty
  };
  struct Upload {
    UploadRecord record;
    std::map<int, PartRecord> parts;
  };

  void dispatch(Call call, std::string body, http::Responder respond);
  // Commits `mutations`; `applied` runs (on a store thread, briefly) once durable or failed.
  void commit(std::vector<store::Mutation> mutations, std::function<void(Status)> applied);

  // ---- buckets (s3_api.cpp) ----
  void list_buckets(const Call& call, http::Responder respond);
  void create_bucket(Call call, const std::string& body, http::Responder respond);
  void head_bucket(const Call& call, http::Responder respond);
  void delete_bucket(Call call, http::Responder respond);
  void get_bucket_location(const Call& call, http::Responder respond);

  // ---- objects (object_operations.cpp) ----
  void get_object(const Call& call, http::Responder respond, bool head);
  void delete_object(Call call, http::Responder respond);
  void delete_objects(Call call, const std::string& body, http::Responder respond);
  void list_objects(const Call& call, http::Responder respond, bool v2);
  void copy_object(Call call, http::Responder respond);
  // UploadPartCopy: a part made of a range (x-amz-copy-source-range) of an existing object.
  void upload_part_copy(Call call, http::Responder respond);
  // The copy source's record, and its file opened now: an overwrite or delete of the source
  // meanwhile removes the file. NoSuchBucket, NoSuchKey. mutex_ held.
  struct OpenSource {
    ObjectRecord object;
    std::vector<BodyFiles::OpenBody> body;
  };
  Result<OpenSource> open_source(const std::string& bucket, const std::string& key);
  // Installs a new object (its body already in data/) and answers with `reply` when durable.
  // `undo` (called without the lock) puts back what the caller took from memory for `also`
  // when the commit fails.
  void commit_object(Call call, ObjectRecord object,
                     std::function<http::Response(const Call&, const ObjectRecord&)> reply,
                     std::vector<store::Mutation> also, std::vector<std::string> also_remove,
                     http::Responder respond, std::function<void()> undo = {});

  // ---- multipart (multipart_operations.cpp) ----
  void create_multipart_upload(Call call, http::Responder respond);
  void complete_multipart_upload(Call call, const std::string& body, http::Responder respond);
  void abort_multipart_upload(Call call, http::Responder respond);
  void list_parts(const Call& call, http::Responder respond);
  void list_multipart_uploads(const Call& call, http::Responder respond);
  // The upload the call's uploadId names, for its bucket and key; nullptr if none. mutex_ held.
  Upload* find_upload(const Call& call);
  std::vector<store::Mutation> upload_removal(const Upload& upload) const;

  // Headers stored with an object: Content-Type (default binary/octet-stream) and the other
  // representation headers, and x-amz-meta-* user metadata.
  static HeaderMap stored_headers(const Call& call);
  static HeaderMap user_metadata(const Call& call);

  S3Options options_;
  store::Store& store_;
  const aws::CredentialStore& credentials_;
  const Clock& clock_;
  BodyFiles files_;
  std::mutex mutex_;  // guards buckets_ and uploads_
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::map<std::string, Upload, std::less<>> uploads_;  // by upload id
  WorkQueue workers_;                                   // last: joined first
};

}  // namespace wharf::s3
