// The /v2/ handler: authenticate, authorize, route, and answer in the distribution spec's terms.
#include "registry/distribution_api.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <ctime>
#include <map>
#include <regex>

#include "common/log.hpp"
#include "oci/manifest.hpp"
#include "registry/routes.hpp"

namespace wharf::registry {

namespace bj = boost::json;
namespace beast_http = http::beast_http;
using Status_ = beast_http::status;

namespace {

constexpr std::string_view kApiVersionHeader = "Docker-Distribution-API-Version";
constexpr std::string_view kDigestHeader = "Docker-Content-Digest";
constexpr std::string_view kUploadUuidHeader = "Docker-Upload-UUID";
constexpr std::string_view kService = "wharf";

enum class Action { kPull, kPush };

// What the handler knows about one request, from its header alone (a streamed body's sink has
// no more than that).
struct Call {
  unsigned version = 11;
  bool keep_alive = true;
  beast_http::verb method = beast_http::verb::unknown;
  std::string host;
  Route route;
  std::multimap<std::string, std::string> query;
  std::string authorization;
  std::string content_type;
  std::string content_range;
  std::string range;
  std::optional<uint64_t> content_length;
  Identity identity;
  RepositoryRef ref;  // set by authorize()

  std::optional<std::string> param(std::string_view key) const {
    auto found = query.find(std::string(key));
    if (found == query.end()) return std::nullopt;
    return found->second;
  }
  bool head() const { return method == beast_http::verb::head; }
};

Call read_call(const http::RequestHeader& header) {
  Call call;
  call.version = header.version();
  beast_http::token_list connection(header[beast_http::field::connection]);
  call.keep_alive =
      header.version() >= 11 ? !connection.exists("close") : connection.exists("keep-alive");
  call.method = header.method();
  call.host = std::string(header[beast_http::field::host]);
  if (call.host.empty()) call.host = "localhost";
  auto url = boost::urls::parse_origin_form(header.target());
  if (url) {
    call.route = parse_route(url->encoded_path());
    for (auto param : url->params()) call.query.emplace(param.key, param.value);
  }
  call.authorization = std::string(header[beast_http::field::authorization]);
  call.content_type = std::string(header[beast_http::field::content_type]);
  call.content_range = std::string(header[beast_http::field::content_range]);
  call.range = std::string(header[beast_http::field::range]);
  auto length = header[beast_http::field::content_length];
  if (!length.empty()) {
    try {
      call.content_length = std::stoull(std::string(length));
    } catch (const std::exception&) {
    }
  }
  return call;
}

http::Response base_response(const Call& call, Status_ status) {
  http::Response response{status, call.version};
  response.keep_alive(call.keep_alive);
  response.set(kApiVersionHeader, "registry/2.0");
  return response;
}

// A reply with the response's body, or for HEAD its length alone.
http::Reply finish(const Call& call, http::Response response) {
  if (!call.head()) return response;
  response.content_length(response.body().size());
  response.body().clear();
  return http::Reply::header_only(std::move(response));
}

http::Reply error_reply(const Call& call, Status_ status, std::string_view code,
                        std::string message, bj::value detail = bj::object()) {
  http::Response response = base_response(call, status);
  response.set(beast_http::field::content_type, "application/json");
  bj::object error{{"code", code}, {"message", message}, {"detail", std::move(detail)}};
  response.body() = bj::serialize(bj::object{{"errors", bj::array{std::move(error)}}});
  return finish(call, std::move(response));
}

std::string scope_of(const Call& call, Action action) {
  if (call.route.name.empty()) return "";
  return "repository:" + call.route.name + (action == Action::kPull ? ":pull" : ":pull,push");
}

http::Reply unauthorized(const Call& call, std::string message, std::string scope) {
  http::Reply reply = error_reply(call, Status_::unauthorized, "UNAUTHORIZED", std::move(message));
  std::string challenge = "Bearer realm=\"http://" + call.host + "/v2/token\",service=\"" +
                          std::string(kService) + "\"";
  if (!scope.empty()) challenge += ",scope=\"" + scope + "\"";
  reply.response.set(beast_http::field::www_authenticate, challenge);
  return reply;
}

// Where the distribution spec's error codes come from: the state's and blob store's errors.
enum class Area { kManifest, kBlob, kUpload };

http::Reply reply_for(const Call& call, const Error& error, Area area) {
  switch (error.code) {
    case ErrorCode::kRepositoryNotFound:
      return error_reply(call, Status_::not_found, "NAME_UNKNOWN", error.message,
                         bj::object{{"name", call.route.name}});
    case ErrorCode::kImageNotFound:
      return error_reply(call, Status_::not_found, "MANIFEST_UNKNOWN", error.message);
    case ErrorCode::kReferencedImagesNotFound:
      // The spec: a missing child manifest of an index is MANIFEST_BLOB_UNKNOWN too.
      return error_reply(call, Status_::bad_request, "MANIFEST_BLOB_UNKNOWN", error.message);
    case ErrorCode::kLayersNotFound:
      if (area == Area::kManifest) {
        return error_reply(call, Status_::bad_request, "MANIFEST_BLOB_UNKNOWN", error.message);
      }
      return error_reply(call, Status_::not_found, "BLOB_UNKNOWN", error.message);
    case ErrorCode::kUploadNotFound:
      return error_reply(call, Status_::not_found, "BLOB_UPLOAD_UNKNOWN", error.message);
    case ErrorCode::kInvalidLayerPart:
    case ErrorCode::kResourceInUse:
      return error_reply(call, Status_::range_not_satisfiable, "BLOB_UPLOAD_INVALID",
                         error.message);
    case ErrorCode::kInvalidLayer:
    case ErrorCode::kImageDigestDoesNotMatch:
      return error_reply(call, Status_::bad_request, "DIGEST_INVALID", error.message);
    case ErrorCode::kInvalidTagParameter:
    case ErrorCode::kImageTagAlreadyExists:
      return error_reply(call, Status_::bad_request, "TAG_INVALID", error.message);
    case ErrorCode::kUnsupportedImageType:
      return error_reply(call, Status_::bad_request, "MANIFEST_INVALID", error.message,
                         bj::object{{"reason", "manifest type unsupported"}});
    case ErrorCode::kInternal:
      spdlog::error("registry: {}", error.message);
      return error_reply(call, Status_::internal_server_error, "UNKNOWN",
                         "the registry failed: " + error.message);
    default:
      break;
  }
  if (area == Area::kManifest) {
    return error_reply(call, Status_::bad_request, "MANIFEST_INVALID", error.message);
  }
  if (area == Area::kUpload) {
    return error_reply(call, Status_::bad_request, "BLOB_UPLOAD_INVALID", error.message);
  }
  return error_reply(call, Status_::bad_request, "UNSUPPORTED", error.message);
}

std::string repository_path(const Call& call) {
  return "/v2/" + call.route.name;
}

std::string upload_location(const Call& call, std::string_view id) {
  return repository_path(call) + "/blobs/uploads/" + std::string(id);
}

// A manifest reference is a digest when it has a colon (tags cannot), else a tag.
Result<ImageSelector> manifest_reference(const std::string& reference) {
  if (reference.find(':') == std::string::npos) return ImageSelector{std::nullopt, reference};
  auto digest = oci::parse_digest(reference);
  if (!digest) return std::unexpected(digest.error());
  return ImageSelector{std::move(*digest), std::nullopt};
}

// The Range header of upload status replies: "0-<last byte>", "0-0" while empty.
std::string upload_range(uint64_t size) {
  return "0-" + std::to_string(size == 0 ? 0 : size - 1);
}

std::string rfc3339(TimePoint time) {
  return utc_time(time, "%Y-%m-%dT%H:%M:%SZ");
}

// "123456789012.dkr.ecr.us-west-2.<anything>": ECR-style hosts name the registry's owner.
std::optional<std::pair<std::string, std::string>> registry_of_host(std::string_view host) {
  if (host.find(".dkr.ecr.") == std::string_view::npos) return std::nullopt;  // skip the regex
  static const std::regex kEcrHost(R"(^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\..*$)");
  std::string text(host);
  std::smatch match;
  if (!std::regex_match(text, match, kEcrHost)) return std::nullopt;
  return std::pair{match[1].str(), match[2].str()};
}

std::optional<int64_t> page_size(const Call& call) {
  auto text = call.param("n");
  if (!text) return std::nullopt;
  try {
    int64_t size = std::stoll(*text);
    if (size >= 0) return size;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// A page of sorted names after `last`, with the Link header to the next page when cut.
http::Reply name_page(const Call& call, const std::vector<std::string>& names, std::string key,
                      bj::object output, const std::string& path) {
  auto last = call.param("last");
  auto limit = page_size(call);
  auto begin = last ? std::upper_bound(names.begin(), names.end(), *last) : names.begin();
  bj::array page;
  auto name = begin;
  for (; name != names.end() && (!limit || static_cast<int64_t>(page.size()) < *limit); ++name) {
    page.emplace_back(*name);
  }
  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, "application/json");
  if (name != names.end() && !page.empty()) {
    response.set(beast_http::field::link, "<" + path + "?n=" + std::to_string(*limit) +
                                              "&last=" + std::string(page.back().as_string()) +
                                              ">; rel=\"next\"");
  }
  output[key] = std::move(page);
  response.body() = bj::serialize(output);
  return finish(call, std::move(response));
}

}  // namespace

// ---- the implementation ----

struct DistributionApi::Impl {
  Impl(RegistryState& state, BlobStore& blobs, const RegistryAuth& auth, const Clock& clock,
       DistributionOptions options)
      : state(state),
        blobs(blobs),
        auth(auth),
        clock(clock),
        options(std::move(options)),
        io(static_cast<std::size_t>(std::max(1, this->options.io_threads))) {}

