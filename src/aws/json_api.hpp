// The AWS JSON 1.0/1.1 protocol: authenticate, route by X-Amz-Target, validate against the
// service model, call the operation, encode its result or error. ApiRouter, the front door,
// also routes Query-protocol requests (query_api.hpp) by their credential scope.
#pragma once

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "aws/credentials.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "http/server.hpp"

namespace wharf::aws {

class QueryService;
class ServiceModel;

// Who is calling, where, and which request this is.
struct CallContext {
  std::string region;
  std::string account_id;
  std::string access_key_id;
  std::string principal_arn;
  std::string request_id;
  std::string operation;
};

// Completes an operation with its output (a JSON object) or an error; call exactly once.
using JsonReply = std::function<void(Result<boost::json::object>)>;
using JsonOperation =
    std::function<void(const CallContext&, const boost::json::object& input, JsonReply reply)>;

// The response to an AWS API request in either protocol: `body` with the x-amzn-RequestId header
// clients read. A server fault (status >= 500) is logged here with `error_message`, since the
// client sees only the body; nothing else logs it.
http::Response api_response(const http::Request& request, http::beast_http::status status,
                            std::string body, std::string_view content_type,
                            std::string_view request_id, std::string_view error_message = {});

// Runs an operation; an exception escaping it becomes a kInternal reply.
void call_operation(const JsonOperation& operation, const CallContext& context,
                    const boost::json::object& input, const JsonReply& reply);

// One JSON-protocol service: its model and its operations.
class JsonService {
 public:
  JsonService(const ServiceModel& model, std::string signing_name, std::string json_version);

  void add(const std::string& operation, JsonOperation implementation);
  // An operation the model does not have (Wharf's own, e.g. the agent's WharfPollTasks): routed
  // and authenticated like the others, its body must be a JSON object, and the handler checks
  // the members itself.
  void add_unmodelled(const std::string& operation, JsonOperation implementation);
  bool is_modelled(std::string_view operation) const;
  const ServiceModel& model() const { return model_; }
  const std::string& signing_name() const { return signing_name_; }
  const std::string& content_type() const { return content_type_; }
  const JsonOperation* find(std::string_view operation) const;

 private:
  const ServiceModel& model_;
  std::string signing_name_;
  std::string content_type_;
  std::map<std::string, JsonOperation, std::less<>> operations_;
  std::set<std::string, std::less<>> unmodelled_;
};

// The front door: everything that reaches the listener goes through here.
class ApiRouter final : public http::Handler {
 public:
  ApiRouter(const CredentialStore& credentials, const Clock& clock)
      : credentials_(credentials), clock_(clock) {}

  void add_service(JsonService& service);
  // Form-encoded POSTs and GETs with ?Action= go to the Query service whose signing name is the
  // service in the request's SigV4 credential scope (".../us-east-1/ec2/aws4_request").
  void add_query_service(QueryService& service);
  // Requests whose path starts with `prefix` go to `handler` unauthenticated by this router
  // (the registry does its own auth).
  void add_path_handler(std::string prefix, http::Handler& handler);
  // S3's REST API: requests whose SigV4 scope (Authorization header or X-Amz-Credential query)
  // names service "s3", and unsigned requests that are not Query requests, carry no
  // X-Amz-Target and match no path handler. The handler authenticates them itself.
  void add_s3_handler(http::Handler& handler) { s3_handler_ = &handler; }
  void handle(http::Request&& request, http::Responder respond) override;
  // Path handlers may stream bodies (registry blob uploads); JSON APIs never do.
  std::unique_ptr<http::BodySink> stream_body(const http::RequestHeader& header) override;
  http::Response payload_too_large(const http::RequestHeader& header, std::size_t limit) override;

 private:
  http::Handler* path_handler(std::string_view target) const;
  // The path handler or the S3 handler that serves this request, or nullptr.
  http::Handler* own_handler(const http::RequestHeader& header) const;
  void handle_json(http::Request&& request, http::Responder respond);
  void handle_query(http::Request&& request, http::Responder respond);
  // A request whose SigV4 signature checked out: the service its credential scope names, and
  // who is calling (the operation left for the protocol to fill in).
  struct Caller {
    std::string service;
    CallContext context;
  };
  Result<Caller> authenticate(const http::Request& request, std::string request_id) const;

  const CredentialStore& credentials_;
  const Clock& clock_;
  std::map<std::string, JsonService*, std::less<>> services_by_prefix_;
  std::map<std::string, QueryService*, std::less<>> query_services_by_signing_name_;
  std::vector<std::pair<std::string, http::Handler*>> path_handlers_;
  http::Handler* s3_handler_ = nullptr;
};

}  // namespace wharf::aws
