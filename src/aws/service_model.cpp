// Loads botocore service models into a shape graph and validates request bodies against it.
#include "aws/service_model.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "aws/embedded_models.hpp"
#include "aws/model_graph.hpp"

namespace wharf::aws {

namespace json = boost::json;

namespace {

// Coral lists every violation; a hostile request could have thousands, so the message stops here.
constexpr std::size_t kMaxReportedViolations = 10;
// Values echoed into error messages are cut at this length.
constexpr std::size_t kMaxEchoedChars = 256;

bool is_scalar(const Shape& shape) {
  switch (shape.type) {
    case ShapeType::kStructure:
    case ShapeType::kDocument:
    case ShapeType::kList:
    case ShapeType::kMap:
      return false;
    default:
      return true;
  }
}

bool is_numeric(const Shape& shape) {
  return shape.type == ShapeType::kInteger || shape.type == ShapeType::kLong ||
         shape.type == ShapeType::kDouble;
}

std::optional<double> as_double(const json::value& value) {
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  if (value.is_double()) return value.get_double();
  return std::nullopt;
}

template <typename Number>
void append_number(std::string& out, Number number) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number);
  out.append(buffer, end);
}

// Bounds in the model are JSON numbers; AWS prints whole ones without a fraction.
std::string format_bound(double bound) {
  std::string out;
  if (std::trunc(bound) == bound && std::abs(bound) < 1e15) {
    append_number(out, static_cast<std::int64_t>(bound));
  } else {
    append_number(out, bound);
  }
  return out;
}

