// S3Api: parsing and routing requests, authentication, replies, loading state, and the bucket
// operations.
#include "s3/s3_api.hpp"

#include <algorithm>
#include <ctime>
#include <set>

#include "aws/errors.hpp"
#include "aws/sigv4.hpp"
#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "s3/bucket_name.hpp"
#include "s3/query_auth_v2.hpp"
#include "s3/s3_impl.hpp"
#include "s3/xml.hpp"

namespace wharf::s3 {

namespace {

using Verb = beast_http::verb;

constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::string_view kDefaultRegion = "us-east-1";

// Subresources S3 has and Wharf does not serve: a request naming one is NotImplemented rather
// than taken for a plain object or bucket operation.
const std::set<std::string, std::less<>> kUnservedSubresources = {"accelerate",
                                                                  "acl",
                                                                  "analytics",
                                                                  "attributes",
                                                                  "cors",
                                                                  "encryption",
                                                                  "inventory",
                                                                  "intelligent-tiering",
                                                                  "legal-hold",
                                                                  "lifecycle",
                                                                  "logging",
                                                                  "metrics",
                                                                  "notification",
                                                                  "object-lock",
                                                                  "ownershipControls",
                                                                  "policy",
                                                                  "policyStatus",
                                                                  "publicAccessBlock",
                                                                  "replication",
                                                                  "requestPayment",
                                                                  "restore",
                                                                  "retention",
                                                                  "select",
                                                                  "tagging",
                                                                  "torrent",
                                                                  "versioning",
                                                                  "versions",
                                                                  "website"};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::map<std::string, std::string, std::less<>> parse_query(std::string_view target) {
  std::map<std::string, std::string, std::less<>> out;
  auto question = target.find('?');
  if (question == std::string_view::npos) return out;
  for (auto param : split(target.substr(question + 1), '&')) {
    if (param.empty()) continue;
    auto equals = param.find('=');
    auto value = equals == std::string_view::npos ? std::string_view{} : param.substr(equals + 1);
    out[uri_decode(param.substr(0, equals))] = uri_decode(value);
  }
  return out;
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

aws::SignableRequest signable(const http::RequestHeader& header) {
  aws::SignableRequest out;
  out.method = std::string(header.method_string());
  out.target = std::string(header.target());
  for (const auto& field : header) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.payload_streamed = true;
  return out;
}

// verify()'s errors in S3's words.
Error as_s3_auth_error(Error error) {
  if (error.code == ErrorCode::kUnrecognizedClient) {
    error.message = "The AWS Access Key Id you provided does not exist in our records.";
  }
  if (error.code == ErrorCode::kInvalidSignature && error.message.starts_with("Signature ")) {
    error.wire_type = "RequestTimeTooSkewed";
    error.message = "The difference between the request time and the current time is too large. " +
                    error.message;
  }
  return error;
}

bool is_object_upload(const Call& call) {
  if (call.method != Verb::put || call.key.empty() || call.header("x-amz-copy-source")) {
    return false;
  }
  bool part = call.has("partNumber") || call.has("uploadId");
  return part || std::none_of(call.query.begin(), call.query.end(), [](const auto& param) {
           return kUnservedSubresources.contains(param.first);
         });
}

}  // namespace

// ---- Call and replies ----

std::optional<std::string> Call::param(std::string_view name) const {
  auto found = query.find(name);
  if (found == query.end()) return std::nullopt;
  return found->second;
}

std::optional<std::string> Call::header(std::string_view lower_name) const {
  auto found = headers.find(lower_name);
  if (found == headers.end()) return std::nullopt;
  return found->second;
}

Call parse_call(const http::RequestHeader& header) {
  Call call;
  call.request_id = new_hex_id().substr(0, 16);
  call.method = header.method();
  call.version = header.version();
  auto connection = lower(header[beast_http::field::connection]);
  call.keep_alive = header.version() >= 11 ? connection.find("close") == std::string::npos
                                           : connection.find("keep-alive") != std::string::npos;
  std::string_view path = path_of(header.target());
  if (path.starts_with('/')) path.remove_prefix(1);
  auto slash = path.find('/');
  call.bucket = uri_decode(path.substr(0, slash));
  if (slash != std::string_view::npos) call.key = uri_decode(path.substr(slash + 1));
  call.query = parse_query(header.target());
  for (const auto& field : header) {
    auto name = lower(field.name_string());
    auto [entry, fresh] = call.headers.try_emplace(name, std::string(field.value()));
    if (!fresh) entry->second += "," + std::string(field.value());
  }
  return call;
}

http::Response empty_response(const Call& call, HttpStatus status) {
  http::Response response{status, call.version};
  response.keep_alive(call.keep_alive);
  response.set("x-amz-request-id", call.request_id);
  response.set("x-amz-id-2", call.request_id);
  response.set(beast_http::field::server, "Wharf");
  return response;
}

http::Response xml_response(const Call& call, HttpStatus status, std::string body) {
  auto response = empty_response(call, status);
  response.set(beast_http::field::content_type, "application/xml");
  response.body() = std::move(body);
  return response;
}

http::Reply error_reply(const Call& call, const Error& error) {
  auto wire = aws::to_wire(error, "s3");
  auto status = static_cast<HttpStatus>(wire.status);
  if (wire.status >= 500) spdlog::error("S3 request {} failed: {}", call.request_id, error.message);
  if (call.method == Verb::head) {
    auto response = empty_response(call, status);
    response.content_length(0);
    return http::Reply::header_only(std::move(response));
  }
  XmlWriter xml;
  xml.open("Error").element("Code", wire.type).element("Message", error.message);
  if (wire.type == "NoSuchKey") xml.element("Key", call.key);
  if (wire.type.find("Bucket") != std::string::npos && !call.bucket.empty()) {
    xml.element("BucketName", call.bucket);
  }
  xml.element("RequestId", call.request_id).element("HostId", call.request_id).close("Error");
  return xml_response(call, status, xml.str());
}

std::string quoted_etag(std::string_view etag) {
  return "\"" + std::string(etag) + "\"";
}

std::unexpected<Error> s3_error(std::string code, std::string message) {
  return fail_as(ErrorCode::kInvalidParameter, std::move(code), std::move(message));
}

std::unexpected<Error> no_such_bucket(std::string_view) {
  return fail_as(ErrorCode::kNotFound, "NoSuchBucket", "The specified bucket does not exist");
}

std::unexpected<Error> no_such_key() {
  return fail_as(ErrorCode::kNotFound, "NoSuchKey", "The specified key does not exist.");
}

std::unexpected<Error> no_such_upload() {
  return fail_as(ErrorCode::kNotFound, "NoSuchUpload",
                 "The specified upload does not exist. The upload ID may be invalid, or the "
                 "upload may have been aborted or completed.");
}

// ---- the streamed body of PutObject and UploadPart ----

namespace {

class ObjectSink final : public http::BodySink {
 public:
  ObjectSink(S3Api::Impl& impl, Call call, Error refused)
      : impl_(impl), call_(std::move(call)), refused_(std::move(refused)) {}
  ObjectSink(S3Api::Impl& impl, Call call, BodyFiles::Temp temp, DeclaredHashes declared)
      : impl_(impl),
        call_(std::move(call)),
        temp_(std::move(temp)),
        hasher_(std::in_place, declared.content_sha256_hex.has_value(),
                declared.checksum ? std::optional(declared.checksum->algorithm) : std::nullopt),
        declared_(std::move(declared)) {}
  ~ObjectSink() override {
    if (temp_) impl_.files().remove_temp(temp_->id);  // the client went away midway
  }

