// Small accessors over boost::json for request members that the service model already type-checked.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::json {

// The member, or nullptr when absent or JSON null (AWS treats null as absent).
inline const boost::json::value* member(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return nullptr;
  return value;
}

inline std::optional<std::string> get_string(const boost::json::object& object,
                                             std::string_view key) {
  const auto* value = member(object, key);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return std::string(value->as_string());
}

inline std::string string_or(const boost::json::object& object, std::string_view key,
                             std::string fallback) {
  auto value = get_string(object, key);
  return value ? *value : std::move(fallback);
}

inline std::optional<int64_t> get_int(const boost::json::object& object, std::string_view key) {
  const auto* value = member(object, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<int64_t>(value->as_uint64());
  return std::nullopt;
}

inline std::optional<bool> get_bool(const boost::json::object& object, std::string_view key) {
  const auto* value = member(object, key);
  if (value == nullptr || !value->is_bool()) return std::nullopt;
  return value->as_bool();
}

inline const boost::json::array* get_array(const boost::json::object& object,
                                           std::string_view key) {
  const auto* value = member(object, key);
  if (value == nullptr || !value->is_array()) return nullptr;
  return &value->as_array();
}

inline const boost::json::object* get_object(const boost::json::object& object,
                                             std::string_view key) {
  const auto* value = member(object, key);
  if (value == nullptr || !value->is_object()) return nullptr;
  return &value->as_object();
}

// The strings of an array member, skipping items that are not strings; empty when absent.
inline std::vector<std::string> get_strings(const boost::json::object& object,
                                            std::string_view key) {
  std::vector<std::string> out;
  const auto* list = get_array(object, key);
  if (list == nullptr) return out;
  for (const auto& item : *list) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

inline boost::json::array strings_array(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

}  // namespace wharf::json
