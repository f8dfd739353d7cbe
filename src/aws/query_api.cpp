// QueryService: the EC2 form decoder, the XML encoder and the request flow between them.
#include "aws/query_api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>

#include "aws/errors.hpp"
#include "aws/model_graph.hpp"
#include "aws/service_model.hpp"
#include "common/clock.hpp"

namespace wharf::aws {

namespace json = boost::json;
namespace urls = boost::urls;
namespace beast_http = http::beast_http;

namespace {

constexpr std::string_view kXmlDeclaration = R"(<?xml version="1.0" encoding="UTF-8"?>)";
constexpr std::string_view kXmlContentType = "text/xml;charset=UTF-8";

// Decoded parameter name → value, sorted so that every parameter under a prefix is one range.
using Params = std::map<std::string, std::string, std::less<>>;

// ---- the request: EC2 form parameters → JSON keyed by member names ----

Result<Params> parse_form(std::string_view form) {
  Params params;
  if (form.empty()) return params;
  // Boost.URL 1.81's parse_query reads a view's last parameter on to the next NUL, past the
  // view's end; a std::string ends where it should.
  const std::string terminated(form);
  auto encoded = urls::parse_query(terminated);
  if (!encoded) {
    return fail(
        ErrorCode::kSerialization,
        "The request parameters are not a valid form-encoded string: " + encoded.error().message());
  }
  urls::encoding_opts options;
  options.space_as_plus = true;  // botocore encodes with quote_plus
  for (const urls::param_pct_view& param : *encoded) {
    if (param.key.empty()) continue;  // "a=1&&b=2"
    params.insert_or_assign(param.key.decode(options), param.value.decode(options));
  }
  return params;
}

// The trait botocore reads as a member's serialized name: the reference's, else the shape's.
const std::string& location_name(const Member& member) {
  return member.location_name.empty() ? member.shape->location_name : member.location_name;
}

// EC2Serializer._get_serialized_name: queryName, else locationName with its first letter
// upper-cased, else the member name.
std::string input_name(const Member& member) {
  if (!member.query_name.empty()) return member.query_name;
  std::string name = location_name(member);
  if (name.empty()) return member.name;
  name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

// Walks an input shape, picking its members out of the parameters. EC2 lists are always
// flattened (GroupId.1, GroupId.2) and numbered from 1; structures nest by dots
// (IpPermissions.1.Groups.1.GroupId).
class FormDecoder {
 public:
  explicit FormDecoder(const Params& params) : params_(params) {}

  Result<json::object> structure(const Shape& shape, const std::string& prefix) const {
    json::object object;
    for (const Member& member : shape.members) {
      std::string key = input_name(member);
      if (!prefix.empty()) key.insert(0, prefix + ".");
      auto value = decode(*member.shape, key);
      if (!value) return std::unexpected(std::move(value.error()));
      if (*value) object.emplace(member.name, std::move(**value));
    }
    return object;
  }

 private:
  // The value under `key`, or nullopt when the request has none.
  Result<std::optional<json::value>> decode(const Shape& shape, const std::string& key) const {
    switch (shape.type) {
      case ShapeType::kStructure: {
        if (!has_children(key)) return std::nullopt;
        auto object = structure(shape, key);
        if (!object) return std::unexpected(std::move(object.error()));
        return json::value(std::move(*object));
      }
      case ShapeType::kList:
        return list(shape, key);
      case ShapeType::kMap:
      case ShapeType::kDocument:
        // EC2's model has neither; a model that does needs this decoder extended.
        return fail(ErrorCode::kInternal,
                    "the EC2 query decoder cannot read " + shape.name + " (parameter " + key + ")");
      default:
        return scalar(shape, key);
    }
  }

  Result<std::optional<json::value>> list(const Shape& shape, const std::string& key) const {
    std::vector<std::uint32_t> indexes;
    std::string child_prefix = key + ".";
    for (auto param = params_.lower_bound(child_prefix);
         param != params_.end() && param->first.starts_with(child_prefix); ++param) {
      std::string_view rest = std::string_view(param->first).substr(child_prefix.size());
      std::string_view segment = rest.substr(0, rest.find('.'));
      std::uint32_t index = 0;
      auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
      if (ec != std::errc() || end != segment.data() + segment.size() || index == 0) {
        return invalid("The parameter " + param->first + " is not recognized: " + key +
                       " is a list, numbered " + key + ".1, " + key + ".2, ...");
      }
      indexes.push_back(index);
    }
    if (indexes.empty()) {
      auto bare = params_.find(key);
      if (bare == params_.end()) return std::nullopt;
      // The plain query protocol's way of sending an empty list.
      if (bare->second.empty()) return json::value(json::array{});
      return invalid("The parameter " + key + " is a list: send " + key + ".1, " + key +
                     ".2, ... instead.");
    }
    std::ranges::sort(indexes);
    auto [last, end] = std::ranges::unique(indexes);
    indexes.erase(last, end);

    json::array array;
    array.reserve(indexes.size());
    for (std::uint32_t index : indexes) {
      std::string element_key = key + "." + std::to_string(index);
      if (shape.member->type == ShapeType::kStructure) {
        auto object = structure(*shape.member, element_key);
        if (!object) return std::unexpected(std::move(object.error()));
        array.emplace_back(std::move(*object));
        continue;
      }
      auto element = decode(*shape.member, element_key);
      if (!element) return std::unexpected(std::move(element.error()));
      if (*element) array.push_back(std::move(**element));
    }
    return json::value(std::move(array));
  }

  Result<std::optional<json::value>> scalar(const Shape& shape, const std::string& key) const {
    auto param = params_.find(key);
    if (param == params_.end()) return std::nullopt;
    const std::string& text = param->second;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    switch (shape.type) {
      case ShapeType::kInteger:
      case ShapeType::kLong: {
        std::int64_t number = 0;
        auto [end, ec] = std::from_chars(first, last, number);
        if (ec == std::errc() && end == last && !text.empty()) return json::value(number);
        return bad_value(key, text, "an integer");
      }
      case ShapeType::kDouble: {
        double number = 0;
        auto [end, ec] = std::from_chars(first, last, number);
        if (ec == std::errc() && end == last && !text.empty() && std::isfinite(number)) {
          return json::value(number);
        }
        return bad_value(key, text, "a number");
      }
      case ShapeType::kBoolean:
        if (boost::beast::iequals(text, "true")) return json::value(true);
        if (boost::beast::iequals(text, "false")) return json::value(false);
        return bad_value(key, text, "true or false");
      default:  // strings, ISO-8601 timestamps and base64 blobs, which validation checks
        return json::value(json::string(text));
    }
  }

  static std::unexpected<Error> bad_value(const std::string& key, std::string_view text,
                                          std::string_view expected) {
    constexpr std::size_t kMaxEchoed = 64;
    std::string shown(text.substr(0, kMaxEchoed));
    if (text.size() > kMaxEchoed) shown += "...";
    return invalid("Invalid value '" + shown + "' for " + key + ": expected " +
                   std::string(expected) + ".");
  }

  bool has_children(const std::string& key) const {
    std::string child_prefix = key + ".";
    auto param = params_.lower_bound(child_prefix);
    return param != params_.end() && param->first.starts_with(child_prefix);
  }

  const Params& params_;
};

// ---- the response: JSON keyed by member names → EC2's XML ----

void open_tag(std::string& out, std::string_view tag) {
  out += '<';
  out += tag;
  out += '>';
}

void close_tag(std::string& out, std::string_view tag) {
  out += "</";
  out += tag;
  out += '>';
}

template <typename Number>
void append_number(std::string& out, Number number) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number);
  out.append(buffer, end);
}

// Writes an output object under an output shape, the way EC2QueryParser reads it: members by
// their locationName, lists as <item> elements inside the member's element. Values that do not
// fit the model are a handler bug, reported with the member's path.
class XmlEncoder {
 public:
  explicit XmlEncoder(std::string& out) : out_(out) {}

