// The Amazon S3 REST API (path-style addressing) served on the main listener: buckets, objects
// and multipart uploads, with bodies streamed to files under the data directory.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "aws/credentials.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "http/server.hpp"
#include "store/store.hpp"

namespace wharf::s3 {

struct S3Options {
  std::filesystem::path root;  // DATA_DIR/s3
  std::string account_id;
  // Multipart uploads initiated longer ago than this are aborted.
  std::chrono::seconds upload_expiry = std::chrono::hours(24);
  int disk_threads = 2;  // for fsync, assembling and copying bodies
};

class S3Api final : public http::Handler {
 public:
  // Loads every bucket, object and upload from the store and removes body files no record
  // names (left by a crash).
  static Result<std::unique_ptr<S3Api>> open(S3Options options, store::Store& store,
                                             const aws::CredentialStore& credentials,
                                             const Clock& clock);
  ~S3Api() override;

  void handle(http::Request&& request, http::Responder respond) override;
  // PutObject and UploadPart bodies stream to a file; every other request is buffered.
  std::unique_ptr<http::BodySink> stream_body(const http::RequestHeader& header) override;
  http::Response payload_too_large(const http::RequestHeader& header, std::size_t limit) override;

  // Aborts multipart uploads older than the expiry (also done as new ones start); returns how
  // many.
  std::size_t expire_uploads();
  // Finishes the disk work in flight; call before closing the store.
  void stop();

  class Impl;

 private:
  explicit S3Api(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::s3
