// AwsJsonClient: signing, sending and decoding one AWS JSON 1.1 call.
#include "agent/aws_json_client.hpp"

#include <boost/json.hpp>

#include "aws/errors.hpp"
#include "aws/sigv4.hpp"
#include "common/json.hpp"

namespace wharf::agent {

namespace {

// The error an answer other than 200 stands for.
Error answer_error(const oci::HttpResponse& response, std::string_view operation,
                   std::string_view service) {
  std::string doing = std::string(operation) + ": HTTP " + std::to_string(response.status);
  if (response.status >= 500) return Error{ErrorCode::kInternal, doing};
  boost::system::error_code ec;
  auto body = boost::json::parse(response.body, ec);
  if (ec || !body.is_object()) return Error{ErrorCode::kClient, doing + " without an error body"};
  const auto& object = body.as_object();
  std::string type = json::string_or(object, "__type", "");
  type = type.substr(type.find('#') == std::string::npos ? 0 : type.find('#') + 1);
  std::string message = json::string_or(object, "message", json::string_or(object, "Message", ""));
  ErrorCode code = aws::error_code_for(type, service).value_or(ErrorCode::kClient);
  if (code == ErrorCode::kInternal) code = ErrorCode::kClient;  // a 4xx is never a server fault
  return Error{code, doing + " " + type + ": " + message};
}

}  // namespace

AwsJsonClient::AwsJsonClient(AwsJsonClientOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      transport_(control_plane_transport(options_.insecure, options_.timeout)) {}

Result<boost::json::object> AwsJsonClient::call(std::string_view operation,
                                                const boost::json::object& input) {
  auto target = oci::url_target(options_.endpoint);
  if (!target) return std::unexpected(target.error());
  const AwsJsonService& service = options_.service;
  std::string body = boost::json::serialize(input);
  aws::SignableRequest signable{"POST", target->path, {}, body};
  signable.headers = {
      {"Host", target->host},
      {"Content-Type", "application/x-amz-json-1.1"},
      {"X-Amz-Target", std::string(service.target_prefix) + std::string(operation)}};
  const auto& credentials = options_.credentials;
  if (!credentials.session_token.empty()) {
    signable.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  aws::sign_request(signable, credentials.access_key_id, credentials.secret_access_key,
                    credentials.region, service.signing_name, clock_.now());

  oci::HttpRequest request = oci::make_request("POST", options_.endpoint);
  request.headers = std::move(signable.headers);
  request.body = std::move(body);
  request.max_body = 4 << 20;
  request.cancel = options_.cancel;
  auto response = transport_.perform(request);
  if (!response) return std::unexpected(std::move(response.error()).context(operation));
  if (response->status != 200) {
    return std::unexpected(answer_error(*response, operation, service.signing_name));
  }
  boost::system::error_code ec;
  auto output = boost::json::parse(response->body, ec);
  if (ec || !output.is_object()) {
    return fail(ErrorCode::kInternal, std::string(operation) + ": the answer is not JSON");
  }
  return std::move(output.as_object());
}

oci::TransportOptions control_plane_transport(bool insecure, std::chrono::seconds timeout) {
  oci::TransportOptions transport;
  transport.insecure = insecure;
  transport.user_agent = "wharf-agent";
  transport.connect_timeout = timeout;
  transport.stall_timeout = timeout;
  return transport;
}

bool is_transient(const Error& error) {
  return error.code == ErrorCode::kInternal;
}

}  // namespace wharf::agent