  Status structure(const Shape& shape, const json::object& object) {
    for (const json::key_value_pair& entry : object) {
      auto known = std::ranges::find(shape.members, std::string_view(entry.key()), &Member::name);
      if (known == shape.members.end()) {
        return mismatch("has a member '" + std::string(entry.key()) + "' that " + shape.name +
                        " does not");
      }
    }
    for (const Member& member : shape.members) {
      const json::value* value = object.if_contains(member.name);
      if (value == nullptr || value->is_null()) continue;
      path_.push_back(member.name);
      auto status = this->member(member, *value);
      path_.pop_back();
      if (!status) return status;
    }
    return {};
  }

 private:
  Status member(const Member& member, const json::value& value) {
    const Shape& shape = *member.shape;
    const std::string& own_name = location_name(member);
    std::string_view tag = own_name.empty() ? std::string_view(member.name) : own_name;
    if (shape.type != ShapeType::kList || !(member.flattened || shape.flattened)) {
      return element(shape, value, tag);
    }
    // A flattened list repeats its elements in place, named by the element reference.
    const json::array* array = value.if_array();
    if (array == nullptr) return mismatch("is not an array");
    std::string_view element_tag = element_name(shape);
    return elements(shape, *array, element_tag.empty() ? tag : element_tag);
  }

