// ECR layer operations: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
// CompleteLayerUpload, GetDownloadUrlForLayer, over the BlobStore's upload sessions.
#include "common/crypto.hpp"
#include "common/json.hpp"
#include "registry/ecr_api.hpp"

namespace wharf::registry {

namespace bj = boost::json;

namespace {

// What InitiateLayerUpload recommends: parts this size fit the JSON body limit once base64'd.
constexpr int64_t kPartSize = 5 * 1024 * 1024;

// Upload sessions belong to the repository that started them.
std::string upload_owner(const RepositoryRef& ref) {
  return ref.region + "/" + ref.account_id + "/" + ref.name;
}

Error upload_not_found(const RepositoryRef& ref, std::string_view upload_id) {
  return Error{ErrorCode::kUploadNotFound, "The upload with id '" + std::string(upload_id) +
                                               "' does not exist for the repository with name '" +
                                               ref.name + "'"};
}

// The upload, if it exists and belongs to the repository.
Result<UploadStatus> owned_upload(const BlobStore& blobs, const RepositoryRef& ref,
                                  std::string_view upload_id) {
  auto status = blobs.upload_status(upload_id);
  if (!status || status->owner != upload_owner(ref)) {
    return std::unexpected(upload_not_found(ref, upload_id));
  }
  return status;
}

}  // namespace

void EcrApi::batch_check_layer_availability(const Context& context, const Input& input,
                                            Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  bj::array layers;
  bj::array failures;
  if (const auto* list = json::get_array(input, "layerDigests")) {
    for (const auto& item : *list) {
      std::string text(item.as_string());
      auto failure = [&](std::string_view code, std::string_view reason) {
        failures.push_back(
            bj::object{{"layerDigest", text}, {"failureCode", code}, {"failureReason", reason}});
      };
      auto digest = oci::parse_digest(text);
      if (!digest) {
        failure("InvalidLayerDigest", "Invalid layer digest: " + digest.error().message);
        continue;
      }
      auto size = state_.linked_blob(*ref, *digest);
      if (!size) return reply(std::unexpected(size.error()));
      if (!*size) {
        failure("MissingLayerDigest", "Could not find layer");
        continue;
      }
      layers.push_back(bj::object{{"layerDigest", text},
                                  {"layerAvailability", "AVAILABLE"},
                                  {"layerSize", static_cast<int64_t>(**size)}});
    }
  }
  reply(bj::object{{"layers", std::move(layers)}, {"failures", std::move(failures)}});
}

void EcrApi::initiate_layer_upload(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  auto upload_id = blobs_.begin_upload(upload_owner(*ref));
  if (!upload_id) return reply(std::unexpected(upload_id.error()));
  reply(bj::object{{"uploadId", *upload_id}, {"partSize", kPartSize}});
}

void EcrApi::upload_layer_part(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string upload_id = json::string_or(input, "uploadId", "");
  auto upload = owned_upload(blobs_, *ref, upload_id);
  if (!upload) return reply(std::unexpected(upload.error()));
  auto bytes = base64_decode(json::string_or(input, "layerPartBlob", ""));
  if (!bytes) return reply(invalid("layerPartBlob is not valid base64."));
  int64_t first = json::get_int(input, "partFirstByte").value_or(-1);
  int64_t last = json::get_int(input, "partLastByte").value_or(-1);
  if (bytes->empty() || first < 0 || last < first ||
      static_cast<uint64_t>(last - first + 1) != bytes->size()) {
    return reply(fail(ErrorCode::kInvalidLayerPart,
                      "The layer part spans bytes " + std::to_string(first) + " to " +
                          std::to_string(last) + " but holds " + std::to_string(bytes->size()) +
                          " bytes; the last valid byte received is " +
                          std::to_string(static_cast<int64_t>(upload->size) - 1)));
  }
  if (static_cast<uint64_t>(first) != upload->size) {
    return reply(fail(ErrorCode::kInvalidLayerPart,
                      "The layer part starts at byte " + std::to_string(first) +
                          " but the upload has " + std::to_string(upload->size) +
                          " bytes; parts must be contiguous. The last valid byte received is " +
                          std::to_string(static_cast<int64_t>(upload->size) - 1)));
  }
  // Disk writes stay off the event loop.
  auto posted = workers_.post(
      [this, ref = *ref, upload_id, first, last, bytes = std::move(*bytes), reply]() mutable {
        Status written = [&]() -> Status {
          // The writer holds the session until it goes, so it goes before the reply does.
          auto writer = blobs_.writer(upload_id, static_cast<uint64_t>(first));
          if (!writer) return std::unexpected(writer.error());
          if (Status written = writer->write(bytes); !written) return written;
          return writer->close();
        }();
        if (!written) return reply(std::unexpected(written.error()));
        bj::object output = repository_fields(ref);
        output["uploadId"] = upload_id;
        output["lastByteReceived"] = last;
        reply(std::move(output));
      });
  if (!posted) reply(fail(ErrorCode::kInternal, "the server is stopping"));
}

void EcrApi::complete_layer_upload(const Context& context, const Input& input, Reply reply) {
  auto ref = existing_repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string upload_id = json::string_or(input, "uploadId", "");
  auto upload = owned_upload(blobs_, *ref, upload_id);
  if (!upload) return reply(std::unexpected(upload.error()));
  const auto* digests = json::get_array(input, "layerDigests");
  if (digests == nullptr || digests->size() != 1) {
    return reply(invalid("CompleteLayerUpload takes exactly one layer digest."));
  }
  auto digest = oci::parse_digest(digests->front().as_string());
  if (!digest) {
    return reply(invalid("Invalid parameter at 'layerDigests' failed to satisfy constraint: '" +
                         digest.error().message + "'"));
  }
  if (upload->size == 0) {
    (void)blobs_.cancel_upload(upload_id);
    return reply(fail(ErrorCode::kEmptyUpload,
                      "The upload with id '" + upload_id + "' contains no layer parts"));
  }
  auto linked = state_.linked_blob(*ref, *digest);
  if (!linked) return reply(std::unexpected(linked.error()));
  if (*linked) {
    (void)blobs_.cancel_upload(upload_id);
    return reply(fail(ErrorCode::kLayerAlreadyExists,
                      "The layer with digest '" + digest->str() +
                          "' already exists in the repository with name '" + ref->name + "'"));
  }
  // Completion fsyncs: off the event loop.
  auto posted = workers_.post([this, ref = *ref, upload_id, digest = *digest, reply]() mutable {
    auto size = blobs_.complete_upload(upload_id, digest);
    if (!size) return reply(std::unexpected(size.error()));
    state_.link_blob(ref, digest, *size, [ref, upload_id, digest, reply](Status linked) {
      if (!linked) return reply(std::unexpected(linked.error()));
      bj::object output = repository_fields(ref);
      output["uploadId"] = upload_id;
      output["layerDigest"] = digest.str();
      reply(std::move(output));
    });
  });
  if (!posted) reply(fail(ErrorCode::kInternal, "the server is stopping"));
}

void EcrApi::get_download_url_for_layer(const Context& context, const Input& input, Reply reply) {
  auto ref = repository_ref(context, input);
  if (!ref) return reply(std::unexpected(ref.error()));
  std::string text = json::string_or(input, "layerDigest", "");
  auto digest = oci::parse_digest(text);
  if (!digest) {
    return reply(invalid("Invalid parameter at 'layerDigest' failed to satisfy constraint: '" +
                         digest.error().message + "'"));
  }
  auto size = state_.linked_blob(*ref, *digest);
  if (!size) return reply(std::unexpected(size.error()));
  if (!*size) {
    return reply(fail(ErrorCode::kLayersNotFound,
                      "The layer with digest '" + text +
                          "' does not exist in the repository with name '" + ref->name + "'"));
  }
  reply(bj::object{{"downloadUrl", endpoint() + "/v2/" + ref->name + "/blobs/" + digest->str()},
                   {"layerDigest", digest->str()}});
}

}  // namespace wharf::registry