  Status write(std::string_view piece) override {
    if (refused_) return std::unexpected(*refused_);
    hasher_->update(piece);
    size_ += piece.size();
    return impl_.files().write(*temp_, piece);
  }

  void finish(Status received, http::Responder respond) override {
    if (refused_) return respond(error_reply(call_, *refused_));
    if (!received) return respond(error_reply(call_, received.error()));
    // The work queue takes copyable tasks; the temp file and hasher move through a pointer.
    auto pending =
        std::make_shared<Pending>(Pending{std::move(call_), std::move(*temp_), std::move(*hasher_),
                                          std::move(declared_), size_, std::move(respond)});
    impl_.off_loop([&impl = impl_, pending] {
      pending->hasher.finish();
      if (auto matched = check_body(pending->hasher, pending->declared); !matched) {
        impl.files().remove_temp(pending->temp.id);
        return pending->respond(error_reply(pending->call, matched.error()));
      }
      if (pending->call.has("uploadId")) {
        return impl.finish_upload_part(std::move(pending->call), std::move(pending->temp),
                                       std::move(pending->hasher), pending->size,
                                       std::move(pending->respond));
      }
      impl.finish_put_object(std::move(pending->call), std::move(pending->temp),
                             std::move(pending->hasher), pending->size,
                             std::move(pending->respond));
    });
    temp_.reset();
  }