  Status element(const Shape& shape, const json::value& value, std::string_view tag) {
    open_tag(out_, tag);
    switch (shape.type) {
      case ShapeType::kStructure: {
        const json::object* object = value.if_object();
        if (object == nullptr) return mismatch("is not an object");
        if (auto status = structure(shape, *object); !status) return status;
        break;
      }
      case ShapeType::kList: {
        const json::array* array = value.if_array();
        if (array == nullptr) return mismatch("is not an array");
        std::string_view element_tag = element_name(shape);
        if (auto status = elements(shape, *array, element_tag.empty() ? "item" : element_tag);
            !status) {
          return status;
        }
        break;
      }
      case ShapeType::kMap:
      case ShapeType::kDocument:
        return mismatch("is a " + shape.name + ", which the EC2 XML encoder cannot write");
      default:
        if (auto status = scalar(shape, value); !status) return status;
    }
    close_tag(out_, tag);
    return {};
  }

  Status elements(const Shape& list, const json::array& array, std::string_view tag) {
    for (std::size_t element_idx = 0; element_idx < array.size(); ++element_idx) {
      if (array[element_idx].is_null()) continue;
      path_.push_back("[" + std::to_string(element_idx) + "]");
      auto status = element(*list.member, array[element_idx], tag);
      path_.pop_back();
      if (!status) return status;
    }
    return {};
  }

  Status scalar(const Shape& shape, const json::value& value) {
    switch (shape.type) {
      case ShapeType::kString:
      case ShapeType::kBlob:  // already base64
        if (!value.is_string()) return mismatch("is not a string");
        append_xml_escaped(out_, value.get_string());
        return {};
      case ShapeType::kInteger:
      case ShapeType::kLong:
        if (value.is_int64()) {
          append_number(out_, value.get_int64());
        } else if (value.is_uint64()) {
          append_number(out_, value.get_uint64());
        } else {
          return mismatch("is not an integer");
        }
        return {};
      case ShapeType::kBoolean:
        if (!value.is_bool()) return mismatch("is not a boolean");
        out_ += value.get_bool() ? "true" : "false";
        return {};
      case ShapeType::kDouble:
        if (!value.is_number()) return mismatch("is not a number");
        append_number(out_, value.to_number<double>());
        return {};
      case ShapeType::kTimestamp: {
        if (value.is_string()) {
          append_xml_escaped(out_, value.get_string());
          return {};
        }
        if (!value.is_number()) {
          return mismatch("is not a timestamp (epoch seconds or an ISO-8601 string)");
        }
        out_ += iso8601_millis(from_epoch_seconds(value.to_number<double>()));
        return {};
      }
      default:
        return mismatch("has an unexpected shape");
    }
  }

