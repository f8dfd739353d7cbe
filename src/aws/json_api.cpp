// ApiRouter and JsonService.
#include "aws/json_api.hpp"

#include "aws/errors.hpp"
#include "aws/query_api.hpp"
#include "aws/service_model.hpp"
#include "aws/sigv4.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

namespace wharf::aws {

namespace beast_http = http::beast_http;

JsonService::JsonService(const ServiceModel& model, std::string signing_name,
                         std::string json_version)
    : model_(model),
      signing_name_(std::move(signing_name)),
      content_type_("application/x-amz-json-" + json_version) {}

void JsonService::add(const std::string& operation, JsonOperation implementation) {
  operations_[operation] = std::move(implementation);
}

void JsonService::add_unmodelled(const std::string& operation, JsonOperation implementation) {
  unmodelled_.insert(operation);
  add(operation, std::move(implementation));
}

bool JsonService::is_modelled(std::string_view operation) const {
  return !unmodelled_.contains(operation);
}

http::Response api_response(const http::Request& request, beast_http::status status,
                            std::string body, std::string_view content_type,
                            std::string_view request_id, std::string_view error_message) {
  auto response = http::make_response(request, status, std::move(body), content_type);
  response.set("x-amzn-RequestId", request_id);
  if (static_cast<int>(status) >= 500) {
    spdlog::error("request {} failed: {}", request_id, error_message);
  }
  return response;
}

void call_operation(const JsonOperation& operation, const CallContext& context,
                    const boost::json::object& input, const JsonReply& reply) {
  try {
    operation(context, input, reply);
  } catch (const std::exception& e) {
    reply(std::unexpected(Error{ErrorCode::kInternal, std::string("internal error: ") + e.what()}));
  }
}

const JsonOperation* JsonService::find(std::string_view operation) const {
  auto found = operations_.find(operation);
  return found == operations_.end() ? nullptr : &found->second;
}

void ApiRouter::add_service(JsonService& service) {
  services_by_prefix_[std::string(service.model().target_prefix())] = &service;
}

void ApiRouter::add_query_service(QueryService& service) {
  query_services_by_signing_name_[service.signing_name()] = &service;
}

void ApiRouter::add_path_handler(std::string prefix, http::Handler& handler) {
  path_handlers_.emplace_back(std::move(prefix), &handler);
}

http::Handler* ApiRouter::path_handler(std::string_view target) const {
  for (const auto& [prefix, handler] : path_handlers_) {
    if (target.starts_with(prefix)) return handler;
  }
  return nullptr;
}

namespace {

// The service a request's SigV4 credential scope names, from its Authorization header or its
// X-Amz-Credential query parameter (a presigned URL); empty when it is unsigned.
std::string signing_service(const http::RequestHeader& header) {
  auto authorization = header[http::beast_http::field::authorization];
  if (!authorization.empty()) {
    auto parsed = parse_authorization(authorization);
    return parsed ? parsed->service : std::string("?");
  }
  std::string_view target = header.target();
  auto question = target.find('?');
  if (question == std::string_view::npos) return {};
  for (auto param : split(target.substr(question + 1), '&')) {
    if (!param.starts_with("X-Amz-Credential=")) continue;
    auto scope = split(uri_decode(param.substr(param.find('=') + 1)), '/');
    return scope.size() == 5 ? std::string(scope[3]) : std::string("?");
  }
  return {};
}

}  // namespace

http::Handler* ApiRouter::own_handler(const http::RequestHeader& header) const {
  if (http::Handler* handler = path_handler(header.target())) return handler;
  if (s3_handler_ == nullptr) return nullptr;
  std::string service = signing_service(header);
  if (service == "s3") return s3_handler_;
  bool unsigned_rest =
      service.empty() && header["X-Amz-Target"].empty() && !is_query_request(header);
  return unsigned_rest ? s3_handler_ : nullptr;
}

void ApiRouter::handle(http::Request&& request, http::Responder respond) {
  if (http::Handler* handler = own_handler(request.base())) {
    return handler->handle(std::move(request), std::move(respond));
  }
  if (is_query_request(request)) return handle_query(std::move(request), std::move(respond));
  handle_json(std::move(request), std::move(respond));
}

std::unique_ptr<http::BodySink> ApiRouter::stream_body(const http::RequestHeader& header) {
  http::Handler* handler = own_handler(header);
  return handler ? handler->stream_body(header) : nullptr;
}

namespace {

http::Response error_response(const http::Request& request, const Error& error,
                              std::string_view service, std::string_view content_type,
                              const std::string& request_id);

}  // namespace

http::Response ApiRouter::payload_too_large(const http::RequestHeader& header, std::size_t limit) {
  if (http::Handler* handler = own_handler(header)) {
    return handler->payload_too_large(header, limit);
  }
  http::Request request{header};
  Error error{ErrorCode::kPayloadTooLarge,
              "Request body is larger than the limit of " + std::to_string(limit) + " bytes."};
  // Unauthenticated, so the service is unknown: EC2 is the only Query protocol served.
  if (is_query_request(header)) return query_error_response(request, error, "ec2", new_uuid());
  return error_response(request, error, "", "application/x-amz-json-1.1", new_uuid());
}

namespace {

http::Response error_response(const http::Request& request, const Error& error,
                              std::string_view service, std::string_view content_type,
                              const std::string& request_id) {
  WireError wire = to_wire(error, service);
  boost::json::object body{{"__type", wire.type}, {"message", error.message}};
  return api_response(request, static_cast<beast_http::status>(wire.status),
                      boost::json::serialize(body), content_type, request_id, error.message);
}

aws::SignableRequest signable(const http::Request& request) {
  aws::SignableRequest out;
  out.method = std::string(request.method_string());
  out.target = std::string(request.target());
  for (const auto& field : request) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.payload = request.body();
  return out;
}

Result<boost::json::object> parse_body(std::string_view body) {
  if (body.empty()) return boost::json::object{};
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec) return fail(ErrorCode::kSerialization, "Request body is not valid JSON: " + ec.message());
  if (!value.is_object()) {
    return fail(ErrorCode::kSerialization, "Request body must be a JSON object.");
  }
  return std::move(value.as_object());
}

}  // namespace