  // Authenticates the call and checks it may do `action` on its repository; sets call.ref.
  // A reply when it may not.
  std::optional<http::Reply> authorize(Call& call, Action action) const;
  std::optional<http::Reply> authenticate(Call& call) const;

  void handle(Call call, http::Request&& request, const http::Responder& respond);
  void base(const Call& call, const http::Responder& respond);
  void token(Call& call, const http::Responder& respond);
  void catalog(Call& call, const http::Responder& respond);
  void get_manifest(const Call& call, const http::Responder& respond);
  void put_manifest(const Call& call, std::string body, const http::Responder& respond);
  void delete_manifest(const Call& call, const http::Responder& respond);
  void get_blob(const Call& call, const http::Responder& respond);
  void delete_blob(const Call& call, const http::Responder& respond);
  void upload_status(const Call& call, const http::Responder& respond);
  void cancel_upload(const Call& call, const http::Responder& respond);
  void tags(const Call& call, const http::Responder& respond);
  void referrers(const Call& call, const http::Responder& respond);

  std::unique_ptr<http::BodySink> upload_sink(Call call);
  // Ends an upload: verify, install and link the blob, then answer 201 (off the event loop).
  void complete(Call call, std::string upload_id, oci::Digest digest, http::Responder respond);
  void try_mount(const Call& call, const http::Responder& respond);
  void start_upload(const Call& call, const http::Responder& respond);

