// The agent's client of S3 (the control plane serves it on its endpoint): GetObject,
// SigV4-signed with the agent's credentials, for tasks' environmentFiles.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "agent/task_env_files.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/ecr_login.hpp"
#include "oci/http_transport.hpp"

namespace wharf::agent {

struct S3ClientOptions {
  std::string endpoint;  // http(s)://host:port; buckets are addressed by path
  oci::AwsCredentials credentials;
  bool insecure = false;
  std::chrono::seconds timeout{10};
  std::size_t max_object_bytes = 8 << 20;  // larger objects fail the read
};

// Thread-safe: calls share the transport's kept-alive connections.
class S3Client {
 public:
  S3Client(S3ClientOptions options, const Clock& clock);

  // The object's bytes. An error answer keeps S3's code and message in the text
  // ("GetObject s3://b/k: HTTP 404 NoSuchKey: The specified key does not exist."), with
  // kNotFound for 404, kAccessDenied for 403, kInternal for 5xx and transport failures.
  Result<std::string> get_object(const S3Object& object);

 private:
  S3ClientOptions options_;
  const Clock& clock_;
  oci::HttpTransport transport_;
};

}  // namespace wharf::agent
