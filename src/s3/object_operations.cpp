// The object operations: Put, Get/Head (ranges, conditionals), Delete, DeleteObjects, Copy and
// the two listings.
#include <memory>

#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "s3/s3_impl.hpp"
#include "s3/xml.hpp"

namespace wharf::s3 {

namespace {

constexpr std::size_t kMaxKeys = 1000;
constexpr std::size_t kMaxDeleteKeys = 1000;

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

// "bytes=0-9", "bytes=5-", "bytes=-3". nullopt: ignore the header (as S3 does for forms it does
// not understand); an error: InvalidRange.
Result<std::optional<ByteRange>> parse_range(std::string_view header, uint64_t size) {
  header = trim(header);
  if (!header.starts_with("bytes=") || header.find(',') != std::string_view::npos) {
    return std::nullopt;
  }
  auto spec = header.substr(6);
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first_text = spec.substr(0, dash);
  auto last_text = spec.substr(dash + 1);
  auto unsatisfiable = [&] {
    return s3_error("InvalidRange", "The requested range is not satisfiable");
  };
  if (first_text.empty()) {
    auto suffix = parse_decimal<uint64_t>(last_text);
    if (!suffix) return std::nullopt;
    if (*suffix == 0 || size == 0) return unsatisfiable();
    uint64_t length = std::min(*suffix, size);
    return ByteRange{size - length, length};
  }
  auto first = parse_decimal<uint64_t>(first_text);
  if (!first) return std::nullopt;
  if (*first >= size) return unsatisfiable();
  uint64_t last = size - 1;
  if (!last_text.empty()) {
    auto given = parse_decimal<uint64_t>(last_text);
    if (!given || *given < *first) return std::nullopt;
    last = std::min(*given, size - 1);
  }
  return ByteRange{*first, last - *first + 1};
}

bool etag_matches(std::string_view condition, std::string_view etag) {
  for (auto candidate : split(condition, ',')) {
    candidate = trim(candidate);
    if (candidate == "*" || candidate == quoted_etag(etag) || candidate == etag) return true;
  }
  return false;
}

// 304 or 412 when a conditional header says so.
std::optional<HttpStatus> failed_condition(const Call& call, const ObjectRecord& object) {
  auto modified = std::chrono::floor<std::chrono::seconds>(object.last_modified);
  if (auto match = call.header("if-match"); match && !etag_matches(*match, object.etag)) {
    return HttpStatus::precondition_failed;
  }
  auto unmodified_since = call.header("if-unmodified-since");
  if (!call.header("if-match") && unmodified_since) {
    auto since = parse_http_date(*unmodified_since);
    if (since && modified > *since) return HttpStatus::precondition_failed;
  }
  if (auto none_match = call.header("if-none-match")) {
    if (etag_matches(*none_match, object.etag)) return HttpStatus::not_modified;
    return std::nullopt;
  }
  if (auto modified_since = call.header("if-modified-since")) {
    auto since = parse_http_date(*modified_since);
    if (since && modified <= *since) return HttpStatus::not_modified;
  }
  return std::nullopt;
}

// GetObject's response-* overrides: the query parameter and the header it sets.
constexpr std::pair<std::string_view, std::string_view> kOverrides[] = {
    {"response-content-type", "Content-Type"},
    {"response-content-language", "Content-Language"},
    {"response-expires", "Expires"},
    {"response-cache-control", "Cache-Control"},
    {"response-content-disposition", "Content-Disposition"},
    {"response-content-encoding", "Content-Encoding"}};

// The overrides become response headers: none may hold a line break, or it would split the
// response.
Status check_overrides(const Call& call) {
  for (const auto& [param, name] : kOverrides) {
    auto value = call.param(param);
    if (value && value->find_first_of("\r\n") != std::string::npos) {
      return s3_error("InvalidArgument",
                      std::string(param) + " must not contain a line break (CR or LF).");
    }
  }
  return {};
}

void set_object_headers(http::Response& response, const Call& call, const ObjectRecord& object) {
  for (const auto& [name, value] : object.headers) response.set(name, value);
  for (const auto& [name, value] : object.metadata) response.set("x-amz-meta-" + name, value);
  response.set(beast_http::field::etag, quoted_etag(object.etag));
  response.set(beast_http::field::last_modified, http_date(object.last_modified));
  response.set(beast_http::field::accept_ranges, "bytes");
  for (const auto& [param, name] : kOverrides) {
    if (auto value = call.param(param)) response.set(name, *value);
  }
}

// Keys and prefixes in listings, URL-encoded when the client asked for encoding-type=url.
std::string listed(std::string_view text, bool url_encoded) {
  return url_encoded ? uri_encode(text, "/") : std::string(text);
}

Result<std::size_t> max_keys(const Call& call, std::string_view param) {
  auto text = call.param(param);
  if (!text) return kMaxKeys;
  auto value = parse_decimal<uint64_t>(*text);
  if (!value) {
    return s3_error("InvalidArgument", "Provided " + std::string(param) +
                                           " not an integer or "
                                           "within integer range");
  }
  return std::min<std::size_t>(*value, kMaxKeys);
}

}  // namespace

// ---- PutObject ----

void S3Api::Impl::finish_put_object(Call call, BodyFiles::Temp temp, BodyHasher hasher,
                                    uint64_t size, http::Responder respond) {
  if (auto installed = files_.install(temp); !installed) {
    files_.remove_temp(temp.id);
    return respond(error_reply(call, installed.error()));
  }
  ObjectRecord object{call.key,
                      size,
                      to_hex(hasher.md5_raw()),
                      clock_.now(),
                      stored_headers(call),
                      user_metadata(call),
                      temp.id};
  auto reply = [](const Call& call, const ObjectRecord& object) {
    auto response = empty_response(call, HttpStatus::ok);
    response.set(beast_http::field::etag, quoted_etag(object.etag));
    for (const auto& [name, value] : call.headers) {
      if (checksum_algorithm(name)) response.set(name, value);
    }
    return response;
  };
  commit_object(std::move(call), std::move(object), reply, {}, {}, std::move(respond));
}

void S3Api::Impl::commit_object(
    Call call, ObjectRecord object,
    std::function<http::Response(const Call&, const ObjectRecord&)> reply,
    std::vector<store::Mutation> also, std::vector<std::string> also_remove,
    http::Responder respond, std::function<void()> undo) {
  {
    std::lock_guard lock(mutex_);
    auto bucket = buckets_.find(call.bucket);
    if (bucket == buckets_.end()) {
      files_.remove(object.file);
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
    ++bucket->second.pending_writes;
  }
  also.push_back({kObjectKind, object_store_key(call.bucket, call.key), encode(object)});
  commit(std::move(also),
         [this, call = std::move(call), object = std::move(object), reply = std::move(reply),
          also_remove = std::move(also_remove), respond = std::move(respond),
          undo = std::move(undo)](Status status) mutable {
           std::optional<std::string> replaced;
           {
             std::lock_guard lock(mutex_);
             auto bucket = buckets_.find(call.bucket);
             if (bucket != buckets_.end()) {
               --bucket->second.pending_writes;
               if (status) {
                 auto [entry, fresh] = bucket->second.objects.try_emplace(call.key, object);
                 if (!fresh) {
                   replaced = entry->second.file;
                   entry->second = object;
                 }
               }
             }
           }
           if (!status) {
             files_.remove(object.file);
             if (undo) undo();
             return respond(error_reply(call, status.error()));
           }
           // The old body is no longer named by any record: remove it now it is committed.
           if (replaced) files_.remove(*replaced);
           for (const auto& file : also_remove) files_.remove(file);
           respond(reply(call, object));
         });
}

// ---- GetObject, HeadObject ----

void S3Api::Impl::get_object(const Call& call, http::Responder respond, bool head) {
  if (auto checked = check_overrides(call); !checked) {
    return respond(error_reply(call, checked.error()));
  }
  // An overwrite may remove the file between the lookup and the open: look again once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    ObjectRecord object;
    {
      std::lock_guard lock(mutex_);
      auto bucket = buckets_.find(call.bucket);
      if (bucket == buckets_.end()) {
        return respond(error_reply(call, no_such_bucket(call.bucket).error()));
      }
      auto found = bucket->second.objects.find(call.key);
      if (found == bucket->second.objects.end()) {
        return respond(error_reply(call, no_such_key().error()));
      }
      object = found->second;
    }
    if (auto status = failed_condition(call, object)) {
      if (*status == HttpStatus::precondition_failed) {
        return respond(error_reply(
            call, s3_error("PreconditionFailed",
                           "At least one of the pre-conditions you specified did not hold")
                      .error()));
      }
      auto response = empty_response(call, *status);
      response.set(beast_http::field::etag, quoted_etag(object.etag));
      response.set(beast_http::field::last_modified, http_date(object.last_modified));
      return respond(http::Reply::header_only(std::move(response)));
    }
    ByteRange range{0, object.size};
    auto status = HttpStatus::ok;
    if (auto header = call.header("range")) {
      auto parsed = parse_range(*header, object.size);
      if (!parsed) {
        auto reply = error_reply(call, parsed.error());
        reply.response.set(beast_http::field::content_range,
                           "bytes */" + std::to_string(object.size));
        return respond(std::move(reply));
      }
      if (*parsed) {
        range = **parsed;
        status = HttpStatus::partial_content;
      }
    }
    auto response = empty_response(call, status);
    set_object_headers(response, call, object);
    if (status == HttpStatus::partial_content) {
      response.set(beast_http::field::content_range,
                   "bytes " + std::to_string(range.first) + "-" +
                       std::to_string(range.first + range.length - 1) + "/" +
                       std::to_string(object.size));
    }
    if (head) {
      response.content_length(range.length);
      return respond(http::Reply::header_only(std::move(response)));
    }
    auto fd = files_.open(object.file);
    if (!fd) continue;
    return respond(http::Reply(std::move(response),
                               http::FileRange{std::move(*fd), range.first, range.length}));
  }
  respond(error_reply(call, no_such_key().error()));
}

// ---- DeleteObject, DeleteObjects ----

void S3Api::Impl::delete_object(Call call, http::Responder respond) {
  {
    std::lock_guard lock(mutex_);
    auto bucket = buckets_.find(call.bucket);
    if (bucket == buckets_.end()) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
    if (!bucket->second.objects.contains(call.key)) {
      return respond(empty_response(call, HttpStatus::no_content));
    }
  }
  std::vector<store::Mutation> mutations{
      {kObjectKind, object_store_key(call.bucket, call.key), std::nullopt}};
  commit(std::move(mutations),
         [this, call = std::move(call), respond = std::move(respond)](Status status) {
           if (!status) return respond(error_reply(call, status.error()));
           std::optional<std::string> file;
           {
             std::lock_guard lock(mutex_);
             auto bucket = buckets_.find(call.bucket);
             auto found = bucket == buckets_.end() ? decltype(bucket->second.objects.end()){}
                                                   : bucket->second.objects.find(call.key);
             if (bucket != buckets_.end() && found != bucket->second.objects.end()) {
               file = found->second.file;
               bucket->second.objects.erase(found);
             }
           }
           if (file) files_.remove(*file);
           respond(empty_response(call, HttpStatus::no_content));
         });
}

void S3Api::Impl::delete_objects(Call call, const std::string& body, http::Responder respond) {
  auto document = parse_xml(body);
  if (!document) return respond(error_reply(call, document.error()));
  bool quiet = document->child("Quiet") && lower(trim(document->child("Quiet")->text)) == "true";
  std::vector<std::string> keys;
  for (const auto* object : document->children_named("Object")) {
    const auto* key = object->child("Key");
    if (key == nullptr) return respond(error_reply(call, parse_xml("<").error()));
    keys.push_back(key->text);
  }
  if (keys.empty() || keys.size() > kMaxDeleteKeys) {
    return respond(
        error_reply(call, s3_error("MalformedXML",
                                   "The XML you provided was not well-formed or did not "
                                   "validate against our published schema: name 1 to 1000 "
                                   "objects.")
                              .error()));
  }
  {
    std::lock_guard lock(mutex_);
    if (!buckets_.contains(call.bucket)) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
  }
  std::vector<store::Mutation> mutations;
  for (const auto& key : keys) {
    mutations.push_back({kObjectKind, object_store_key(call.bucket, key), std::nullopt});
  }
  commit(std::move(mutations), [this, call = std::move(call), keys = std::move(keys), quiet,
                                respond = std::move(respond)](Status status) {
    if (!status) return respond(error_reply(call, status.error()));
    std::vector<std::string> files;
    {
      std::lock_guard lock(mutex_);
      auto bucket = buckets_.find(call.bucket);
      for (const auto& key : keys) {
        if (bucket == buckets_.end()) break;
        auto found = bucket->second.objects.find(key);
        if (found == bucket->second.objects.end()) continue;
        files.push_back(found->second.file);
        bucket->second.objects.erase(found);
      }
    }
    for (const auto& file : files) files_.remove(file);
    XmlWriter xml;
    xml.open("DeleteResult", true);
    for (const auto& key : keys) {
      if (!quiet) xml.open("Deleted").element("Key", key).close("Deleted");
    }
    xml.close("DeleteResult");
    respond(xml_response(call, HttpStatus::ok, xml.str()));
  });
}

// ---- ListObjects, ListObjectsV2 ----

void S3Api::Impl::list_objects(const Call& call, http::Responder respond, bool v2) {
  auto page_size = max_keys(call, "max-keys");
  if (!page_size) return respond(error_reply(call, page_size.error()));
  auto encoding = call.param("encoding-type");
  if (encoding && *encoding != "url") {
    return respond(error_reply(call, s3_error("InvalidArgument",
                                              "Invalid Encoding Method "
                                              "specified in Request")
                                         .error()));
  }
  bool url = encoding.has_value();
  ListQuery query{call.param("prefix").value_or(""), call.param("delimiter").value_or(""), "",
                  *page_size};
  auto token = call.param("continuation-token");
  if (v2 && token) {
    auto decoded = base64url_decode(*token);
    if (!decoded) {
      return respond(error_reply(
          call,
          s3_error("InvalidArgument", "The continuation token provided is incorrect").error()));
    }
    query.after = *decoded;
  } else if (v2) {
    query.after = call.param("start-after").value_or("");
  } else {
    query.after = call.param("marker").value_or("");
  }

  XmlWriter xml;
  xml.open(v2 ? "ListBucketResult" : "ListBucketResult", true).element("Name", call.bucket);
  xml.element("Prefix", listed(query.prefix, url));
  if (!query.delimiter.empty()) xml.element("Delimiter", listed(query.delimiter, url));
  xml.element("MaxKeys", std::to_string(query.max_keys));
  if (url) xml.element("EncodingType", "url");
  std::lock_guard lock(mutex_);
  auto bucket = buckets_.find(call.bucket);
  if (bucket == buckets_.end()) {
    return respond(error_reply(call, no_such_bucket(call.bucket).error()));
  }
  ListPage page = s3::list_objects(bucket->second.objects, query);
  xml.element("IsTruncated", page.truncated ? "true" : "false");
  if (v2) {
    xml.element("KeyCount", std::to_string(page.contents.size() + page.common_prefixes.size()));
    if (token) xml.element("ContinuationToken", *token);
    if (auto start_after = call.param("start-after")) {
      xml.element("StartAfter", listed(*start_after, url));
    }
    if (page.truncated) xml.element("NextContinuationToken", base64url_encode(page.last));
  } else {
    xml.element("Marker", listed(query.after, url));
    if (page.truncated) xml.element("NextMarker", listed(page.last, url));
  }
  for (const auto* object : page.contents) {
    xml.open("Contents")
        .element("Key", listed(object->key, url))
        .element("LastModified", iso8601_millis(object->last_modified))
        .element("ETag", quoted_etag(object->etag))
        .element("Size", std::to_string(object->size))
        .element("StorageClass", "STANDARD");
    if (!v2 || call.param("fetch-owner") == "true") {
      xml.open("Owner")
          .element("ID", options_.account_id)
          .element("DisplayName", "wharf")
          .close("Owner");
    }
    xml.close("Contents");
  }
  for (const auto& prefix : page.common_prefixes) {
    xml.open("CommonPrefixes").element("Prefix", listed(prefix, url)).close("CommonPrefixes");
  }
  xml.close("ListBucketResult");
  respond(xml_response(call, HttpStatus::ok, xml.str()));
}

// ---- CopyObject ----

Result<std::pair<std::string, std::string>> copy_source(const Call& call) {
  auto header = call.header("x-amz-copy-source").value_or("");
  std::string source = uri_decode(header.substr(0, header.find('?')));
  if (source.starts_with('/')) source.erase(0, 1);
  auto slash = source.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == source.size()) {
    return s3_error("InvalidArgument",
                    "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  }
  return std::pair{source.substr(0, slash), source.substr(slash + 1)};
}

Result<S3Api::Impl::OpenSource> S3Api::Impl::open_source(const std::string& bucket,
                                                         const std::string& key) {
  auto found_bucket = buckets_.find(bucket);
  if (found_bucket == buckets_.end()) return no_such_bucket(bucket);
  auto found = found_bucket->second.objects.find(key);
  if (found == found_bucket->second.objects.end()) return no_such_key();
  auto opened = files_.open_all({found->second.file});
  if (!opened) return std::unexpected(opened.error());
  return OpenSource{found->second, std::move(*opened)};
}

void S3Api::Impl::copy_object(Call call, http::Responder respond) {
  if (!call.header("x-amz-copy-source")) {
    return respond(
        error_reply(call, s3_error("InvalidRequest", "PutObject's body did not stream").error()));
  }
  auto source = copy_source(call);
  if (!source) return respond(error_reply(call, source.error()));
  const auto& [source_bucket, source_key] = *source;
  bool replace = call.header("x-amz-metadata-directive") == "REPLACE";
  if (source_bucket == call.bucket && source_key == call.key && !replace) {
    return respond(error_reply(
        call, s3_error("InvalidRequest",
                       "This copy request is illegal because it is trying to copy an object to "
                       "itself without changing the object's metadata, storage class, website "
                       "redirect location or encryption attributes.")
                  .error()));
  }
  ObjectRecord object;
  // Shared: the off-loop task must be copyable.
  auto source_body = std::make_shared<std::vector<BodyFiles::OpenBody>>();
  {
    std::lock_guard lock(mutex_);
    if (!buckets_.contains(call.bucket)) {
      return respond(error_reply(call, no_such_bucket(source_bucket).error()));
    }
    auto source = open_source(source_bucket, source_key);
    if (!source) return respond(error_reply(call, source.error()));
    object = std::move(source->object);
    *source_body = std::move(source->body);
  }
  if (replace) {
    object.headers = stored_headers(call);
    object.metadata = user_metadata(call);
  }
  object.key = call.key;
  object.last_modified = clock_.now();
  off_loop([this, call = std::move(call), object = std::move(object),
            source_body = std::move(source_body), respond = std::move(respond)]() mutable {
    auto copied = files_.concatenate(*source_body);
    if (!copied) return respond(error_reply(call, copied.error()));
    object.file = *copied;
    auto reply = [](const Call& call, const ObjectRecord& object) {
      XmlWriter xml;
      xml.open("CopyObjectResult", true)
          .element("LastModified", iso8601_millis(object.last_modified))
          .element("ETag", quoted_etag(object.etag))
          .close("CopyObjectResult");
      return xml_response(call, HttpStatus::ok, xml.str());
    };
    commit_object(std::move(call), std::move(object), reply, {}, {}, std::move(respond));
  });
}

}  // namespace wharf::s3
