// The agent's client of AWS JSON 1.1 services (ECS, Secrets Manager, SSM): calls SigV4-signed with
// the agent's credentials, over libcurl.
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

// Which service a client calls: its X-Amz-Target prefix and SigV4 signing name. The control
// plane serves each of them on its one endpoint.
struct AwsJsonService {
  std::string_view target_prefix;
  std::string_view signing_name;
};

inline constexpr AwsJsonService kEcsService{"AmazonEC2ContainerServiceV20141113.", "ecs"};
inline constexpr AwsJsonService kSecretsManagerService{"secretsmanager.", "secretsmanager"};
inline constexpr AwsJsonService kSsmService{"AmazonSSM.", "ssm"};

struct AwsJsonClientOptions {
  std::string endpoint;  // http(s)://host:port of the control plane
  oci::AwsCredentials credentials;
  bool insecure = false;  // https without certificate verification
  std::chrono::seconds timeout{10};
  // Calls in flight end soon after this turns true (see oci::HttpRequest::cancel).
  const std::atomic<bool>* cancel = nullptr;
  AwsJsonService service = kEcsService;
};

// Thread-safe: calls from several threads share the transport's kept-alive connections.
class AwsJsonClient {
 public:
  AwsJsonClient(AwsJsonClientOptions options, const Clock& clock);

  // Calls `operation` ("RegisterContainerInstance") with `input`. An error answer keeps the
  // exception as its code (ClientException → kClient, ResourceNotFoundException → kNotFound,
  // ...; aws::error_code_for), with the exception name and message in the text:
  // "<operation>: HTTP <status> <type>: <message>". A 4xx of a type Wharf does not know is
  // kClient. Transport failures and 5xx answers are kInternal: the only ones worth retrying.
  Result<boost::json::object> call(std::string_view operation, const boost::json::object& input);

 private:
  AwsJsonClientOptions options_;
  const Clock& clock_;
  oci::HttpTransport transport_;
};

// How the agent's clients of the control plane talk to it: `timeout` both to connect and for a
// stalled transfer.
oci::TransportOptions control_plane_transport(bool insecure, std::chrono::seconds timeout);

// True for failures that may pass if the same call is made again later.
bool is_transient(const Error& error);

}  // namespace wharf::agent
