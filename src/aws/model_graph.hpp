// The shape graph of a loaded service model, internal to src/aws: service_model.cpp builds it and
// validates requests with it; the Query codec (query_api.cpp) names wire members with it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::aws {

enum class ShapeType : std::uint8_t {
  kStructure,
  kDocument,  // a structure marked "document": any JSON value
  kList,
  kMap,
  kString,
  kInteger,  // 32-bit
  kLong,     // 64-bit
  kBoolean,
  kDouble,  // double and float
  kTimestamp,
  kBlob,
};

struct Shape;

struct Member {
  std::string name;
  const Shape* shape = nullptr;
  bool required = false;
  // The XML/Query traits of the member reference; empty when it has none, in which case the
  // target shape's own apply (botocore merges the reference over the shape).
  std::string location_name;
  std::string query_name;
  bool flattened = false;
};

struct Shape {
  std::string name;
  ShapeType type = ShapeType::kString;
  bool sensitive = false;     // AWS never echoes these values in errors
  std::optional<double> min;  // length of strings, blobs, lists, maps; value of numbers
  std::optional<double> max;
  std::vector<Member> members;                  // structure, in model order
  std::vector<std::string> enum_values;         // string, in model order, as AWS lists them
  std::vector<std::string> sorted_enum_values;  // the same, for lookup
  const Shape* member = nullptr;                // list element
  const Shape* key = nullptr;                   // map
  const Shape* value = nullptr;                 // map
  std::string location_name;                    // the shape's own locationName, rarely set
  std::string member_location_name;             // list: the element reference's locationName
  bool flattened = false;
};

struct Operation {
  std::string name;
  const Shape* input = nullptr;   // null when the operation takes no input
  const Shape* output = nullptr;  // null when it answers nothing but the request id
};

struct ModelGraph {
  std::string target_prefix;            // JSON protocols only
  std::vector<Shape> shapes;            // never resized once filled: shapes point into it
  std::vector<Operation> operations;    // sorted by name
  std::vector<std::string> exceptions;  // sorted

  const Operation* find_operation(std::string_view name) const {
    auto found = std::ranges::lower_bound(operations, name, std::less<>{}, &Operation::name);
    if (found == operations.end() || found->name != name) return nullptr;
    return &*found;
  }
};

}  // namespace wharf::aws