  RegistryState& state;
  BlobStore& blobs;
  const RegistryAuth& auth;
  const Clock& clock;
  DistributionOptions options;
  boost::asio::thread_pool io;
};

std::optional<http::Reply> DistributionApi::Impl::authenticate(Call& call) const {
  auto identity = auth.authenticate(call.authorization, clock.now());
  if (!identity) return unauthorized(call, identity.error().message, "");
  call.identity = std::move(*identity);
  return std::nullopt;
}

std::optional<http::Reply> DistributionApi::Impl::authorize(Call& call, Action action) const {
  if (auto refused = authenticate(call)) return refused;
  if (auto valid = validate_repository_name(call.route.name); !valid) {
    return error_reply(call, Status_::bad_request, "NAME_INVALID", valid.error().message,
                       bj::object{{"name", call.route.name}});
  }
  const Identity& identity = call.identity;
  call.ref = {identity.region,
              identity.anonymous ? options.default_account_id : identity.account_id,
              call.route.name};
  if (auto owner = registry_of_host(call.host)) {
    call.ref.account_id = owner->first;
    call.ref.region = owner->second;
  }
  bool owner = !identity.anonymous && identity.account_id == call.ref.account_id &&
               identity.region == call.ref.region;
  auto repository = state.repository(call.ref);
  if (owner) {
    if (!repository) return reply_for(call, repository.error(), Area::kBlob);
    return std::nullopt;
  }
  bool public_pull = action == Action::kPull && repository && repository->policy &&
                     policy_allows_anonymous_pull(*repository->policy);
  if (public_pull) return std::nullopt;
  if (identity.anonymous) {
    return unauthorized(call, "authentication required", scope_of(call, action));
  }
  return error_reply(call, Status_::forbidden, "DENIED",
                     "the credentials do not allow this on repository " + call.route.name,
                     bj::object{{"name", call.route.name}});
}

void DistributionApi::Impl::handle(Call call, http::Request&& request,
                                   const http::Responder& respond) {
  using beast_http::verb;
  verb method = call.method;
  bool read = method == verb::get || method == verb::head;
  auto not_allowed = [&] {
    respond(error_reply(call, Status_::method_not_allowed, "UNSUPPORTED",
                        "the method is not supported here"));
  };
  switch (call.route.endpoint) {
    case Endpoint::kBase:
      if (!read) return not_allowed();
      return base(call, respond);
    case Endpoint::kToken:
      if (method != verb::get) return not_allowed();
      return token(call, respond);
    case Endpoint::kCatalog:
      if (!read) return not_allowed();
      return catalog(call, respond);
    case Endpoint::kUnknown:
      return respond(error_reply(call, Status_::not_found, "NAME_UNKNOWN",
                                 "no registry endpoint at " + std::string(request.target())));
    default:
      break;
  }
  bool push = method == verb::put || method == verb::delete_ || method == verb::post ||
              method == verb::patch;
  if (auto refused = authorize(call, push ? Action::kPush : Action::kPull)) {
    return respond(std::move(*refused));
  }
  switch (call.route.endpoint) {
    case Endpoint::kManifest:
      if (read) return get_manifest(call, respond);
      if (method == verb::put) return put_manifest(call, std::move(request.body()), respond);
      if (method == verb::delete_) return delete_manifest(call, respond);
      return not_allowed();
    case Endpoint::kBlob:
      if (read) return get_blob(call, respond);
      if (method == verb::delete_) return delete_blob(call, respond);
      return not_allowed();
    case Endpoint::kUpload:
      if (method == verb::get) return upload_status(call, respond);
      if (method == verb::delete_) return cancel_upload(call, respond);
      return not_allowed();
    case Endpoint::kTags:
      if (!read) return not_allowed();
      return tags(call, respond);
    case Endpoint::kReferrers:
      if (!read) return not_allowed();
      return referrers(call, respond);
    default:
      return not_allowed();
  }
}

void DistributionApi::Impl::base(const Call& call, const http::Responder& respond) {
  Call checked = call;
  if (auto refused = authenticate(checked)) return respond(std::move(*refused));
  if (checked.identity.anonymous) return respond(unauthorized(call, "authentication required", ""));
  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, "application/json");
  response.body() = "{}";
  respond(finish(call, std::move(response)));
}

void DistributionApi::Impl::token(Call& call, const http::Responder& respond) {
  TimePoint now = clock.now();
  Identity identity = auth.anonymous(now);
  if (!call.authorization.empty()) {
    auto verified = auth.authenticate(call.authorization, now);
    if (!verified) return respond(unauthorized(call, verified.error().message, ""));
    identity = std::move(*verified);
  }
  BearerToken token = auth.issue_bearer(identity, now);
  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, "application/json");
  response.body() = bj::serialize(bj::object{{"token", token.token},
                                             {"access_token", token.token},
                                             {"expires_in", token.expires_in.count()},
                                             {"issued_at", rfc3339(token.issued_at)}});
  respond(std::move(response));
}