  // A list's element name: the element reference's locationName, else the element shape's.
  static std::string_view element_name(const Shape& list) {
    if (!list.member_location_name.empty()) return list.member_location_name;
    return list.member->location_name;
  }

  std::unexpected<Error> mismatch(const std::string& what) const {
    std::string path;
    for (const std::string& step : path_) {
      if (!path.empty() && !step.starts_with('[')) path += '.';
      path += step;
    }
    return fail(ErrorCode::kInternal,
                "the output " + (path.empty() ? std::string() : path + " ") + what);
  }

  std::string& out_;
  std::vector<std::string> path_;
};

// The input of an operation from its parsed parameters.
Result<json::object> decode_params(const Operation& operation, const Params& params) {
  if (operation.input == nullptr) return json::object{};
  return FormDecoder(params).structure(*operation.input, "");
}

std::string_view form_of(const http::Request& request) {
  if (request.method() == beast_http::verb::post) return request.body();
  std::string_view target = request.target();
  auto question = target.find('?');
  return question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
}

Error unknown_action(std::string_view action) {
  return Error{ErrorCode::kUnknownOperation,
               "The action " + std::string(action) + " is not valid for this web service."};
}

}  // namespace

void append_xml_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#13;";  // a literal CR would be normalised away by the parser
        break;
      default:
        // XML 1.0 cannot carry other control characters at all, not even as references.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += "\xEF\xBF\xBD";  // U+FFFD
          break;
        }
        out += c;
    }
  }
}

QueryService::QueryService(const ServiceModel& model, std::string signing_name,
                           std::string api_version, std::string xml_namespace)
    : model_(model),
      signing_name_(std::move(signing_name)),
      api_version_(std::move(api_version)),
      xml_namespace_(std::move(xml_namespace)) {}

void QueryService::add(const std::string& operation, JsonOperation implementation) {
  const Operation* modelled = model_.graph().find_operation(operation);
  if (modelled == nullptr) {  // only modelled operations can be decoded
    throw std::invalid_argument("operation " + operation + " is not in the " + signing_name_ +
                                " model (tools/strip_model.py --operations)");
  }
  operations_[operation] = Registered{std::move(implementation), modelled};
}

const JsonOperation* QueryService::find(std::string_view operation) const {
  auto found = operations_.find(operation);
  return found == operations_.end() ? nullptr : &found->second.implementation;
}

Result<json::object> QueryService::decode_input(std::string_view operation,
                                                std::string_view form) const {
  const Operation* modelled = model_.graph().find_operation(operation);
  if (modelled == nullptr) return std::unexpected(unknown_action(operation));
  auto params = parse_form(form);
  if (!params) return std::unexpected(std::move(params.error()));
  return decode_params(*modelled, *params);
}

Result<std::string> QueryService::encode_output(std::string_view operation,
                                                const json::object& output,
                                                std::string_view request_id) const {
  const Operation* modelled = model_.graph().find_operation(operation);
  if (modelled == nullptr) {
    return fail(ErrorCode::kInternal, "no output shape for " + std::string(operation));
  }
  return encode(*modelled, output, request_id);
}

Result<std::string> QueryService::encode(const Operation& modelled, const json::object& output,
                                         std::string_view request_id) const {
  std::string root = modelled.name + "Response";
  std::string out(kXmlDeclaration);
  out += '<' + root + " xmlns=\"";
  append_xml_escaped(out, xml_namespace_);
  out += "\">";
  open_tag(out, "requestId");
  append_xml_escaped(out, request_id);
  close_tag(out, "requestId");
  if (modelled.output != nullptr) {
    if (auto status = XmlEncoder(out).structure(*modelled.output, output); !status) {
      return std::unexpected(std::move(status.error()).context("encoding " + root));
    }
  } else if (!output.empty()) {
    return fail(ErrorCode::kInternal, modelled.name + " has no output, but got some");
  }
  close_tag(out, root);
  return out;
}