void ApiRouter::handle_json(http::Request&& request, http::Responder respond) {
  std::string request_id = new_uuid();
  constexpr std::string_view kDefaultType = "application/x-amz-json-1.1";
  auto reject = [&](const Error& error, std::string_view service, std::string_view type) {
    respond(error_response(request, error, service, type, request_id));
  };

  if (request.method() != beast_http::verb::post || request.target() != "/") {
    return reject(Error{ErrorCode::kUnknownOperation,
                        "Only POST / is served here; send AWS JSON requests with an "
                        "X-Amz-Target header."},
                  "", kDefaultType);
  }
  std::string_view target = request["X-Amz-Target"];
  auto dot = target.rfind('.');
  auto service_found = dot == std::string_view::npos
                           ? services_by_prefix_.end()
                           : services_by_prefix_.find(target.substr(0, dot));
  if (service_found == services_by_prefix_.end()) {
    return reject(
        Error{ErrorCode::kUnknownOperation, "Unknown X-Amz-Target '" + std::string(target) + "'."},
        "", kDefaultType);
  }
  JsonService& service = *service_found->second;
  std::string_view type = service.content_type();
  std::string operation(target.substr(dot + 1));

  auto caller = authenticate(request, request_id);
  if (!caller) return reject(caller.error(), service.signing_name(), type);
  if (caller->service != service.signing_name()) {
    return reject(
        Error{ErrorCode::kInvalidSignature,
              "Credential should be scoped to correct service: '" + service.signing_name() + "'. "},
        service.signing_name(), type);
  }

  const JsonOperation* implementation = service.find(operation);
  if (!implementation) {
    return reject(Error{ErrorCode::kUnknownOperation, "Operation '" + operation +
                                                          "' is not supported by Wharf's " +
                                                          service.signing_name() + " API."},
                  service.signing_name(), type);
  }
  auto input = parse_body(request.body());
  if (!input) return reject(input.error(), service.signing_name(), type);
  if (service.is_modelled(operation)) {
    if (auto valid = service.model().validate_input(operation, *input); !valid) {
      return reject(valid.error(), service.signing_name(), type);
    }
  }

  CallContext context = std::move(caller->context);
  context.operation = operation;
  auto shared_request = std::make_shared<http::Request>(std::move(request));
  auto reply = [shared_request, respond, request_id, type = std::string(type),
                service_name = service.signing_name()](Result<boost::json::object> result) {
    if (!result) {
      return respond(
          error_response(*shared_request, result.error(), service_name, type, request_id));
    }
    respond(api_response(*shared_request, beast_http::status::ok, boost::json::serialize(*result),
                         type, request_id));
  };
  call_operation(*implementation, context, *input, reply);
}

void ApiRouter::handle_query(http::Request&& request, http::Responder respond) {
  std::string request_id = new_uuid();
  // Until the credential scope names the service, errors are EC2's: the only Query protocol.
  constexpr std::string_view kDefaultService = "ec2";
  auto caller = authenticate(request, request_id);
  if (!caller) {
    return respond(query_error_response(request, caller.error(), kDefaultService, request_id));
  }
  auto service = query_services_by_signing_name_.find(caller->service);
  if (service == query_services_by_signing_name_.end()) {
    Error error{ErrorCode::kUnknownOperation, "Wharf serves no Query-protocol API for service '" +
                                                  caller->service + "' (the credential scope's)."};
    return respond(query_error_response(request, error, kDefaultService, request_id));
  }
  service->second->serve(std::make_shared<http::Request>(std::move(request)),
                         std::move(caller->context), std::move(respond));
}

Result<ApiRouter::Caller> ApiRouter::authenticate(const http::Request& request,
                                                  std::string request_id) const {
  std::optional<AccessKey> key;
  auto verified = verify(
      signable(request),
      [&](std::string_view key_id) -> std::optional<std::string> {
        key = credentials_.find(key_id);
        if (!key) return std::nullopt;
        return key->secret_access_key;
      },
      clock_.now());
  if (!verified) return std::unexpected(std::move(verified.error()));
  return Caller{verified->service, CallContext{verified->region,
                                               key->account_id,
                                               verified->access_key_id,
                                               key->principal_arn,
                                               std::move(request_id),
                                               {}}};
}

}  // namespace wharf::aws