void DistributionApi::Impl::catalog(Call& call, const http::Responder& respond) {
  if (auto refused = authenticate(call)) return respond(std::move(*refused));
  if (call.identity.anonymous) {
    return respond(unauthorized(call, "authentication required", "registry:catalog:*"));
  }
  std::vector<std::string> names;
  for (const Repository& repository :
       state.list_repositories(call.identity.region, call.identity.account_id)) {
    names.push_back(repository.ref.name);
  }
  respond(name_page(call, names, "repositories", {}, "/v2/_catalog"));
}

// ---- manifests ----

void DistributionApi::Impl::get_manifest(const Call& call, const http::Responder& respond) {
  auto selector = manifest_reference(call.route.reference);
  if (!selector) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", selector.error().message));
  }
  auto image = state.find_image(call.ref, *selector);
  if (!image) return respond(reply_for(call, image.error(), Area::kManifest));
  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, image->media_type);
  response.set(kDigestHeader, image->digest.str());
  response.set(beast_http::field::etag, "\"" + image->digest.str() + "\"");
  response.body() = *image->manifest;
  if (!call.head()) state.record_pull(call.ref, image->digest);
  respond(finish(call, std::move(response)));
}

void DistributionApi::Impl::put_manifest(const Call& call, std::string body,
                                         const http::Responder& respond) {
  if (body.size() > options.manifest_limit) {
    return respond(error_reply(call, Status_::payload_too_large, "MANIFEST_INVALID",
                               "the manifest is larger than the limit of " +
                                   std::to_string(options.manifest_limit) + " bytes"));
  }
  auto selector = manifest_reference(call.route.reference);
  if (!selector) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", selector.error().message));
  }
  PutImageRequest request{std::move(body), call.content_type, std::move(selector->tag),
                          std::move(selector->digest)};
  state.put_image(call.ref, std::move(request), [call, respond](Result<PutImageResult> result) {
    if (!result) return respond(reply_for(call, result.error(), Area::kManifest));
    const Image& image = result->image;
    http::Response response = base_response(call, Status_::created);
    response.set(beast_http::field::location,
                 repository_path(call) + "/manifests/" + image.digest.str());
    response.set(kDigestHeader, image.digest.str());
    if (auto subject = image.subject()) response.set("OCI-Subject", subject->str());
    respond(std::move(response));
  });
}

