// The AWS EC2 Query protocol: form-encoded requests decoded by the service model into the same
// JSON input JSON-protocol handlers get, and their JSON output encoded as EC2's XML.
#pragma once

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "aws/json_api.hpp"
#include "common/error.hpp"
#include "http/server.hpp"

namespace wharf::aws {

class ServiceModel;
struct Operation;

// One EC2-Query-protocol service: its model and its operations. Handlers see the input keyed by
// the model's member names ("GroupName", "IpPermissions": [{"FromPort": 80, ...}]) and answer
// an output keyed the same way; the wire names (Filter.1.Value.1, <securityGroupInfo><item>)
// stay in here.
class QueryService {
 public:
  // `signing_name` is the SigV4 credential scope's service ("ec2"); `api_version` the Version a
  // request may carry; `xml_namespace` the xmlns of every response.
  QueryService(const ServiceModel& model, std::string signing_name, std::string api_version,
               std::string xml_namespace);

  // `operation` must be in the model (else std::invalid_argument: a wiring bug).
  void add(const std::string& operation, JsonOperation implementation);
  const JsonOperation* find(std::string_view operation) const;
  const ServiceModel& model() const { return model_; }
  const std::string& signing_name() const { return signing_name_; }

  // The input of `operation` from a request's parameters, still form-encoded ("Action=...&
  // GroupName=web&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1"), as botocore's EC2 serializer
  // writes them. Parameters the model does not know (Action, Version among them) are ignored.
  // Not validated against the model's constraints: serve() does that next.
  Result<boost::json::object> decode_input(std::string_view operation, std::string_view form) const;
  // The whole response document for an operation's output (kInternal when the output does not
  // fit the model: a handler bug).
  Result<std::string> encode_output(std::string_view operation, const boost::json::object& output,
                                    std::string_view request_id) const;

  // Serves one request the router has authenticated: `context` is complete but for the
  // operation, which the Action parameter names. Replies exactly once through `respond`.
  void serve(std::shared_ptr<const http::Request> request, CallContext context,
             http::Responder respond) const;

 private:
  const ServiceModel& model_;
  std::string signing_name_;
  std::string api_version_;
  std::string xml_namespace_;
  // A handler with its operation in the model, looked up once when it is added.
  struct Registered {
    JsonOperation implementation;
    const Operation* modelled;
  };
  std::map<std::string, Registered, std::less<>> operations_;

  Result<std::string> encode(const Operation& modelled, const boost::json::object& output,
                             std::string_view request_id) const;
};

// Whether a request speaks a Query protocol: a form-encoded POST, or a GET with ?Action=.
bool is_query_request(const http::RequestHeader& header);
// Appends `text` with &, <, >, ", ' and CR escaped, for XML element text and attribute values.
void append_xml_escaped(std::string& out, std::string_view text);

// EC2's error document, <Response><Errors><Error><Code>… with the code to_wire() gives for
// `service`, and its response (400, or 500 for kInternal).
std::string query_error_body(const Error& error, std::string_view service,
                             std::string_view request_id);
http::Response query_error_response(const http::Request& request, const Error& error,
                                    std::string_view service, const std::string& request_id);

}  // namespace wharf::aws