 private:
  struct Pending {
    Call call;
    BodyFiles::Temp temp;
    BodyHasher hasher;
    DeclaredHashes declared;
    uint64_t size;
    http::Responder respond;
  };

  S3Api::Impl& impl_;
  Call call_;
  std::optional<Error> refused_;
  std::optional<BodyFiles::Temp> temp_;
  std::optional<BodyHasher> hasher_;
  DeclaredHashes declared_;
  uint64_t size_ = 0;
};

}  // namespace

// ---- S3Api ----

S3Api::S3Api(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Api::~S3Api() {
  stop();
}

Result<std::unique_ptr<S3Api>> S3Api::open(S3Options options, store::Store& store,
                                           const aws::CredentialStore& credentials,
                                           const Clock& clock) {
  auto impl = std::make_unique<Impl>(std::move(options), store, credentials, clock);
  if (auto loaded = impl->load(); !loaded) return std::unexpected(loaded.error());
  return std::unique_ptr<S3Api>(new S3Api(std::move(impl)));
}

void S3Api::handle(http::Request&& request, http::Responder respond) {
  impl_->handle(std::move(request), std::move(respond));
}

std::unique_ptr<http::BodySink> S3Api::stream_body(const http::RequestHeader& header) {
  return impl_->stream_body(header);
}

http::Response S3Api::payload_too_large(const http::RequestHeader& header, std::size_t limit) {
  Call call = parse_call(header);
  Error error = s3_error("EntityTooLarge",
                         "Your proposed upload exceeds the maximum allowed size "
                         "for this request (" +
                             std::to_string(limit) + " bytes).")
                    .error();
  return error_reply(call, error).response;
}

std::size_t S3Api::expire_uploads() {
  return impl_->expire_uploads();
}

void S3Api::stop() {
  impl_->stop();
}

// ---- Impl: plumbing ----

S3Api::Impl::Impl(S3Options options, store::Store& store, const aws::CredentialStore& credentials,
                  const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      credentials_(credentials),
      clock_(clock),
      files_(options_.root),
      workers_(options_.disk_threads) {}

void S3Api::Impl::off_loop(std::function<void()> task) {
  if (!workers_.post(task)) task();
}

void S3Api::Impl::commit(std::vector<store::Mutation> mutations,
                         std::function<void(Status)> applied) {
  store_.commit(std::move(mutations), std::move(applied));
}

Status S3Api::Impl::load() {
  if (auto prepared = files_.prepare(); !prepared) return prepared;
  auto buckets = store_.load(kBucketKind);
  auto objects = store_.load(kObjectKind);
  auto uploads = store_.load(kUploadKind);
  auto parts = store_.load(kPartKind);
  for (auto* loaded : {&buckets, &objects, &uploads, &parts}) {
    if (!*loaded) return std::unexpected(loaded->error().context("loading S3 state"));
  }
  std::set<std::string, std::less<>> referenced;
  std::lock_guard lock(mutex_);
  for (const auto& record : *buckets) {
    auto bucket = decode_bucket(record.value);
    if (!bucket) return std::unexpected(bucket.error().context("loading bucket " + record.key));
    buckets_[record.key].record = std::move(*bucket);
  }
  for (const auto& record : *objects) {
    auto object = decode_object(record.value);
    if (!object) return std::unexpected(object.error().context("loading object " + record.key));
    auto bucket = buckets_.find(record.key.substr(0, record.key.find('/')));
    if (bucket == buckets_.end()) continue;  // its bucket's deletion raced it; the file goes
    referenced.insert(object->file);
    std::string key = object->key;
    bucket->second.objects[key] = std::move(*object);
  }
  for (const auto& record : *uploads) {
    auto upload = decode_upload(record.value);
    if (!upload) return std::unexpected(upload.error().context("loading upload " + record.key));
    uploads_[record.key].record = std::move(*upload);
  }
  for (const auto& record : *parts) {
    auto part = decode_part(record.value);
    if (!part) return std::unexpected(part.error().context("loading part " + record.key));
    auto upload = uploads_.find(record.key.substr(0, record.key.find('/')));
    if (upload == uploads_.end()) continue;
    referenced.insert(part->file);
    upload->second.parts[part->number] = std::move(*part);
  }
  auto swept = files_.sweep(referenced);
  if (!swept) return std::unexpected(swept.error());
  if (*swept > 0) spdlog::info("removed {} S3 body files no record names", *swept);
  return {};
}

Result<DeclaredHashes> S3Api::Impl::declared_hashes(const Call& call) const {
  DeclaredHashes declared;
  auto content_sha256 = call.header("x-amz-content-sha256");
  if (content_sha256 && *content_sha256 != kUnsignedPayload) {
    declared.content_sha256_hex = *content_sha256;
  }
  declared.content_md5_base64 = call.header("content-md5");
  for (const auto& [name, value] : call.headers) {
    auto algorithm = checksum_algorithm(name);
    if (!algorithm) continue;
    if (declared.checksum) {
      return s3_error("InvalidRequest", "Expecting a single x-amz-checksum- header.");
    }
    declared.checksum = DeclaredChecksum{*algorithm, name, value};
  }
  return declared;
}

Status S3Api::Impl::authenticate(Call& call, const http::RequestHeader& header) {
  auto lookup = [this](std::string_view key_id) -> std::optional<std::string> {
    auto key = credentials_.find(key_id);
    if (!key) return std::nullopt;
    return key->secret_access_key;
  };
  if (!call.header("authorization")) {
    if (call.has("AWSAccessKeyId") || (call.has("Signature") && call.has("Expires"))) {
      // A presigned URL of the older kind (Signature Version 2).
      V2Request request{header.method_string(), path_of(header.target()), call.query, call.headers};
      auto verified = verify_query_v2(request, lookup, clock_.now());
      if (!verified) return std::unexpected(as_s3_auth_error(std::move(verified.error())));
      call.region = kDefaultRegion;
      return {};
    }
    if (!call.has("X-Amz-Credential") && !call.has("X-Amz-Signature")) {
      return fail_as(ErrorCode::kAccessDenied, "AccessDenied", "Access Denied");
    }
    // A presigned URL: its body, if any, is not signed (UNSIGNED-PAYLOAD).
    auto verified = aws::verify_presigned(signable(header), lookup, clock_.now());
    if (!verified) return std::unexpected(as_s3_auth_error(std::move(verified.error())));
    return accept_scope(call, *verified);
  }
  auto content_sha256 = call.header("x-amz-content-sha256");
  if (!content_sha256) {
    return s3_error("InvalidRequest",
                    "Missing required header for this request: x-amz-content-sha256");
  }
  if (content_sha256->starts_with("STREAMING-")) {
    return fail_as(ErrorCode::kUnknownOperation, "NotImplemented",
                   "aws-chunked (STREAMING-*) uploads are not supported by Wharf's S3 API.");
  }
  if (*content_sha256 != kUnsignedPayload && !is_sha256_hex(*content_sha256)) {
    return s3_error("InvalidArgument",
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, or a valid sha256 value.");
  }
  auto verified = aws::verify(signable(header), lookup, clock_.now());
  if (!verified) return std::unexpected(as_s3_auth_error(std::move(verified.error())));
  return accept_scope(call, *verified);
}

Status S3Api::Impl::accept_scope(Call& call, const aws::VerifiedCaller& verified) {
  if (verified.service != "s3") {
    return fail_as(ErrorCode::kIncompleteSignature, "AuthorizationHeaderMalformed",
                   "The authorization header is malformed; the credential scope's service must "
                   "be 's3', not '" +
                       verified.service + "'.");
  }
  call.region = verified.region;
  return {};
}

std::unique_ptr<http::BodySink> S3Api::Impl::stream_body(const http::RequestHeader& header) {
  Call call = parse_call(header);
  if (!is_object_upload(call)) return nullptr;
  auto refuse = [&](Error error) {
    return std::make_unique<ObjectSink>(*this, std::move(call), std::move(error));
  };
  if (auto authenticated = authenticate(call, header); !authenticated) {
    return refuse(authenticated.error());
  }
  auto declared = declared_hashes(call);
  if (!declared) return refuse(declared.error());
  {
    std::lock_guard lock(mutex_);
    if (!buckets_.contains(call.bucket)) return refuse(no_such_bucket(call.bucket).error());
    if ((call.has("uploadId") || call.has("partNumber")) && find_upload(call) == nullptr) {
      return refuse(no_such_upload().error());
    }
  }
  auto temp = files_.create();
  if (!temp) return refuse(temp.error());
  return std::make_unique<ObjectSink>(*this, std::move(call), std::move(*temp),
                                      std::move(*declared));
}

void S3Api::Impl::handle(http::Request&& request, http::Responder respond) {
  Call call = parse_call(request.base());
  if (auto authenticated = authenticate(call, request.base()); !authenticated) {
    return respond(error_reply(call, authenticated.error()));
  }
  auto declared = declared_hashes(call);
  if (!declared) return respond(error_reply(call, declared.error()));
  BodyHasher hasher(
      declared->content_sha256_hex.has_value(),
      declared->checksum ? std::optional(declared->checksum->algorithm) : std::nullopt);
  hasher.update(request.body());
  hasher.finish();
  if (auto matched = check_body(hasher, *declared); !matched) {
    return respond(error_reply(call, matched.error()));
  }
  dispatch(std::move(call), std::move(request.body()), std::move(respond));
}

void S3Api::Impl::dispatch(Call call, std::string body, http::Responder respond) {
  auto not_implemented = [&] {
    respond(error_reply(call, fail_as(ErrorCode::kUnknownOperation, "NotImplemented",
                                      "A header or query you provided implies functionality "
                                      "that is not implemented by Wharf's S3 API.")
                                  .error()));
  };
  auto method_not_allowed = [&] {
    respond(error_reply(call, fail_as(ErrorCode::kInvalidParameter, "MethodNotAllowed",
                                      "The specified method is not allowed against this "
                                      "resource.")
                                  .error()));
  };
  bool unserved = std::any_of(call.query.begin(), call.query.end(), [](const auto& param) {
    return kUnservedSubresources.contains(param.first);
  });
  if (unserved) return not_implemented();
  const Verb method = call.method;
  if (call.bucket.empty()) {
    if (method == Verb::get) return list_buckets(call, std::move(respond));
    return method_not_allowed();
  }
  if (call.key.empty()) {
    switch (method) {
      case Verb::put:
        return create_bucket(std::move(call), body, std::move(respond));
      case Verb::head:
        return head_bucket(call, std::move(respond));
      case Verb::delete_:
        return delete_bucket(std::move(call), std::move(respond));
      case Verb::get:
        if (call.has("location")) return get_bucket_location(call, std::move(respond));
        if (call.has("uploads")) return list_multipart_uploads(call, std::move(respond));
        return list_objects(call, std::move(respond), call.param("list-type") == "2");
      case Verb::post:
        if (call.has("delete")) return delete_objects(std::move(call), body, std::move(respond));
        return not_implemented();
      default:
        return method_not_allowed();
    }
  }
  switch (method) {
    case Verb::put:
      if (call.has("uploadId")) return upload_part_copy(std::move(call), std::move(respond));
      return copy_object(std::move(call), std::move(respond));
    case Verb::get:
      if (call.has("uploadId")) return list_parts(call, std::move(respond));
      return get_object(call, std::move(respond), false);
    case Verb::head:
      return get_object(call, std::move(respond), true);
    case Verb::delete_:
      if (call.has("uploadId")) return abort_multipart_upload(std::move(call), std::move(respond));
      return delete_object(std::move(call), std::move(respond));
    case Verb::post:
      if (call.has("uploads")) return create_multipart_upload(std::move(call), std::move(respond));
      if (call.has("uploadId")) {
        return complete_multipart_upload(std::move(call), body, std::move(respond));
      }
      return not_implemented();
    default:
      return method_not_allowed();
  }
}

// ---- buckets ----

void S3Api::Impl::list_buckets(const Call& call, http::Responder respond) {
  XmlWriter xml;
  xml.open("ListAllMyBucketsResult", true)
      .open("Owner")
      .element("ID", options_.account_id)
      .element("DisplayName", "wharf")
      .close("Owner")
      .open("Buckets");
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, bucket] : buckets_) {
      xml.open("Bucket")
          .element("Name", name)
          .element("CreationDate", iso8601_millis(bucket.record.created))
          .element("BucketRegion", bucket.record.region)
          .close("Bucket");
    }
  }
  xml.close("Buckets").close("ListAllMyBucketsResult");
  respond(xml_response(call, HttpStatus::ok, xml.str()));
}

namespace {

// The region CreateBucketConfiguration names, or us-east-1 when the body is empty.
Result<std::string> requested_region(const std::string& body, std::string_view signing_region) {
  std::string region;
  if (!trim(body).empty()) {
    auto document = parse_xml(body);
    if (!document) return std::unexpected(document.error());
    if (const auto* constraint = document->child("LocationConstraint")) region = constraint->text;
  }
  bool region_like = region.size() <= 32 && std::ranges::all_of(region, [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                     });
  if (!region_like) {
    return s3_error("InvalidLocationConstraint",
                    "The specified location-constraint is not valid: give a region name such as "
                    "eu-west-1.");
  }
  if (region == kDefaultRegion) {
    return s3_error("InvalidLocationConstraint",
                    "The specified location-constraint is not valid: us-east-1 is the default; "
                    "give no LocationConstraint for it.");
  }
  if (region.empty() && signing_region != kDefaultRegion) {
    return s3_error("IllegalLocationConstraintException",
                    "The unspecified location constraint is incompatible for the region specific "
                    "endpoint this request was sent to.");
  }
  return region.empty() ? std::string(kDefaultRegion) : region;
}

}  // namespace

void S3Api::Impl::create_bucket(Call call, const std::string& body, http::Responder respond) {
  if (auto valid = check_bucket_name(call.bucket); !valid) {
    return respond(error_reply(call, valid.error()));
  }
  auto region = requested_region(body, call.region);
  if (!region) return respond(error_reply(call, region.error()));
  // Creating a bucket one owns again succeeds in us-east-1 (S3's legacy behaviour, which
  // idempotent scripts rely on) and is BucketAlreadyOwnedByYou elsewhere.
  auto already_owned = [](const Call& call, const std::string& owned_region) -> http::Reply {
    if (owned_region == kDefaultRegion && call.region == kDefaultRegion) {
      auto response = empty_response(call, HttpStatus::ok);
      response.set(beast_http::field::location, "/" + call.bucket);
      return response;
    }
    return error_reply(call, fail_as(ErrorCode::kResourceInUse, "BucketAlreadyOwnedByYou",
                                     "Your previous request to create the named bucket succeeded "
                                     "and you already own it.")
                                 .error());
  };
  {
    std::lock_guard lock(mutex_);
    if (auto owned = buckets_.find(call.bucket); owned != buckets_.end()) {
      return respond(already_owned(call, owned->second.record.region));
    }
  }
  BucketRecord record{call.bucket, *region, clock_.now()};
  commit({{kBucketKind, record.name, encode(record)}},
         [this, call = std::move(call), record, respond = std::move(respond),
          already_owned](Status status) {
           if (!status) return respond(error_reply(call, status.error()));
           {
             std::lock_guard lock(mutex_);
             auto [bucket, fresh] = buckets_.try_emplace(record.name);
             if (!fresh) return respond(already_owned(call, bucket->second.record.region));
             bucket->second.record = record;
           }
           auto response = empty_response(call, HttpStatus::ok);
           response.set(beast_http::field::location, "/" + record.name);
           respond(std::move(response));
         });
}

void S3Api::Impl::head_bucket(const Call& call, http::Responder respond) {
  std::string region;
  {
    std::lock_guard lock(mutex_);
    auto bucket = buckets_.find(call.bucket);
    if (bucket == buckets_.end()) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
    region = bucket->second.record.region;
  }
  auto response = empty_response(call, HttpStatus::ok);
  response.set("x-amz-bucket-region", region);
  response.content_length(0);
  respond(http::Reply::header_only(std::move(response)));
}

void S3Api::Impl::delete_bucket(Call call, http::Responder respond) {
  std::vector<store::Mutation> mutations{{kBucketKind, call.bucket, std::nullopt}};
  std::vector<std::string> part_files;
  Bucket removed;
  {
    std::lock_guard lock(mutex_);
    auto bucket = buckets_.find(call.bucket);
    if (bucket == buckets_.end()) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
    if (!bucket->second.objects.empty() || bucket->second.pending_writes > 0) {
      return respond(error_reply(call, fail_as(ErrorCode::kResourceInUse, "BucketNotEmpty",
                                               "The bucket you tried to delete is not empty")
                                           .error()));
    }
    // Its unfinished multipart uploads go with it.
    for (auto upload = uploads_.begin(); upload != uploads_.end();) {
      if (upload->second.record.bucket != call.bucket) {
        ++upload;
        continue;
      }
      for (auto& mutation : upload_removal(upload->second))
        mutations.push_back(std::move(mutation));
      for (const auto& [number, part] : upload->second.parts) part_files.push_back(part.file);
      upload = uploads_.erase(upload);
    }
    // Gone at once, so that no object is put into it while the deletion commits.
    removed = std::move(bucket->second);
    buckets_.erase(bucket);
  }
  commit(std::move(mutations),
         [this, call = std::move(call), part_files = std::move(part_files),
          removed = std::move(removed), respond = std::move(respond)](Status status) mutable {
           if (!status) {
             std::lock_guard lock(mutex_);
             buckets_.try_emplace(call.bucket, std::move(removed));
             return respond(error_reply(call, status.error()));
           }
           for (const auto& file : part_files) files_.remove(file);
           respond(empty_response(call, HttpStatus::no_content));
         });
}

void S3Api::Impl::get_bucket_location(const Call& call, http::Responder respond) {
  std::string region;
  {
    std::lock_guard lock(mutex_);
    auto bucket = buckets_.find(call.bucket);
    if (bucket == buckets_.end()) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
    region = bucket->second.record.region;
  }
  // S3 answers an empty constraint for us-east-1.
  XmlWriter xml;
  xml.open("LocationConstraint", true);
  xml.close("LocationConstraint");
  std::string body = xml.str();
  if (region != kDefaultRegion) {
    body.insert(body.rfind("</LocationConstraint>"), xml_escape(region));
  }
  respond(xml_response(call, HttpStatus::ok, std::move(body)));
}

// ---- helpers shared by the operations ----

HeaderMap S3Api::Impl::stored_headers(const Call& call) {
  static constexpr std::pair<std::string_view, std::string_view> kStored[] = {
      {"content-type", "Content-Type"},
      {"cache-control", "Cache-Control"},
      {"content-disposition", "Content-Disposition"},
      {"content-encoding", "Content-Encoding"},
      {"content-language", "Content-Language"},
      {"expires", "Expires"}};
  HeaderMap out{{"Content-Type", "binary/octet-stream"}};
  for (const auto& [name, canonical] : kStored) {
    if (auto value = call.header(name)) out[std::string(canonical)] = *value;
  }
  return out;
}

HeaderMap S3Api::Impl::user_metadata(const Call& call) {
  constexpr std::string_view kPrefix = "x-amz-meta-";
  HeaderMap out;
  for (const auto& [name, value] : call.headers) {
    if (name.starts_with(kPrefix)) out[name.substr(kPrefix.size())] = value;
  }
  return out;
}

}  // namespace wharf::s3