void DistributionApi::Impl::delete_manifest(const Call& call, const http::Responder& respond) {
  auto selector = manifest_reference(call.route.reference);
  if (!selector) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", selector.error().message));
  }
  state.remove_image(call.ref, *selector, {}, [call, respond](Result<RemoveImageResult> result) {
    if (!result) return respond(reply_for(call, result.error(), Area::kManifest));
    respond(base_response(call, Status_::accepted));
  });
}

// ---- blobs ----

void DistributionApi::Impl::get_blob(const Call& call, const http::Responder& respond) {
  auto digest = oci::parse_digest(call.route.reference);
  if (!digest) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", digest.error().message));
  }
  auto linked = state.linked_blob(call.ref, *digest);
  if (!linked) return respond(reply_for(call, linked.error(), Area::kBlob));
  auto unknown = [&] {
    respond(error_reply(call, Status_::not_found, "BLOB_UNKNOWN",
                        "blob " + digest->str() + " is not in repository " + call.route.name,
                        bj::object{{"digest", digest->str()}}));
  };
  if (!*linked) return unknown();
  auto file = blobs.open_blob(*digest);
  if (!file) return unknown();

  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, "application/octet-stream");
  response.set(beast_http::field::accept_ranges, "bytes");
  response.set(kDigestHeader, digest->str());
  response.set(beast_http::field::etag, "\"" + digest->str() + "\"");
  if (call.head()) {
    response.content_length(file->size);
    return respond(http::Reply::header_only(std::move(response)));
  }
  auto range = parse_range(call.range, file->size);
  if (!range) {
    http::Reply reply =
        error_reply(call, Status_::range_not_satisfiable, "BLOB_UNKNOWN", range.error().message);
    reply.response.set(beast_http::field::content_range, "bytes */" + std::to_string(file->size));
    return respond(std::move(reply));
  }
  ByteRange served = range->value_or(ByteRange{0, file->size == 0 ? 0 : file->size - 1});
  uint64_t length = file->size == 0 ? 0 : served.length();
  if (*range) {
    response.result(Status_::partial_content);
    response.set(beast_http::field::content_range, "bytes " + std::to_string(served.first) + "-" +
                                                       std::to_string(served.last) + "/" +
                                                       std::to_string(file->size));
  }
  respond(
      http::Reply(std::move(response), http::FileRange{std::move(file->fd), served.first, length}));
}

