// The ParameterFilters of DescribeParameters and GetParametersByPath (and DescribeParameters'
// older Filters): read and checked once, as a pure function of the request, then matched.
#pragma once

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "ssm/parameter.hpp"

namespace wharf::ssm {

enum class FilterUse { kDescribeParameters, kGetParametersByPath };

struct ParameterFilter {
  std::string key;     // Name, Path, Type, KeyId, Tier, DataType, Label or tag:KEY
  std::string option;  // Equals, BeginsWith, Contains, Recursive or OneLevel
  std::vector<std::string> values;
};
using ParameterFilters = std::vector<ParameterFilter>;

// Reads the request's filters. Keys and options the operation does not take are
// InvalidFilterKey and InvalidFilterOption, bad values InvalidFilterValue, as AWS names them;
// Filters with ParameterFilters is a ValidationException.
Result<ParameterFilters> read_filters(const boost::json::object& input, FilterUse use);

// Whether `name` is below `path` ("/" or "/a/b", as check_path returns it): any depth when
// `recursive`, else directly. Names without a leading '/' are at the root.
bool under_path(std::string_view name, std::string_view path, bool recursive);

// The version of `parameter` the filters select: the one carrying a Label filter's label, else
// the latest; nullptr when the filters do not match the parameter.
const ParameterVersion* select_version(const Parameter& parameter, const ParameterFilters& filters);

}  // namespace wharf::ssm