// Java's String.length(), which Coral's length constraints count: UTF-16 code units.
std::size_t utf16_length(std::string_view text) {
  std::size_t length = 0;
  for (unsigned char byte : text) {
    if ((byte & 0xC0) != 0x80) ++length;  // each code point starts with a non-continuation byte
    if (byte >= 0xF0) ++length;           // four-byte sequences need a surrogate pair
  }
  return length;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// The decoded size of standard base64 text (padding optional), or nullopt when it is not base64.
// Blobs can be megabytes, so this checks without decoding.
std::optional<std::size_t> base64_decoded_size(std::string_view text) {
  std::size_t padding = 0;
  while (padding < 2 && text.ends_with('=')) {
    text.remove_suffix(1);
    ++padding;
  }
  if (padding > 0 && (text.size() + padding) % 4 != 0) return std::nullopt;
  if (text.size() % 4 == 1) return std::nullopt;
  if (!std::ranges::all_of(text, is_base64_char)) return std::nullopt;
  return text.size() * 3 / 4;
}

// Reads the fixed-width numbers and separators of an ISO-8601 timestamp.
class TimestampCursor {
 public:
  explicit TimestampCursor(std::string_view text) : text_(text) {}

  bool done() const { return pos_ == text_.size(); }
  bool skip(char c) {
    if (done() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool number(std::size_t width, int low, int high) {
    if (text_.size() - pos_ < width) return false;
    int value = 0;
    for (std::size_t digit_idx = 0; digit_idx < width; ++digit_idx) {
      char c = text_[pos_ + digit_idx];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    pos_ += width;
    return value >= low && value <= high;
  }
  bool fraction() {
    std::size_t start = pos_;
    while (!done() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// The string forms SDKs and people send for timestamps: 2024-05-01, 2024-05-01T12:30,
// 2024-05-01T12:30:45.123Z, 2024-05-01T12:30:45+02:00.
bool is_iso8601(std::string_view text) {
  TimestampCursor cursor(text);
  if (!cursor.number(4, 0, 9999) || !cursor.skip('-') || !cursor.number(2, 1, 12) ||
      !cursor.skip('-') || !cursor.number(2, 1, 31)) {
    return false;
  }
  if (cursor.done()) return true;
  if (!cursor.skip('T') && !cursor.skip('t') && !cursor.skip(' ')) return false;
  if (!cursor.number(2, 0, 23) || !cursor.skip(':') || !cursor.number(2, 0, 59)) return false;
  if (cursor.skip(':')) {
    if (!cursor.number(2, 0, 60)) return false;  // 60: a leap second
    if ((cursor.skip('.') || cursor.skip(',')) && !cursor.fraction()) return false;
  }
  if (cursor.done()) return true;
  if (cursor.skip('Z') || cursor.skip('z')) return cursor.done();
  if (!cursor.skip('+') && !cursor.skip('-')) return false;
  if (!cursor.number(2, 0, 23)) return false;
  if (cursor.done()) return true;
  cursor.skip(':');
  return cursor.number(2, 0, 59) && cursor.done();
}

// Renders a value the way Coral's messages show it (Java's toString): strings bare, lists as
// [a, b], maps as {k=v}. Stops growing `out` past kMaxEchoedChars.
void append_java_style(std::string& out, const json::value& value) {
  if (out.size() > kMaxEchoedChars) return;
  switch (value.kind()) {
    case json::kind::string:
      out.append(value.get_string().subview(
          0, std::min<std::size_t>(value.get_string().size(), kMaxEchoedChars + 1)));
      return;
    case json::kind::int64:
      return append_number(out, value.get_int64());
    case json::kind::uint64:
      return append_number(out, value.get_uint64());
    case json::kind::double_:
      return append_number(out, value.get_double());
    case json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case json::kind::null:
      out += "null";
      return;
    case json::kind::array: {
      out += '[';
      const char* separator = "";
      for (const json::value& element : value.get_array()) {
        out += std::exchange(separator, ", ");
        append_java_style(out, element);
        if (out.size() > kMaxEchoedChars) return;
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      const char* separator = "";
      for (const json::key_value_pair& entry : value.get_object()) {
        out += std::exchange(separator, ", ");
        out.append(entry.key());
        out += '=';
        append_java_style(out, entry.value());
        if (out.size() > kMaxEchoedChars) return;
      }
      out += '}';
      return;
    }
  }
}

std::string java_style(const json::value& value) {
  std::string out;
  append_java_style(out, value);
  if (out.size() > kMaxEchoedChars) out.replace(kMaxEchoedChars, std::string::npos, "...");
  return out;
}

// "a string ("abc")", "an integer (5)", "an array": what a request sent where something else was
// expected. `hidden` leaves out the value itself.
std::string describe_value(const json::value& value, bool hidden) {
  auto with_value = [&](std::string kind_name) {
    if (hidden) return kind_name;
    // Strings are quoted and escaped; numbers shortest-form (serialize would write 1.5E0).
    std::string text = value.is_string() ? json::serialize(value) : java_style(value);
    if (text.size() > kMaxEchoedChars) text.replace(kMaxEchoedChars, std::string::npos, "...");
    return kind_name + " (" + text + ")";
  };
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return with_value("a boolean");
    case json::kind::int64:
    case json::kind::uint64:
      return with_value("an integer");
    case json::kind::double_:
      return with_value("a number");
    case json::kind::string:
      return with_value("a string");
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "an unknown value";
}

std::string_view expected_name(const Shape& shape) {
  switch (shape.type) {
    case ShapeType::kStructure:
    case ShapeType::kDocument:
    case ShapeType::kMap:
      return "an object";
    case ShapeType::kList:
      return "an array";
    case ShapeType::kString:
      return "a string";
    case ShapeType::kInteger:
    case ShapeType::kLong:
      return "an integer";
    case ShapeType::kBoolean:
      return "a boolean";
    case ShapeType::kDouble:
      return "a number";
    case ShapeType::kTimestamp:
      return "a timestamp (epoch seconds or an ISO-8601 string)";
    case ShapeType::kBlob:
      return "a base64-encoded string";
  }
  return "a value";
}

// Coral's clause for a min/max bound: strings, blobs and collections have a length, numbers a
// value.
std::string bound_clause(const Shape& shape, bool is_max, double bound) {
  std::string clause = is_numeric(shape) ? "Member must have value " : "Member must have length ";
  clause += is_max ? "less than or equal to " : "greater than or equal to ";
  return clause + format_bound(bound);
}

std::string enum_clause(const Shape& shape) {
  std::string clause = "Member must satisfy enum value set: [";
  const char* separator = "";
  for (const std::string& enum_value : shape.enum_values) {
    clause += std::exchange(separator, ", ");
    clause += enum_value;
  }
  return clause + "]";
}

// The clause for the first bound `measure` breaks, or empty when it is within both.
std::string bounds_violation(const Shape& shape, double measure) {
  if (shape.max && measure > *shape.max) return bound_clause(shape, true, *shape.max);
  if (shape.min && measure < *shape.min) return bound_clause(shape, false, *shape.min);
  return {};
}

std::string string_violation(const Shape& shape, std::string_view text) {
  if (shape.min || shape.max) {
    std::string clause = bounds_violation(shape, static_cast<double>(utf16_length(text)));
    if (!clause.empty()) return clause;
  }
  if (shape.enum_values.empty()) return {};
  if (std::ranges::binary_search(shape.sorted_enum_values, text, std::less<>{})) return {};
  return enum_clause(shape);
}

// The clause for the first constraint a scalar of the right type breaks, or empty.
std::string scalar_violation(const Shape& shape, const json::value& value) {
  switch (shape.type) {
    case ShapeType::kString:
      return string_violation(shape, value.get_string());
    case ShapeType::kInteger:
    case ShapeType::kLong:
    case ShapeType::kDouble:
      return bounds_violation(shape, *as_double(value));
    case ShapeType::kBlob:
      return bounds_violation(shape, static_cast<double>(*base64_decoded_size(value.get_string())));
    default:
      return {};
  }
}

// Every constraint of an element shape, as Coral lists them when an element of a list or map
// breaks one: "Member must have length less than or equal to 128, Member must have ...".
std::string constraint_list(const Shape& shape) {
  std::vector<std::string> clauses;
  if (shape.max) clauses.push_back(bound_clause(shape, true, *shape.max));
  if (shape.min) clauses.push_back(bound_clause(shape, false, *shape.min));
  if (!shape.enum_values.empty()) clauses.push_back(enum_clause(shape));
  std::string list;
  for (const std::string& clause : clauses) {
    if (!list.empty()) list += ", ";
    list += clause;
  }
  return list;
}

struct PathStep {
  enum class Kind : std::uint8_t { kMember, kIndex, kKey };
  Kind kind = Kind::kMember;
  std::string_view name;  // member name or map key
  std::size_t index = 0;  // list index, from 0
  bool hidden = false;    // inside a sensitive shape
};

// Walks one request body against an input shape. Type errors and missing members stop the walk
// (AWS cannot even deserialize such a request); constraint violations are collected and reported
// together, as Coral does.
class Validator {
 public:
  Status validate(const Shape& input, const json::value& body) {
    if (auto status = walk_structure(input, body); !status) return status;
    if (violations_.empty()) return {};
    std::string message = std::to_string(violations_.size());
    message +=
        violations_.size() == 1 ? " validation error detected: " : " validation errors detected: ";
    for (std::size_t violation_idx = 0; violation_idx < violations_.size(); ++violation_idx) {
      if (violation_idx > 0) message += "; ";
      message += violations_[violation_idx];
    }
    return invalid(std::move(message));
  }

 private:
  // Pushes a path step for the lifetime of a scope.
  class Step {
   public:
    Step(std::vector<PathStep>& path, PathStep step, const Shape& shape) : path_(path) {
      step.hidden = shape.sensitive || (!path_.empty() && path_.back().hidden);
      path_.push_back(step);
    }
    ~Step() { path_.pop_back(); }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;

   private:
    std::vector<PathStep>& path_;
  };

  bool hidden() const { return !path_.empty() && path_.back().hidden; }

  Status walk(const Shape& shape, const json::value& value) {
    switch (shape.type) {
      case ShapeType::kStructure:
        return walk_structure(shape, value);
      case ShapeType::kDocument:
        return {};
      case ShapeType::kList:
        return walk_list(shape, value);
      case ShapeType::kMap:
        return walk_map(shape, value);
      default:
        return walk_scalar(shape, value);
    }
  }

  Status walk_structure(const Shape& shape, const json::value& value) {
    const json::object* object = value.if_object();
    if (object == nullptr) return type_error(shape, value);
    for (const Member& member : shape.members) {
      const json::value* field = object->if_contains(member.name);
      bool absent = field == nullptr || field->is_null();
      if (absent && !member.required) continue;
      Step step(path_, {PathStep::Kind::kMember, member.name}, *member.shape);
      if (absent) {
        return fail(ErrorCode::kMissingParameter, "Missing required parameter: " + sdk_path());
      }
      if (auto status = walk(*member.shape, *field); !status) return status;
    }
    return {};
  }

  Status walk_list(const Shape& shape, const json::value& value) {
    const json::array* array = value.if_array();
    if (array == nullptr) return type_error(shape, value);
    check_bounds(shape, value, static_cast<double>(array->size()));
    const Shape& element = *shape.member;
    bool element_violated = false;
    for (std::size_t element_idx = 0; element_idx < array->size(); ++element_idx) {
      Step step(path_, {PathStep::Kind::kIndex, {}, element_idx}, element);
      if (auto status = walk_element(element, (*array)[element_idx], element_violated); !status) {
        return status;
      }
    }
    // Coral reports a bad scalar element once, against the whole list.
    if (element_violated) {
      report(value, "Member must satisfy constraint: [" + constraint_list(element) + "]",
             element.sensitive);
    }
    return {};
  }

  Status walk_map(const Shape& shape, const json::value& value) {
    const json::object* object = value.if_object();
    if (object == nullptr) return type_error(shape, value);
    check_bounds(shape, value, static_cast<double>(object->size()));
    bool key_violated = false;
    bool value_violated = false;
    for (const json::key_value_pair& entry : *object) {
      if (shape.key->type == ShapeType::kString && !key_violated) {
        key_violated = !string_violation(*shape.key, entry.key()).empty();
      }
      Step step(path_, {PathStep::Kind::kKey, entry.key()}, *shape.value);
      if (auto status = walk_element(*shape.value, entry.value(), value_violated); !status) {
        return status;
      }
    }
    if (key_violated) {
      report(value, "Map keys must satisfy constraint: [" + constraint_list(*shape.key) + "]",
             shape.key->sensitive);
    }
    if (value_violated) {
      report(value, "Map value must satisfy constraint: [" + constraint_list(*shape.value) + "]",
             shape.value->sensitive);
    }
    return {};
  }

  // An element of a list or map. Scalars only note that they broke a constraint, for the
  // collection to report; anything else is walked.
  Status walk_element(const Shape& shape, const json::value& value, bool& violated) {
    if (!is_scalar(shape)) return walk(shape, value);
    if (auto status = check_scalar_type(shape, value); !status) return status;
    if (!violated) violated = !scalar_violation(shape, value).empty();
    return {};
  }

  Status walk_scalar(const Shape& shape, const json::value& value) {
    if (auto status = check_scalar_type(shape, value); !status) return status;
    std::string clause = scalar_violation(shape, value);
    // A blob's text is base64 of bytes nobody wants echoed, so Coral leaves it out.
    if (!clause.empty()) report(value, std::move(clause), shape.type == ShapeType::kBlob);
    return {};
  }

  Status check_scalar_type(const Shape& shape, const json::value& value) const {
    switch (shape.type) {
      case ShapeType::kString:
        if (value.is_string()) return {};
        break;
      case ShapeType::kInteger:
        return check_integer(shape, value, std::numeric_limits<std::int32_t>::min(),
                             std::numeric_limits<std::int32_t>::max(), "a 32-bit");
      case ShapeType::kLong:
        return check_integer(shape, value, std::numeric_limits<std::int64_t>::min(),
                             std::numeric_limits<std::int64_t>::max(), "a 64-bit");
      case ShapeType::kBoolean:
        if (value.is_bool()) return {};
        break;
      case ShapeType::kDouble:
        if (value.is_number()) return {};
        break;
      case ShapeType::kTimestamp:
        if (value.is_number() || (value.is_string() && is_iso8601(value.get_string()))) return {};
        break;
      case ShapeType::kBlob:
        if (value.is_string() && base64_decoded_size(value.get_string())) return {};
        break;
      default:
        return {};
    }
    return type_error(shape, value);
  }

  Status check_integer(const Shape& shape, const json::value& value, std::int64_t low,
                       std::int64_t high, std::string_view width) const {
    if (value.is_uint64()) return out_of_range(value, width);  // only ever above INT64_MAX
    if (!value.is_int64()) return type_error(shape, value);
    if (value.get_int64() < low || value.get_int64() > high) return out_of_range(value, width);
    return {};
  }

  Status type_error(const Shape& shape, const json::value& value) const {
    return invalid("Invalid type for parameter " + sdk_path() + ": expected " +
                   std::string(expected_name(shape)) + ", got " + describe_value(value, hidden()));
  }

  Status out_of_range(const json::value& value, std::string_view width) const {
    std::string shown = hidden() ? "the value" : json::serialize(value);
    return invalid("Invalid value for parameter " + sdk_path() + ": " + shown +
                   " does not fit in " + std::string(width) + " integer");
  }

  void check_bounds(const Shape& shape, const json::value& value, double measure) {
    if (!shape.min && !shape.max) return;
    std::string clause = bounds_violation(shape, measure);
    if (!clause.empty()) report(value, std::move(clause), false);
  }

  // Records a constraint violation at the current path, in Coral's words.
  void report(const json::value& value, std::string clause, bool hide_value) {
    if (violations_.size() >= kMaxReportedViolations) return;
    std::string text = "Value ";
    if (!hide_value && !hidden()) text += "'" + java_style(value) + "' ";
    text += "at '" + coral_path() + "' failed to satisfy constraint: " + std::move(clause);
    violations_.push_back(std::move(text));
  }

  // The path as SDKs name parameters: containerDefinitions[0].portMappings[1].containerPort.
  std::string sdk_path() const {
    std::string out;
    for (const PathStep& step : path_) {
      if (step.kind == PathStep::Kind::kIndex) {
        out += '[';
        append_number(out, step.index);
        out += ']';
        continue;
      }
      if (!out.empty()) out += '.';
      out.append(step.name);
    }
    return out;
  }

  // The path as Coral names members: containerDefinitions.1.member.portMappings.2.member.
  std::string coral_path() const {
    std::string out;
    for (const PathStep& step : path_) {
      if (!out.empty()) out += '.';
      if (step.kind != PathStep::Kind::kIndex) {
        out.append(step.name);
        continue;
      }
      append_number(out, step.index + 1);
      out += ".member";
    }
    return out;
  }

  std::vector<PathStep> path_;
  std::vector<std::string> violations_;
};

// Builds the shape graph from a model document, resolving every shape reference once.
class GraphBuilder {
 public:
  explicit GraphBuilder(ModelGraph& graph) : graph_(graph) {}
  Status build(const json::object& model);

 private:
  Status add_shapes(const json::object& shapes);
  Status fill_shape(Shape& shape, const json::object& definition);
  Status fill_members(Shape& shape, const json::object& definition);
  Status add_operations(const json::object& operations);
  Result<const Shape*> resolve(const json::object& parent, std::string_view field,
                               std::string_view owner) const;

  ModelGraph& graph_;
  std::unordered_map<std::string_view, Shape*> by_name_;
};

Result<ShapeType> shape_type(std::string_view type, bool document) {
  if (type == "structure") return document ? ShapeType::kDocument : ShapeType::kStructure;
  if (type == "list") return ShapeType::kList;
  if (type == "map") return ShapeType::kMap;
  if (type == "string") return ShapeType::kString;
  if (type == "integer") return ShapeType::kInteger;
  if (type == "long") return ShapeType::kLong;
  if (type == "boolean") return ShapeType::kBoolean;
  if (type == "double" || type == "float") return ShapeType::kDouble;
  if (type == "timestamp") return ShapeType::kTimestamp;
  if (type == "blob") return ShapeType::kBlob;
  return fail(ErrorCode::kInternal, "unsupported shape type '" + std::string(type) + "'");
}

bool flag(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  return value != nullptr && value->is_bool() && value->get_bool();
}

std::optional<double> number_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  return value == nullptr ? std::nullopt : as_double(*value);
}

std::string_view string_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  if (value == nullptr || !value->is_string()) return {};
  return value->get_string();
}

const json::object* object_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  return value == nullptr ? nullptr : value->if_object();
}

[[noreturn]] void load_failed(std::string_view service, const Error& error) {
  std::fprintf(stderr, "wharf: the embedded %.*s model is broken: %s\n",
               static_cast<int>(service.size()), service.data(), error.message.c_str());
  std::abort();
}

Status GraphBuilder::build(const json::object& model) {
  if (const json::object* metadata = object_field(model, "metadata")) {
    graph_.target_prefix = string_field(*metadata, "targetPrefix");
  }
  const json::object* shapes = object_field(model, "shapes");
  if (shapes == nullptr) return fail(ErrorCode::kInternal, "the model has no shapes");
  if (auto status = add_shapes(*shapes); !status) return status;
  const json::object* operations = object_field(model, "operations");
  if (operations == nullptr) return fail(ErrorCode::kInternal, "the model has no operations");
  return add_operations(*operations);
}

Status GraphBuilder::add_shapes(const json::object& shapes) {
  graph_.shapes.resize(shapes.size());
  std::size_t shape_idx = 0;
  for (const json::key_value_pair& entry : shapes) {
    Shape& shape = graph_.shapes[shape_idx++];
    shape.name = entry.key();
    by_name_.emplace(entry.key(), &shape);
  }
  shape_idx = 0;
  for (const json::key_value_pair& entry : shapes) {
    Shape& shape = graph_.shapes[shape_idx++];
    const json::object* definition = entry.value().if_object();
    if (definition == nullptr) {
      return fail(ErrorCode::kInternal, "shape " + shape.name + " is not an object");
    }
    if (auto status = fill_shape(shape, *definition); !status) {
      return std::unexpected(std::move(status.error()).context("shape " + shape.name));
    }
    if (flag(*definition, "exception")) graph_.exceptions.push_back(shape.name);
  }
  std::ranges::sort(graph_.exceptions);
  return {};
}

Status GraphBuilder::fill_shape(Shape& shape, const json::object& definition) {
  auto type = shape_type(string_field(definition, "type"), flag(definition, "document"));
  if (!type) return std::unexpected(std::move(type.error()));
  shape.type = *type;
  shape.sensitive = flag(definition, "sensitive");
  shape.min = number_field(definition, "min");
  shape.max = number_field(definition, "max");
  shape.location_name = string_field(definition, "locationName");
  shape.flattened = flag(definition, "flattened");
  switch (shape.type) {
    case ShapeType::kStructure:
      return fill_members(shape, definition);
    case ShapeType::kList: {
      auto member = resolve(definition, "member", shape.name);
      if (!member) return std::unexpected(std::move(member.error()));
      shape.member = *member;
      if (const json::object* reference = object_field(definition, "member")) {
        shape.member_location_name = string_field(*reference, "locationName");
      }
      return {};
    }
    case ShapeType::kMap: {
      auto key = resolve(definition, "key", shape.name);
      if (!key) return std::unexpected(std::move(key.error()));
      auto value = resolve(definition, "value", shape.name);
      if (!value) return std::unexpected(std::move(value.error()));
      shape.key = *key;
      shape.value = *value;
      return {};
    }
    case ShapeType::kString:
      if (const json::value* enum_values = definition.if_contains("enum")) {
        if (!enum_values->is_array()) return fail(ErrorCode::kInternal, "enum is not a list");
        for (const json::value& enum_value : enum_values->get_array()) {
          if (!enum_value.is_string()) return fail(ErrorCode::kInternal, "enum value not a string");
          shape.enum_values.emplace_back(enum_value.get_string());
        }
        shape.sorted_enum_values = shape.enum_values;
        std::ranges::sort(shape.sorted_enum_values);
      }
      return {};
    default:
      return {};
  }
}

Status GraphBuilder::fill_members(Shape& shape, const json::object& definition) {
  if (const json::object* members = object_field(definition, "members")) {
    for (const json::key_value_pair& entry : *members) {
      const json::object* reference = entry.value().if_object();
      if (reference == nullptr) {
        return fail(ErrorCode::kInternal, "member " + std::string(entry.key()) + " is malformed");
      }
      auto member_shape = resolve(*reference, "shape", entry.key());
      if (!member_shape) return std::unexpected(std::move(member_shape.error()));
      shape.members.push_back(
          Member{.name = std::string(entry.key()),
                 .shape = *member_shape,
                 .location_name = std::string(string_field(*reference, "locationName")),
                 .query_name = std::string(string_field(*reference, "queryName")),
                 .flattened = flag(*reference, "flattened")});
    }
  }
  const json::value* required = definition.if_contains("required");
  if (required == nullptr) return {};
  if (!required->is_array()) return fail(ErrorCode::kInternal, "required is not a list");
  for (const json::value& name : required->get_array()) {
    auto member = std::ranges::find_if(shape.members, [&](const Member& candidate) {
      return name.is_string() && candidate.name == std::string_view(name.get_string());
    });
    if (member == shape.members.end()) {
      return fail(ErrorCode::kInternal, "required member " + json::serialize(name) + " is unknown");
    }
    member->required = true;
  }
  return {};
}

Status GraphBuilder::add_operations(const json::object& operations) {
  for (const json::key_value_pair& entry : operations) {
    const json::object* definition = entry.value().if_object();
    if (definition == nullptr) {
      return fail(ErrorCode::kInternal,
                  "operation " + std::string(entry.key()) + " is not an object");
    }
    Operation operation{std::string(entry.key())};
    for (auto [field, target] :
         {std::pair{"input", &operation.input}, std::pair{"output", &operation.output}}) {
      const json::object* reference = object_field(*definition, field);
      if (reference == nullptr) continue;
      auto shape = resolve(*reference, "shape", operation.name);
      if (!shape) return std::unexpected(std::move(shape.error()));
      *target = *shape;
    }
    graph_.operations.push_back(std::move(operation));
  }
  std::ranges::sort(graph_.operations, {}, &Operation::name);
  return {};
}

// Follows `parent[field]`, which is either a shape name ("shape": "String") or a reference
// object ("member": {"shape": "String"}).
Result<const Shape*> GraphBuilder::resolve(const json::object& parent, std::string_view field,
                                           std::string_view owner) const {
  const json::value* value = parent.if_contains(field);
  if (value != nullptr && value->is_object()) {
    return resolve(value->get_object(), "shape", owner);
  }
  if (value == nullptr || !value->is_string()) {
    return fail(ErrorCode::kInternal,
                std::string(owner) + " has no shape reference in '" + std::string(field) + "'");
  }
  auto found = by_name_.find(std::string_view(value->get_string()));
  if (found == by_name_.end()) {
    return fail(ErrorCode::kInternal, std::string(owner) + " refers to unknown shape " +
                                          std::string(value->get_string()));
  }
  return found->second;
}

const ServiceModel& load_embedded(std::string_view service, std::string_view model_json) {
  auto model = ServiceModel::parse(model_json);
  if (!model) load_failed(service, model.error());
  // Leaked on purpose: handlers on every thread may use it until the process exits.
  return *new ServiceModel(std::move(*model));
}

}  // namespace

ServiceModel::ServiceModel(std::unique_ptr<const ModelGraph> graph) : graph_(std::move(graph)) {}
ServiceModel::ServiceModel(ServiceModel&&) noexcept = default;
ServiceModel& ServiceModel::operator=(ServiceModel&&) noexcept = default;
ServiceModel::~ServiceModel() = default;

const ServiceModel& ServiceModel::ecs() {
  static const ServiceModel& model = load_embedded("ecs", embedded_ecs_model());
  return model;
}

const ServiceModel& ServiceModel::ecr() {
  static const ServiceModel& model = load_embedded("ecr", embedded_ecr_model());
  return model;
}

const ServiceModel& ServiceModel::ec2() {
  static const ServiceModel& model = load_embedded("ec2", embedded_ec2_model());
  return model;
}

const ServiceModel& ServiceModel::secretsmanager() {
  static const ServiceModel& model =
      load_embedded("secretsmanager", embedded_secretsmanager_model());
  return model;
}

const ServiceModel& ServiceModel::ssm() {
  static const ServiceModel& model = load_embedded("ssm", embedded_ssm_model());
  return model;
}

Result<ServiceModel> ServiceModel::parse(std::string_view model_json) {
  json::error_code ec;
  json::value document = json::parse(model_json, ec);
  if (ec) return fail(ErrorCode::kInternal, "parsing service model: " + ec.message());
  if (!document.is_object()) return fail(ErrorCode::kInternal, "service model is not an object");
  auto graph = std::make_unique<ModelGraph>();
  if (auto status = GraphBuilder(*graph).build(document.get_object()); !status) {
    return std::unexpected(std::move(status.error()).context("loading service model"));
  }
  return ServiceModel(std::move(graph));
}

std::string_view ServiceModel::target_prefix() const {
  return graph_->target_prefix;
}

bool ServiceModel::has_operation(std::string_view name) const {
  return graph_->find_operation(name) != nullptr;
}

bool ServiceModel::is_exception(std::string_view shape_name) const {
  return std::ranges::binary_search(graph_->exceptions, shape_name, std::less<>{});
}

Status ServiceModel::validate_input(std::string_view operation,
                                    const boost::json::value& body) const {
  const Operation* found = graph_->find_operation(operation);
  if (found == nullptr) {
    return fail(ErrorCode::kUnknownOperation, "Unknown operation " + std::string(operation));
  }
  if (!body.is_object()) {
    return fail(ErrorCode::kSerialization,
                "The request body must be a JSON object, got " + describe_value(body, true));
  }
  if (found->input == nullptr) return {};
  return Validator().validate(*found->input, body);
}

}  // namespace wharf::aws