void DistributionApi::Impl::delete_blob(const Call& call, const http::Responder& respond) {
  auto digest = oci::parse_digest(call.route.reference);
  if (!digest) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", digest.error().message));
  }
  state.unlink_blob(call.ref, *digest, [call, respond](Status status) {
    if (!status) return respond(reply_for(call, status.error(), Area::kBlob));
    respond(base_response(call, Status_::accepted));
  });
}

// ---- uploads ----

namespace {

std::string owner_of(const RepositoryRef& ref) {
  return ref.region + "/" + ref.account_id + "/" + ref.name;
}

http::Response upload_accepted(const Call& call, const std::string& id, uint64_t size,
                               Status_ status) {
  http::Response response = base_response(call, status);
  response.set(beast_http::field::location, upload_location(call, id));
  response.set(beast_http::field::range, upload_range(size));
  response.set(kUploadUuidHeader, id);
  return response;
}

http::Response blob_created(const Call& call, const oci::Digest& digest) {
  http::Response response = base_response(call, Status_::created);
  response.set(beast_http::field::location, repository_path(call) + "/blobs/" + digest.str());
  response.set(kDigestHeader, digest.str());
  return response;
}

// The upload session a call names, if it belongs to the call's repository.
Result<UploadStatus> owned_upload(const BlobStore& blobs, const Call& call) {
  auto status = blobs.upload_status(call.route.reference);
  if (!status || status->owner != owner_of(call.ref)) {
    return fail(ErrorCode::kUploadNotFound,
                "upload " + call.route.reference + " is not in progress in " + call.route.name);
  }
  return status;
}

// Streams an upload request's body into its session, then finishes the request: a started
// session (202), a chunk taken (202), or a completed blob (201).
class UploadSink final : public http::BodySink {
 public:
  enum class Then { kAccept, kComplete, kMount };

  UploadSink(DistributionApi::Impl& api, Call call, std::optional<http::Reply> refused)
      : api_(api), call_(std::move(call)), refused_(std::move(refused)) {}
  UploadSink(DistributionApi::Impl& api, Call call, UploadWriter writer, Then then,
             std::optional<oci::Digest> digest)
      : api_(api),
        call_(std::move(call)),
        writer_(std::move(writer)),
        then_(then),
        digest_(std::move(digest)) {}
  static std::unique_ptr<UploadSink> mount(DistributionApi::Impl& api, Call call) {
    auto sink = std::make_unique<UploadSink>(api, std::move(call), std::nullopt);
    sink->then_ = Then::kMount;
    return sink;
  }

  Status write(std::string_view piece) override {
    if (refused_) return invalid("the request was refused");
    if (!writer_) return invalid("a mount request has no body");
    return writer_->write(piece);
  }

  void finish(Status received, http::Responder respond) override {
    if (refused_) return respond(std::move(*refused_));
    if (!received) {
      Area area = received.error().code == ErrorCode::kInternal ? Area::kBlob : Area::kUpload;
      return respond(reply_for(call_, received.error(), area));
    }
    if (then_ == Then::kMount) return api_.try_mount(call_, respond);
    if (Status closed = writer_->close(); !closed) {
      return respond(reply_for(call_, closed.error(), Area::kBlob));
    }
    std::string id = writer_->id();
    uint64_t size = writer_->size();
    writer_.reset();  // release the session for the next chunk or the completion
    if (then_ == Then::kAccept) {
      return respond(upload_accepted(call_, id, size, Status_::accepted));
    }
    api_.complete(std::move(call_), std::move(id), std::move(*digest_), std::move(respond));
  }

 private:
  DistributionApi::Impl& api_;
  Call call_;
  std::optional<http::Reply> refused_;
  std::optional<UploadWriter> writer_;
  Then then_ = Then::kAccept;
  std::optional<oci::Digest> digest_;
};

}  // namespace