void QueryService::serve(std::shared_ptr<const http::Request> request, CallContext context,
                         http::Responder respond) const {
  auto reject = [&](const Error& error) {
    respond(query_error_response(*request, error, signing_name_, context.request_id));
  };
  auto params = parse_form(form_of(*request));
  if (!params) return reject(params.error());
  auto action = params->find("Action");
  if (action == params->end() || action->second.empty()) {
    return reject(
        Error{ErrorCode::kUnknownOperation, "The request must contain the parameter Action."});
  }
  auto version = params->find("Version");
  if (version != params->end() && version->second != api_version_) {
    return reject(invalid("Version " + version->second + " is not supported; Wharf's " +
                          signing_name_ + " API speaks " + api_version_ + ".")
                      .error());
  }
  const std::string& operation = action->second;
  auto registered = operations_.find(operation);
  if (registered == operations_.end()) return reject(unknown_action(operation));
  const Operation* modelled = registered->second.modelled;  // lives as long as the model
  auto input = decode_params(*modelled, *params);
  if (!input) return reject(input.error());
  if (auto valid = model_.validate_input(operation, *input); !valid) return reject(valid.error());

  context.operation = operation;
  auto reply = [this, request, respond, modelled,
                request_id = context.request_id](Result<json::object> result) {
    if (!result) {
      return respond(query_error_response(*request, result.error(), signing_name_, request_id));
    }
    auto body = encode(*modelled, *result, request_id);
    if (!body) {
      return respond(query_error_response(*request, body.error(), signing_name_, request_id));
    }
    respond(api_response(*request, beast_http::status::ok, std::move(*body), kXmlContentType,
                         request_id));
  };
  call_operation(registered->second.implementation, context, *input, reply);
}

bool is_query_request(const http::RequestHeader& header) {
  if (header.method() == beast_http::verb::post) {
    constexpr std::string_view kForm = "application/x-www-form-urlencoded";
    std::string_view type = header[beast_http::field::content_type];
    return type.size() >= kForm.size() &&
           boost::beast::iequals(type.substr(0, kForm.size()), kForm);
  }
  if (header.method() != beast_http::verb::get) return false;
  std::string_view target = header.target();
  auto question = target.find('?');
  if (question == std::string_view::npos) return false;
  const std::string query(target.substr(question + 1));  // see parse_form
  auto params = urls::parse_query(query);
  return params && params->contains("Action");
}

namespace {

std::string error_body(const Error& error, const WireError& wire, std::string_view request_id) {
  std::string out(kXmlDeclaration);
  out += "<Response><Errors><Error>";
  open_tag(out, "Code");
  append_xml_escaped(out, wire.type);
  close_tag(out, "Code");
  open_tag(out, "Message");
  append_xml_escaped(out, error.message);
  close_tag(out, "Message");
  out += "</Error></Errors>";
  open_tag(out, "RequestID");
  append_xml_escaped(out, request_id);
  close_tag(out, "RequestID");
  out += "</Response>";
  return out;
}

}  // namespace

std::string query_error_body(const Error& error, std::string_view service,
                             std::string_view request_id) {
  return error_body(error, to_wire(error, service), request_id);
}

http::Response query_error_response(const http::Request& request, const Error& error,
                                    std::string_view service, const std::string& request_id) {
  WireError wire = to_wire(error, service);
  return api_response(request, static_cast<beast_http::status>(wire.status),
                      error_body(error, wire, request_id), kXmlContentType, request_id,
                      error.message);
}

}  // namespace wharf::aws
