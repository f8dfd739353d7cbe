// The agent's client of the ECS API: AWS JSON 1.1 calls, SigV4-signed, over libcurl.
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/ecr_login.hpp"
#include "oci/http_transport.hpp"

namespace wharf::agent {

struct EcsClientOptions {
  std::string endpoint;  // http(s)://host:port of the control plane
  oci::AwsCredentials credentials;
  bool insecure = false;  // https without certificate verification
  std::chrono::seconds timeout{10};
  // Calls in flight end soon after this turns true (see oci::HttpRequest::cancel).
  const std::atomic<bool>* cancel = nullptr;
};

class EcsClient {
 public:
  EcsClient(EcsClientOptions options, const Clock& clock);

  // Calls `operation` ("RegisterContainerInstance") with `input`. An error answer keeps the
  // ECS exception as its code (ClientException → kClient, ...; aws::error_code_for), with the
  // exception name and message in the text. Transport failures and 5xx answers are kInternal:
  // the only ones worth retrying.
  Result<boost::json::object> call(std::string_view operation, const boost::json::object& input);

 private:
  EcsClientOptions options_;
  const Clock& clock_;
  oci::HttpTransport transport_;
};

// True for failures that may pass if the same call is made again later.
bool is_transient(const Error& error);

}  // namespace wharf::agent