std::unique_ptr<http::BodySink> DistributionApi::Impl::upload_sink(Call call) {
  using beast_http::verb;
  auto refuse = [&](http::Reply reply) {
    return std::make_unique<UploadSink>(*this, std::move(call), std::move(reply));
  };
  if (auto refused = authorize(call, Action::kPush)) return refuse(std::move(*refused));

  std::optional<oci::Digest> digest;
  if (auto text = call.param("digest")) {
    auto parsed = oci::parse_digest(*text);
    if (!parsed) {
      return refuse(
          error_reply(call, Status_::bad_request, "DIGEST_INVALID", parsed.error().message));
    }
    digest = std::move(*parsed);
  }
  if (call.route.endpoint == Endpoint::kUploadStart) {
    if (call.param("mount") && !digest) return UploadSink::mount(*this, std::move(call));
    auto id = blobs.begin_upload(owner_of(call.ref));
    if (!id) return refuse(reply_for(call, id.error(), Area::kUpload));
    auto writer = blobs.writer(*id);
    if (!writer) return refuse(reply_for(call, writer.error(), Area::kUpload));
    auto then = digest ? UploadSink::Then::kComplete : UploadSink::Then::kAccept;
    return std::make_unique<UploadSink>(*this, std::move(call), std::move(*writer), then,
                                        std::move(digest));
  }

  // PATCH or PUT on a session.
  bool put = call.method == verb::put;
  if (put && !digest) {
    return refuse(error_reply(call, Status_::bad_request, "DIGEST_INVALID",
                              "completing an upload needs ?digest="));
  }
  auto session = owned_upload(blobs, call);
  if (!session) return refuse(reply_for(call, session.error(), Area::kUpload));
  std::optional<uint64_t> offset;
  if (!call.content_range.empty()) {
    auto range = parse_content_range(call.content_range);
    bool consistent = range && (!call.content_length || *call.content_length == range->length());
    if (!consistent || range->first != session->size) {
      http::Reply reply =
          error_reply(call, Status_::range_not_satisfiable, "BLOB_UPLOAD_INVALID",
                      "the chunk " + call.content_range + " does not continue the upload's " +
                          std::to_string(session->size) + " bytes");
      reply.response.set(beast_http::field::location, upload_location(call, session->id));
      reply.response.set(beast_http::field::range, upload_range(session->size));
      reply.response.set(kUploadUuidHeader, session->id);
      return refuse(std::move(reply));
    }
    offset = range->first;
  }
  auto writer = blobs.writer(session->id, offset);
  if (!writer) return refuse(reply_for(call, writer.error(), Area::kUpload));
  auto then = put ? UploadSink::Then::kComplete : UploadSink::Then::kAccept;
  return std::make_unique<UploadSink>(*this, std::move(call), std::move(*writer), then,
                                      std::move(digest));
}

void DistributionApi::Impl::complete(Call call, std::string upload_id, oci::Digest digest,
                                     http::Responder respond) {
  boost::asio::post(io, [this, call = std::move(call), upload_id = std::move(upload_id),
                         digest = std::move(digest), respond = std::move(respond)]() {
    auto size = blobs.complete_upload(upload_id, digest);
    if (!size) return respond(reply_for(call, size.error(), Area::kUpload));
    state.link_blob(call.ref, digest, *size, [call, digest, respond](Status status) {
      if (!status) return respond(reply_for(call, status.error(), Area::kUpload));
      respond(blob_created(call, digest));
    });
  });
}

void DistributionApi::Impl::try_mount(const Call& call, const http::Responder& respond) {
  auto digest = oci::parse_digest(call.param("mount").value_or(""));
  auto from = call.param("from");
  if (!digest || !from || !validate_repository_name(*from)) return start_upload(call, respond);
  // The caller must be able to pull from the source, as from a /v2/<from>/ request.
  Call source = call;
  source.route.name = *from;
  if (authorize(source, Action::kPull)) return start_upload(call, respond);
  auto size = state.linked_blob(source.ref, *digest);
  if (!size || !*size || !blobs.retain(*digest)) return start_upload(call, respond);
  oci::Digest mounted = *digest;
  state.link_blob(call.ref, mounted, **size, [this, call, mounted, respond](Status status) {
    if (!status) return start_upload(call, respond);
    respond(blob_created(call, mounted));
  });
}

void DistributionApi::Impl::start_upload(const Call& call, const http::Responder& respond) {
  auto id = blobs.begin_upload(owner_of(call.ref));
  if (!id) return respond(reply_for(call, id.error(), Area::kUpload));
  respond(upload_accepted(call, *id, 0, Status_::accepted));
}

