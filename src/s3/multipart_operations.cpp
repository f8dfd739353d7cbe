// The multipart upload operations: Create, UploadPart (its body streamed by the sink), Complete,
// Abort, ListParts, ListMultipartUploads, and the expiry of abandoned uploads.
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "s3/multipart.hpp"
#include "s3/s3_impl.hpp"
#include "s3/xml.hpp"

namespace wharf::s3 {

namespace {

Result<std::vector<RequestedPart>> requested_parts(const std::string& body) {
  auto document = parse_xml(body);
  if (!document) return std::unexpected(document.error());
  std::vector<RequestedPart> out;
  for (const auto* part : document->children_named("Part")) {
    const auto* number = part->child("PartNumber");
    const auto* etag = part->child("ETag");
    auto parsed = number ? parse_decimal<int>(trim(number->text)) : std::nullopt;
    if (!parsed || etag == nullptr) {
      return s3_error("MalformedXML",
                      "The XML you provided was not well-formed or did not "
                      "validate against our published schema: every Part needs "
                      "a PartNumber and an ETag.");
    }
    out.push_back({*parsed, etag->text});
  }
  return out;
}

}  // namespace

S3Api::Impl::Upload* S3Api::Impl::find_upload(const Call& call) {
  auto found = uploads_.find(call.param("uploadId").value_or(""));
  if (found == uploads_.end() || found->second.record.bucket != call.bucket ||
      found->second.record.key != call.key) {
    return nullptr;
  }
  return &found->second;
}

std::vector<store::Mutation> S3Api::Impl::upload_removal(const Upload& upload) const {
  std::vector<store::Mutation> out{{kUploadKind, upload.record.id, std::nullopt}};
  for (const auto& [number, part] : upload.parts) {
    out.push_back({kPartKind, part_store_key(upload.record.id, number), std::nullopt});
  }
  return out;
}

void S3Api::Impl::create_multipart_upload(Call call, http::Responder respond) {
  expire_uploads();
  {
    std::lock_guard lock(mutex_);
    if (!buckets_.contains(call.bucket)) {
      return respond(error_reply(call, no_such_bucket(call.bucket).error()));
    }
  }
  UploadRecord record{base64url_encode(random_bytes(33)),
                      call.bucket,
                      call.key,
                      clock_.now(),
                      stored_headers(call),
                      user_metadata(call)};
  commit({{kUploadKind, record.id, encode(record)}},
         [this, call = std::move(call), record, respond = std::move(respond)](Status status) {
           if (!status) return respond(error_reply(call, status.error()));
           {
             std::lock_guard lock(mutex_);
             uploads_[record.id].record = record;
           }
           XmlWriter xml;
           xml.open("InitiateMultipartUploadResult", true)
               .element("Bucket", record.bucket)
               .element("Key", record.key)
               .element("UploadId", record.id)
               .close("InitiateMultipartUploadResult");
           respond(xml_response(call, HttpStatus::ok, xml.str()));
         });
}

void S3Api::Impl::finish_upload_part(Call call, BodyFiles::Temp temp, BodyHasher hasher,
                                     uint64_t size, http::Responder respond, bool copied) {
  auto number = parse_decimal<int>(call.param("partNumber").value_or(""));
  if (!number || *number < 1 || *number > kMaxPartNumber) {
    files_.remove_temp(temp.id);
    return respond(error_reply(
        call,
        s3_error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
            .error()));
  }
  if (auto installed = files_.install(temp); !installed) {
    files_.remove_temp(temp.id);
    return respond(error_reply(call, installed.error()));
  }
  std::string upload_id = call.param("uploadId").value_or("");
  PartRecord part{*number, size, to_hex(hasher.md5_raw()), clock_.now(), temp.id};
  {
    std::lock_guard lock(mutex_);
    if (find_upload(call) == nullptr) {
      files_.remove(part.file);
      return respond(error_reply(call, no_such_upload().error()));
    }
  }
  commit({{kPartKind, part_store_key(upload_id, part.number), encode(part)}},
         [this, call = std::move(call), upload_id, part, copied,
          respond = std::move(respond)](Status status) {
           if (!status) {
             files_.remove(part.file);
             return respond(error_reply(call, status.error()));
           }
           std::optional<std::string> replaced;
           bool orphaned = false;
           {
             std::lock_guard lock(mutex_);
             auto upload = uploads_.find(upload_id);
             orphaned = upload == uploads_.end();
             if (!orphaned) {
               auto [entry, fresh] = upload->second.parts.try_emplace(part.number, part);
               if (!fresh) replaced = std::exchange(entry->second, part).file;
             }
           }
           // Completed or aborted meanwhile: the part's record is left for the next start's
           // sweep to ignore, its file removed now.
           if (orphaned) files_.remove(part.file);
           if (replaced) files_.remove(*replaced);
           if (copied) {
             XmlWriter xml;
             xml.open("CopyPartResult", true)
                 .element("LastModified", iso8601_millis(part.last_modified))
                 .element("ETag", quoted_etag(part.etag))
                 .close("CopyPartResult");
             return respond(xml_response(call, HttpStatus::ok, xml.str()));
           }
           auto response = empty_response(call, HttpStatus::ok);
           response.set(beast_http::field::etag, quoted_etag(part.etag));
           respond(std::move(response));
         });
}

namespace {

// x-amz-copy-source-range "bytes=FIRST-LAST" (inclusive) within an object of `size` bytes, as an
// offset and a length; absent: the whole object.
Result<std::pair<uint64_t, uint64_t>> copy_range(const Call& call, uint64_t size) {
  auto header = call.header("x-amz-copy-source-range");
  if (!header) return std::pair<uint64_t, uint64_t>{0, size};
  std::string_view text = *header;
  auto dash = text.find('-');
  std::optional<uint64_t> first;
  std::optional<uint64_t> last;
  if (text.starts_with("bytes=") && dash != std::string_view::npos) {
    first = parse_decimal<uint64_t>(text.substr(6, dash - 6));
    last = parse_decimal<uint64_t>(text.substr(dash + 1));
  }
  if (!first || !last) {
    return s3_error("InvalidArgument",
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where "
                    "first and last are the zero-based offsets of the first and last bytes to "
                    "copy");
  }
  if (*first > *last || *last >= size) {
    return s3_error("InvalidArgument", "Range specified is not valid for source object of size: " +
                                           std::to_string(size));
  }
  return std::pair<uint64_t, uint64_t>{*first, *last - *first + 1};
}

// Copies `length` bytes at `offset` of `from` into `temp`, hashing them.
Status copy_range_into(BodyFiles& files, int from, uint64_t offset, uint64_t length,
                       BodyFiles::Temp& temp, BodyHasher& hasher) {
  std::string buffer(1 << 20, '\0');
  while (length > 0) {
    auto wanted = static_cast<std::size_t>(std::min<uint64_t>(length, buffer.size()));
    ssize_t got = ::pread(from, buffer.data(), wanted, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return fail(ErrorCode::kInternal, "reading the copy source failed");
    std::string_view piece(buffer.data(), static_cast<std::size_t>(got));
    hasher.update(piece);
    if (auto written = files.write(temp, piece); !written) return written;
    offset += static_cast<uint64_t>(got);
    length -= static_cast<uint64_t>(got);
  }
  return {};
}

}  // namespace

void S3Api::Impl::upload_part_copy(Call call, http::Responder respond) {
  auto source = copy_source(call);
  if (!source) return respond(error_reply(call, source.error()));
  auto body = std::make_shared<std::vector<BodyFiles::OpenBody>>();  // copyable task
  std::pair<uint64_t, uint64_t> range;
  {
    std::lock_guard lock(mutex_);
    if (find_upload(call) == nullptr) return respond(error_reply(call, no_such_upload().error()));
    auto opened = open_source(source->first, source->second);
    if (!opened) return respond(error_reply(call, opened.error()));
    auto wanted = copy_range(call, opened->object.size);
    if (!wanted) return respond(error_reply(call, wanted.error()));
    range = *wanted;
    *body = std::move(opened->body);
  }
  off_loop([this, call = std::move(call), body, range, respond = std::move(respond)]() mutable {
    auto temp = files_.create();
    if (!temp) return respond(error_reply(call, temp.error()));
    BodyHasher hasher(false, std::nullopt);
    auto copied =
        copy_range_into(files_, body->front().fd.get(), range.first, range.second, *temp, hasher);
    if (!copied) {
      files_.remove_temp(temp->id);
      return respond(error_reply(call, copied.error()));
    }
    hasher.finish();
    finish_upload_part(std::move(call), std::move(*temp), std::move(hasher), range.second,
                       std::move(respond), true);
  });
}

void S3Api::Impl::complete_multipart_upload(Call call, const std::string& body,
                                            http::Responder respond) {
  auto requested = requested_parts(body);
  if (!requested) return respond(error_reply(call, requested.error()));
  ObjectRecord object;
  // Shared: the off-loop task must be copyable.
  auto part_files = std::make_shared<std::vector<BodyFiles::OpenBody>>();
  std::vector<store::Mutation> removal;
  {
    std::lock_guard lock(mutex_);
    Upload* upload = find_upload(call);
    if (upload == nullptr) return respond(error_reply(call, no_such_upload().error()));
    auto parts = select_parts(*requested, upload->parts);
    if (!parts) return respond(error_reply(call, parts.error()));
    std::vector<std::string> part_names;
    for (const auto* part : *parts) {
      part_names.push_back(part->file);
      object.size += part->size;
    }
    object.etag = multipart_etag(*parts);
    object.headers = upload->record.headers;
    object.metadata = upload->record.metadata;
    removal = upload_removal(*upload);
    // Opened now: a part uploaded again meanwhile replaces (and removes) its file.
    auto opened = files_.open_all(part_names);
    if (!opened) return respond(error_reply(call, opened.error()));
    *part_files = std::move(*opened);
  }
  object.key = call.key;
  off_loop([this, call = std::move(call), object = std::move(object),
            part_files = std::move(part_files), removal = std::move(removal),
            respond = std::move(respond)]() mutable {
    auto assembled = files_.concatenate(*part_files);
    if (!assembled) return respond(error_reply(call, assembled.error()));
    object.file = *assembled;
    object.last_modified = clock_.now();
    std::vector<std::string> unused_parts;
    std::shared_ptr<Upload> taken;
    {
      std::lock_guard lock(mutex_);
      Upload* upload = find_upload(call);
      if (upload == nullptr) {
        files_.remove(object.file);
        return respond(error_reply(call, no_such_upload().error()));
      }
      for (const auto& [number, part] : upload->parts) unused_parts.push_back(part.file);
      taken = std::make_shared<Upload>(std::move(*upload));
      uploads_.erase(taken->record.id);
    }
    // A failed commit leaves the upload as it was, so that the client's retry can complete it.
    auto undo = [this, taken] {
      std::lock_guard lock(mutex_);
      uploads_.try_emplace(taken->record.id, *taken);
    };
    auto reply = [](const Call& call, const ObjectRecord& object) {
      XmlWriter xml;
      xml.open("CompleteMultipartUploadResult", true)
          .element("Location", "/" + call.bucket + "/" + uri_encode(call.key, "/"))
          .element("Bucket", call.bucket)
          .element("Key", call.key)
          .element("ETag", quoted_etag(object.etag))
          .close("CompleteMultipartUploadResult");
      return xml_response(call, HttpStatus::ok, xml.str());
    };
    commit_object(std::move(call), std::move(object), reply, std::move(removal),
                  std::move(unused_parts), std::move(respond), undo);
  });
}

void S3Api::Impl::abort_multipart_upload(Call call, http::Responder respond) {
  std::vector<store::Mutation> removal;
  std::vector<std::string> part_files;
  std::shared_ptr<Upload> taken;
  {
    std::lock_guard lock(mutex_);
    Upload* upload = find_upload(call);
    if (upload == nullptr) return respond(error_reply(call, no_such_upload().error()));
    removal = upload_removal(*upload);
    for (const auto& [number, part] : upload->parts) part_files.push_back(part.file);
    taken = std::make_shared<Upload>(std::move(*upload));
    uploads_.erase(taken->record.id);
  }
  commit(std::move(removal), [this, call = std::move(call), part_files = std::move(part_files),
                              taken, respond = std::move(respond)](Status status) {
    if (!status) {
      // Still stored: still there for the client's retry.
      std::lock_guard lock(mutex_);
      uploads_.try_emplace(taken->record.id, *taken);
      return respond(error_reply(call, status.error()));
    }
    for (const auto& file : part_files) files_.remove(file);
    respond(empty_response(call, HttpStatus::no_content));
  });
}

void S3Api::Impl::list_parts(const Call& call, http::Responder respond) {
  int marker = parse_decimal<int>(call.param("part-number-marker").value_or("0")).value_or(0);
  int max_parts = std::clamp(
      parse_decimal<int>(call.param("max-parts").value_or("1000")).value_or(1000), 0, 1000);
  XmlWriter xml;
  std::lock_guard lock(mutex_);
  Upload* upload = find_upload(call);
  if (upload == nullptr) return respond(error_reply(call, no_such_upload().error()));
  xml.open("ListPartsResult", true)
      .element("Bucket", call.bucket)
      .element("Key", call.key)
      .element("UploadId", upload->record.id)
      .element("PartNumberMarker", std::to_string(marker))
      .element("MaxParts", std::to_string(max_parts))
      .element("StorageClass", "STANDARD");
  int listed = 0;
  int last = marker;
  bool truncated = false;
  std::string parts;
  XmlWriter part_xml;
  for (auto part = upload->parts.upper_bound(marker); part != upload->parts.end(); ++part) {
    if (listed == max_parts) {
      truncated = true;
      break;
    }
    ++listed;
    last = part->first;
    xml.open("Part")
        .element("PartNumber", std::to_string(part->first))
        .element("LastModified", iso8601_millis(part->second.last_modified))
        .element("ETag", quoted_etag(part->second.etag))
        .element("Size", std::to_string(part->second.size))
        .close("Part");
  }
  xml.element("NextPartNumberMarker", std::to_string(last))
      .element("IsTruncated", truncated ? "true" : "false")
      .close("ListPartsResult");
  respond(xml_response(call, HttpStatus::ok, xml.str()));
}

void S3Api::Impl::list_multipart_uploads(const Call& call, http::Responder respond) {
  std::string prefix = call.param("prefix").value_or("");
  XmlWriter xml;
  xml.open("ListMultipartUploadsResult", true)
      .element("Bucket", call.bucket)
      .element("KeyMarker", "")
      .element("UploadIdMarker", "")
      .element("Prefix", prefix)
      .element("MaxUploads", "1000")
      .element("IsTruncated", "false");
  std::lock_guard lock(mutex_);
  if (!buckets_.contains(call.bucket)) {
    return respond(error_reply(call, no_such_bucket(call.bucket).error()));
  }
  for (const auto& [id, upload] : uploads_) {
    if (upload.record.bucket != call.bucket || !upload.record.key.starts_with(prefix)) continue;
    xml.open("Upload")
        .element("Key", upload.record.key)
        .element("UploadId", id)
        .element("Initiated", iso8601_millis(upload.record.initiated))
        .element("StorageClass", "STANDARD")
        .close("Upload");
  }
  xml.close("ListMultipartUploadsResult");
  respond(xml_response(call, HttpStatus::ok, xml.str()));
}

std::size_t S3Api::Impl::expire_uploads() {
  std::vector<store::Mutation> removal;
  std::vector<std::string> part_files;
  std::size_t expired = 0;
  {
    std::lock_guard lock(mutex_);
    auto cutoff = clock_.now() - options_.upload_expiry;
    for (auto upload = uploads_.begin(); upload != uploads_.end();) {
      if (upload->second.record.initiated > cutoff) {
        ++upload;
        continue;
      }
      for (auto& mutation : upload_removal(upload->second)) removal.push_back(std::move(mutation));
      for (const auto& [number, part] : upload->second.parts) part_files.push_back(part.file);
      upload = uploads_.erase(upload);
      ++expired;
    }
  }
  if (removal.empty()) return 0;
  commit(std::move(removal), [this, part_files = std::move(part_files)](Status status) {
    if (!status) return;  // the records stay; the next start loads and expires them again
    for (const auto& file : part_files) files_.remove(file);
  });
  return expired;
}

}  // namespace wharf::s3