void DistributionApi::Impl::upload_status(const Call& call, const http::Responder& respond) {
  auto session = owned_upload(blobs, call);
  if (!session) return respond(reply_for(call, session.error(), Area::kUpload));
  respond(upload_accepted(call, session->id, session->size, Status_::no_content));
}

void DistributionApi::Impl::cancel_upload(const Call& call, const http::Responder& respond) {
  auto session = owned_upload(blobs, call);
  if (!session) return respond(reply_for(call, session.error(), Area::kUpload));
  if (auto status = blobs.cancel_upload(session->id); !status) {
    return respond(reply_for(call, status.error(), Area::kUpload));
  }
  respond(base_response(call, Status_::no_content));
}

// ---- tags and referrers ----

void DistributionApi::Impl::tags(const Call& call, const http::Responder& respond) {
  auto tags = state.list_tags(call.ref);
  if (!tags) return respond(reply_for(call, tags.error(), Area::kManifest));
  respond(name_page(call, *tags, "tags", bj::object{{"name", call.route.name}},
                    repository_path(call) + "/tags/list"));
}

void DistributionApi::Impl::referrers(const Call& call, const http::Responder& respond) {
  auto subject = oci::parse_digest(call.route.reference);
  if (!subject) {
    return respond(
        error_reply(call, Status_::bad_request, "DIGEST_INVALID", subject.error().message));
  }
  auto images = state.referrers(call.ref, *subject);
  if (!images) return respond(reply_for(call, images.error(), Area::kManifest));
  auto filter = call.param("artifactType");
  bj::array manifests;
  for (const Image& image : *images) {
    std::string artifact_type = image.parsed->effective_artifact_type();
    if (filter && artifact_type != *filter) continue;
    bj::object descriptor{{"mediaType", image.media_type},
                          {"digest", image.digest.str()},
                          {"size", image.manifest->size()}};
    if (!artifact_type.empty()) descriptor["artifactType"] = artifact_type;
    if (!image.parsed->annotations.empty()) {
      bj::object annotations;
      for (const auto& [key, value] : image.parsed->annotations) annotations[key] = value;
      descriptor["annotations"] = std::move(annotations);
    }
    manifests.push_back(std::move(descriptor));
  }
  http::Response response = base_response(call, Status_::ok);
  response.set(beast_http::field::content_type, oci::kOciIndex);
  if (filter) response.set("OCI-Filters-Applied", "artifactType");
  response.body() = bj::serialize(bj::object{
      {"schemaVersion", 2}, {"mediaType", oci::kOciIndex}, {"manifests", std::move(manifests)}});
  respond(finish(call, std::move(response)));
}

// ---- DistributionApi ----

DistributionApi::DistributionApi(RegistryState& state, BlobStore& blobs, const RegistryAuth& auth,
                                 const Clock& clock, DistributionOptions options)
    : impl_(std::make_unique<Impl>(state, blobs, auth, clock, std::move(options))) {}

DistributionApi::~DistributionApi() {
  stop();
}

void DistributionApi::stop() {
  impl_->io.join();
}

http::Response DistributionApi::payload_too_large(const http::RequestHeader& header,
                                                  std::size_t limit) {
  Call call = read_call(header);
  call.method = beast_http::verb::get;  // the error always has a body
  std::string message =
      "the request body is larger than the limit of " + std::to_string(limit) + " bytes";
  return error_reply(call, Status_::payload_too_large, "MANIFEST_INVALID", std::move(message))
      .response;
}

void DistributionApi::handle(http::Request&& request, http::Responder respond) {
  Call call = read_call(request.base());
  impl_->handle(std::move(call), std::move(request), respond);
}

std::unique_ptr<http::BodySink> DistributionApi::stream_body(const http::RequestHeader& header) {
  using beast_http::verb;
  Call call = read_call(header);
  bool upload_write =
      (call.route.endpoint == Endpoint::kUploadStart && call.method == verb::post) ||
      (call.route.endpoint == Endpoint::kUpload &&
       (call.method == verb::patch || call.method == verb::put));
  if (!upload_write) return nullptr;
  return impl_->upload_sink(std::move(call));
}

}  // namespace wharf::registry
