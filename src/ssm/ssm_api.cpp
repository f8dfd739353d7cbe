// SsmApi: the Parameter Store operations, their checks, and durability before every answer.
#include "ssm/ssm_api.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <regex>

#include "common/json.hpp"
#include "ssm/filters.hpp"

namespace wharf::ssm {

namespace bj = boost::json;

namespace {

constexpr const char* kParameterKind = "ssm.parameter";
constexpr std::size_t kMaxTags = 50;
constexpr std::size_t kStandardMaxValue = 4096;
constexpr std::size_t kAdvancedMaxValue = 8192;
constexpr aws::PageMembers kPageMembers{"MaxResults", "NextToken", "InvalidNextToken"};

std::unexpected<Error> parameter_not_found(std::string_view name) {
  return fail_as(ErrorCode::kNotFound, "ParameterNotFound",
                 "Parameter " + std::string(name) +
                     " not found. Names are case sensitive; create it with PutParameter.");
}

std::unexpected<Error> version_not_found(std::string_view name, std::string_view selector) {
  return fail_as(ErrorCode::kNotFound, "ParameterVersionNotFound",
                 "Parameter " + std::string(name) + " has no version " + std::string(selector) +
                     ". GetParameterHistory lists its versions and labels.");
}

std::unexpected<Error> wire_error(std::string type, std::string message) {
  return fail_as(ErrorCode::kInvalidParameter, std::move(type), std::move(message));
}

// What PutParameter asks for, checked without looking at what is stored.
struct PutRequest {
  std::string name;
  std::string value;
  bool overwrite = false;
  std::optional<std::string> type;
  std::optional<std::string> description;
  std::optional<std::string> allowed_pattern;
  std::optional<std::string> key_id;
  std::optional<std::string> tier;
  std::optional<std::string> data_type;
  ParameterTags tags;
};

Status check_tag_keys(const ParameterTags& tags) {
  for (const auto& [key, value] : tags) {
    if (key.starts_with("aws:")) {
      return invalid("Tag keys beginning with 'aws:' are reserved for AWS: rename the tag '" + key +
                     "'.");
    }
  }
  return {};
}

ParameterTags read_tags(const bj::object& input) {
  ParameterTags tags;
  const auto* list = json::get_array(input, "Tags");
  if (list == nullptr) return tags;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    tags.emplace_back(json::string_or(item.as_object(), "Key", ""),
                      json::string_or(item.as_object(), "Value", ""));
  }
  return tags;
}

// Adds or replaces tags by key; a parameter may have at most kMaxTags.
Status merge_tags(ParameterTags& tags, const ParameterTags& added) {
  if (auto status = check_tag_keys(added); !status) return status;
  ParameterTags merged = tags;
  for (const auto& [key, value] : added) {
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&](const auto& tag) { return tag.first == key; });
    if (same == merged.end()) {
      merged.emplace_back(key, value);
      continue;
    }
    same->second = value;
  }
  if (merged.size() > kMaxTags) {
    return wire_error("TooManyTagsError", "A parameter can have at most " +
                                              std::to_string(kMaxTags) +
                                              " tags: remove some with RemoveTagsFromResource.");
  }
  tags = std::move(merged);
  return {};
}

// AllowedPatterns are the caller's: libstdc++'s polynomial (breadth-first) matcher keeps one
// like "(a|aa)*c" from backtracking for ever or recursing past the stack on a long value.
// Back-references, which it cannot run, are refused as invalid.
constexpr auto kPatternSyntax = std::regex::ECMAScript | std::regex_constants::__polynomial;

Status check_allowed_pattern(const std::string& pattern) {
  try {
    std::regex compiled(pattern, kPatternSyntax);
  } catch (const std::regex_error&) {
    return wire_error("InvalidAllowedPatternException",
                      "The AllowedPattern '" + pattern + "' is not a valid regular expression.");
  }
  return {};
}

Result<PutRequest> read_put_request(const bj::object& input, const aws::CallContext& context) {
  PutRequest request;
  request.name = json::string_or(input, "Name", "");
  if (auto status = check_name(request.name, context.region, context.account_id); !status) {
    return std::unexpected(status.error());
  }
  request.value = json::string_or(input, "Value", "");
  if (request.value.empty()) return invalid("A parameter's Value must not be empty.");
  request.overwrite = json::get_bool(input, "Overwrite").value_or(false);
  request.type = json::get_string(input, "Type");
  request.description = json::get_string(input, "Description");
  request.allowed_pattern = json::get_string(input, "AllowedPattern");
  request.key_id = json::get_string(input, "KeyId");
  request.tier = json::get_string(input, "Tier");
  request.data_type = json::get_string(input, "DataType");
  request.tags = read_tags(input);
  if (input.contains("Tags") && request.overwrite) {
    return invalid(
        "Invalid request: tags and overwrite can't be used together. To create a parameter with "
        "tags, please remove overwrite flag. To update tags for an existing parameter, please "
        "use AddTagsToResource or RemoveTagsFromResource.");
  }
  if (input.contains("Policies")) {
    return invalid("Wharf does not support parameter policies: leave out Policies.");
  }
  if (request.data_type && *request.data_type != "text") {
    return invalid("The data type '" + *request.data_type +
                   "' is not supported by Wharf: leave out DataType or give 'text'.");
  }
  if (request.key_id && !is_valid_key_id(*request.key_id)) {
    return wire_error("InvalidKeyId",
                      "The KeyId '" + *request.key_id +
                          "' is not a KMS key reference: give alias/NAME, a key id or a key ARN.");
  }
  if (request.allowed_pattern) {
    if (auto status = check_allowed_pattern(*request.allowed_pattern); !status) {
      return std::unexpected(status.error());
    }
  }
  ParameterTags checked;
  if (auto status = merge_tags(checked, request.tags); !status) {
    return std::unexpected(status.error());
  }
  return request;
}

// The tier a new version gets: Advanced stays Advanced, Intelligent-Tiering picks by size.
Result<std::string> resolve_tier(const PutRequest& request, const ParameterVersion* latest) {
  bool was_advanced = latest != nullptr && latest->tier == "Advanced";
  std::string requested = request.tier.value_or("");
  if (requested == "Standard" && was_advanced) {
    return invalid(
        "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from "
        "the advanced-parameter tier to the standard-parameter tier. If necessary, delete the "
        "advanced parameter and recreate it as a standard parameter.");
  }
  bool advanced = was_advanced || requested == "Advanced" ||
                  (requested == "Intelligent-Tiering" && request.value.size() > kStandardMaxValue);
  std::string tier = advanced ? "Advanced" : "Standard";
  std::size_t limit = advanced ? kAdvancedMaxValue : kStandardMaxValue;
  if (request.value.size() <= limit) return tier;
  if (!advanced) {
    return invalid(
        "Standard tier parameters support a maximum parameter value of 4096 "
        "characters. To create a larger parameter value, upgrade the parameter to use "
        "the advanced-parameter tier (Tier Advanced, up to 8192).");
  }
  return invalid(
      "Advanced tier parameters support a maximum parameter value of 8192 "
      "characters: this value has " +
      std::to_string(request.value.size()) + ".");
}

// The key a SecureString version is shown with: the given one, the previous one, or AWS's
// default; other types take none.
Result<std::string> resolve_key_id(const PutRequest& request, std::string_view type,
                                   const ParameterVersion* latest) {
  if (type != kSecureString) {
    if (request.key_id) {
      return invalid("KeyId applies to SecureString parameters only: leave it out for type " +
                     std::string(type) + ".");
    }
    return std::string();
  }
  if (request.key_id) return *request.key_id;
  if (latest != nullptr && !latest->key_id.empty()) return latest->key_id;
  return std::string(kDefaultKeyId);
}

// The version PutParameter adds after `latest` (nullptr for a new parameter). What the request
// leaves out is carried over from the latest version.
Result<ParameterVersion> next_version(const PutRequest& request, const ParameterVersion* latest) {
  if (!request.type && latest == nullptr) {
    return invalid(
        "A parameter type is required when you create a parameter: give Type "
        "String, StringList or SecureString.");
  }
  if (request.type && latest != nullptr && *request.type != latest->type) {
    return wire_error("HierarchyTypeMismatchException",
                      "Parameter Store doesn't support changing a parameter's type (here from " +
                          latest->type + " to " + *request.type +
                          "): delete the parameter and create it again, or use a new name.");
  }
  ParameterVersion version;
  version.value = request.value;
  version.type = request.type ? *request.type : latest->type;
  auto carried = [&](const std::optional<std::string>& given,
                     const std::string ParameterVersion::*member, std::string fallback) {
    if (given) return *given;
    return latest != nullptr ? latest->*member : fallback;
  };
  version.description = carried(request.description, &ParameterVersion::description, "");
  version.allowed_pattern =
      carried(request.allowed_pattern, &ParameterVersion::allowed_pattern, "");
  version.data_type = carried(request.data_type, &ParameterVersion::data_type, "text");
  auto key_id = resolve_key_id(request, version.type, latest);
  if (!key_id) return std::unexpected(key_id.error());
  version.key_id = *key_id;
  auto tier = resolve_tier(request, latest);
  if (!tier) return std::unexpected(tier.error());
  version.tier = *tier;
  if (!version.allowed_pattern.empty() &&
      !std::regex_match(version.value, std::regex(version.allowed_pattern, kPatternSyntax))) {
    return wire_error("ParameterPatternMismatchException",
                      "The value does not match the parameter's AllowedPattern " +
                          version.allowed_pattern + ": give a value that does.");
  }
  return version;
}

// The version a reference's selector picks (the latest without one).
Result<const ParameterVersion*> selected(const Parameter& parameter,
                                         const ParameterReference& reference) {
  const ParameterVersion* version = &parameter.latest();
  if (reference.version) version = parameter.find_version(*reference.version);
  if (reference.label) version = parameter.find_label(*reference.label);
  if (version == nullptr) return version_not_found(parameter.name, reference.selector());
  return version;
}

// Replies with the page's share of `items` (in ascending order of their keys) as "Parameters"
// (each through `to_wire`), and a NextToken when more follow.
template <typename Item, typename KeyOf, typename ToWire>
void reply_page(const std::vector<Item>& items, const aws::PageRequest& page,
                const aws::PageTokens& tokens, std::string_view scope, TimePoint now, KeyOf key_of,
                ToWire to_wire, const aws::JsonReply& reply) {
  bj::array list;
  auto last = aws::emit_page_by_key(items, page, key_of,
                                    [&](const Item& item) { list.push_back(to_wire(item)); });
  bj::object output{{"Parameters", std::move(list)}};
  if (last) output["NextToken"] = tokens.issue(scope, *last, now);
  reply(std::move(output));
}

}  // namespace

SsmApi::SsmApi(store::Store& store, const Clock& clock, const aws::PageTokens& tokens)
    : store_(store), clock_(clock), tokens_(tokens) {}

Status SsmApi::load() {
  auto records = store_.load(kParameterKind);
  if (!records) return std::unexpected(records.error().context("loading SSM parameters"));
  std::lock_guard lock(mutex_);
  for (const auto& record : *records) {
    auto slash = record.key.find('/');
    auto parameter = parameter_from_store(record.value);
    if (slash == std::string::npos || !parameter) {
      return fail(ErrorCode::kInternal,
                  "loading SSM parameters: the record " + record.key + " is damaged");
    }
    std::string name = parameter->name;
    regions_[record.key.substr(0, slash)][name] = std::move(*parameter);
  }
  return {};
}

void SsmApi::register_operations(aws::JsonService& service) {
  using Method = void (SsmApi::*)(const Context&, const Input&, Reply);
  auto bind = [&](const char* name, Method method) {
    service.add(name, [this, method](const Context& context, const Input& input, Reply reply) {
      (this->*method)(context, input, std::move(reply));
    });
  };
  bind("PutParameter", &SsmApi::put_parameter);
  bind("GetParameter", &SsmApi::get_parameter);
  bind("GetParameters", &SsmApi::get_parameters);
  bind("GetParametersByPath", &SsmApi::get_parameters_by_path);
  bind("DeleteParameter", &SsmApi::delete_parameter);
  bind("DeleteParameters", &SsmApi::delete_parameters);
  bind("DescribeParameters", &SsmApi::describe_parameters);
  bind("GetParameterHistory", &SsmApi::get_parameter_history);
  bind("LabelParameterVersion", &SsmApi::label_parameter_version);
  bind("UnlabelParameterVersion", &SsmApi::unlabel_parameter_version);
  bind("AddTagsToResource", &SsmApi::add_tags_to_resource);
  bind("RemoveTagsFromResource", &SsmApi::remove_tags_from_resource);
  bind("ListTagsForResource", &SsmApi::list_tags_for_resource);
}

Result<Parameter*> SsmApi::find(const Context& context, const ParameterReference& reference) {
  auto& parameters = regions_[context.region];
  auto found = parameters.find(reference.name);
  // An ARN's "parameter/a" may stand for "a" or "/a".
  if (found == parameters.end() && reference.ambiguous_root) {
    found = parameters.find("/" + reference.name);
  }
  if (found == parameters.end()) return parameter_not_found(reference.name);
  return &found->second;
}

Result<Parameter*> SsmApi::find_named(const Context& context, const Input& input) {
  auto reference = parse_reference(json::string_or(input, "Name", ""), context.region,
                                   context.account_id, false, false);
  if (!reference) return std::unexpected(reference.error());
  return find(context, *reference);
}

Result<Parameter*> SsmApi::find_resource(const Context& context, const Input& input) {
  std::string type = json::string_or(input, "ResourceType", "");
  if (type != "Parameter") {
    return wire_error("InvalidResourceType", "Wharf's SSM tags only parameters: ResourceType '" +
                                                 type + "' is not served; give Parameter.");
  }
  std::string id = json::string_or(input, "ResourceId", "");
  auto reference = parse_reference(id, context.region, context.account_id, false, true);
  auto parameter = reference ? find(context, *reference) : Result<Parameter*>(nullptr);
  if (!reference || !parameter) {
    return wire_error("InvalidResourceId", "There is no parameter '" + id +
                                               "' in this region: give the name of an existing "
                                               "parameter as ResourceId.");
  }
  return parameter;
}

store::Mutation SsmApi::put(const std::string& region, const Parameter& parameter) {
  return {kParameterKind, region + "/" + parameter.name, parameter_to_store(parameter)};
}

store::Mutation SsmApi::remove(const std::string& region, const std::string& name) {
  return {kParameterKind, region + "/" + name, std::nullopt};
}

Result<const ParameterVersion*> SsmApi::put_version(const Context& context, const Input& input,
                                                    std::vector<store::Mutation>& mutations) {
  auto request = read_put_request(input, context);
  if (!request) return std::unexpected(request.error());
  auto& parameters = regions_[context.region];
  auto existing = parameters.find(request->name);
  if (existing != parameters.end() && !request->overwrite) {
    return fail_as(ErrorCode::kClient, "ParameterAlreadyExists",
                   "The parameter " + request->name +
                       " already exists. To overwrite this value, set the overwrite option in the "
                       "request to true.");
  }
  const ParameterVersion* latest =
      existing == parameters.end() ? nullptr : &existing->second.latest();
  auto version = next_version(*request, latest);
  if (!version) return std::unexpected(version.error());
  version->modified = clock_.now();
  version->modified_user = context.principal_arn;
  Parameter created{request->name,
                    parameter_arn(context.region, context.account_id, request->name),
                    request->tags,
                    {}};
  Parameter& parameter = existing == parameters.end() ? created : existing->second;
  if (auto status = parameter.add_version(std::move(*version)); !status) {
    return std::unexpected(status.error());
  }
  if (existing == parameters.end()) {
    existing = parameters.emplace(request->name, std::move(created)).first;
  }
  mutations.push_back(put(context.region, existing->second));
  return &existing->second.latest();
}

void SsmApi::put_parameter(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  std::vector<store::Mutation> mutations;
  auto version = put_version(context, input, mutations);
  if (!version) return reply(std::unexpected(version.error()));
  store::commit_then_reply(store_, std::move(mutations),
                           bj::object{{"Version", (*version)->version}, {"Tier", (*version)->tier}},
                           std::move(reply));
}

void SsmApi::get_parameter(const Context& context, const Input& input, Reply reply) {
  bool decrypt = json::get_bool(input, "WithDecryption").value_or(false);
  auto reference = parse_reference(json::string_or(input, "Name", ""), context.region,
                                   context.account_id, true, true);
  if (!reference) return reply(std::unexpected(reference.error()));
  std::lock_guard lock(mutex_);
  auto parameter = find(context, *reference);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  auto version = selected(**parameter, *reference);
  if (!version) return reply(std::unexpected(version.error()));
  reply(bj::object{
      {"Parameter", parameter_to_wire(**parameter, **version, reference->selector(), decrypt)}});
}

void SsmApi::get_parameters(const Context& context, const Input& input, Reply reply) {
  bool decrypt = json::get_bool(input, "WithDecryption").value_or(false);
  std::vector<std::string> names = json::get_strings(input, "Names");
  std::lock_guard lock(mutex_);
  bj::array found;
  bj::array invalid_names;
  std::vector<std::string> seen;
  for (const auto& name : names) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    auto reference = parse_reference(name, context.region, context.account_id, true, true);
    auto parameter = reference ? find(context, *reference) : Result<Parameter*>(nullptr);
    auto version =
        parameter ? selected(**parameter, *reference) : Result<const ParameterVersion*>(nullptr);
    if (!reference || !parameter || !version) {
      invalid_names.push_back(bj::string(name));
      continue;
    }
    found.push_back(parameter_to_wire(**parameter, **version, reference->selector(), decrypt));
  }
  reply(bj::object{{"Parameters", std::move(found)},
                   {"InvalidParameters", std::move(invalid_names)}});
}

void SsmApi::get_parameters_by_path(const Context& context, const Input& input, Reply reply) {
  auto path = check_path(json::string_or(input, "Path", ""));
  if (!path) return reply(std::unexpected(path.error()));
  auto filters = read_filters(input, FilterUse::kGetParametersByPath);
  if (!filters) return reply(std::unexpected(filters.error()));
  bool recursive = json::get_bool(input, "Recursive").value_or(false);
  bool decrypt = json::get_bool(input, "WithDecryption").value_or(false);
  const auto* given_filters = json::get_array(input, "ParameterFilters");
  std::string scope = "GetParametersByPath\n" + *path + (recursive ? "\nR\n" : "\n\n") +
                      (given_filters ? bj::serialize(*given_filters) : "");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 10, 10, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  std::vector<std::pair<const Parameter*, const ParameterVersion*>> matching;
  for (const auto& [name, parameter] : regions_[context.region]) {
    if (!under_path(name, *path, recursive)) continue;
    if (const auto* version = select_version(parameter, *filters)) {
      matching.emplace_back(&parameter, version);
    }
  }
  reply_page(
      matching, *page, tokens_, scope, clock_.now(),
      [](const auto& match) { return match.first->name; },
      [&](const auto& match) {
        return parameter_to_wire(*match.first, *match.second, "", decrypt);
      },
      reply);
}

void SsmApi::delete_parameter(const Context& context, const Input& input, Reply reply) {
  auto reference = parse_reference(json::string_or(input, "Name", ""), context.region,
                                   context.account_id, false, false);
  if (!reference) return reply(std::unexpected(reference.error()));
  std::lock_guard lock(mutex_);
  auto& parameters = regions_[context.region];
  if (parameters.erase(reference->name) == 0) {
    return reply(parameter_not_found(reference->name));
  }
  store::commit_then_reply(store_, {remove(context.region, reference->name)}, bj::object{},
                           std::move(reply));
}

void SsmApi::delete_parameters(const Context& context, const Input& input, Reply reply) {
  std::vector<std::string> names = json::get_strings(input, "Names");
  std::lock_guard lock(mutex_);
  auto& parameters = regions_[context.region];
  std::vector<store::Mutation> mutations;
  bj::array deleted;
  bj::array invalid_names;
  for (const auto& name : names) {
    if (parameters.erase(name) == 0) {
      if (std::find(deleted.begin(), deleted.end(), bj::value(name)) == deleted.end()) {
        invalid_names.push_back(bj::string(name));
      }
      continue;
    }
    mutations.push_back(remove(context.region, name));
    deleted.push_back(bj::string(name));
  }
  store::commit_then_reply(store_, std::move(mutations),
                           bj::object{{"DeletedParameters", std::move(deleted)},
                                      {"InvalidParameters", std::move(invalid_names)}},
                           std::move(reply));
}

void SsmApi::describe_parameters(const Context& context, const Input& input, Reply reply) {
  auto filters = read_filters(input, FilterUse::kDescribeParameters);
  if (!filters) return reply(std::unexpected(filters.error()));
  bool shared = json::get_bool(input, "Shared").value_or(false);
  std::string scope = "DescribeParameters\n" + std::string(shared ? "S" : "") + "\n";
  for (const char* member : {"Filters", "ParameterFilters"}) {
    if (const auto* given = json::get_array(input, member)) scope += bj::serialize(*given);
    scope += "\n";
  }
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 50, 50, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  std::vector<const Parameter*> matching;
  // Nothing in Wharf is shared from another account.
  for (const auto& [name, parameter] : regions_[context.region]) {
    if (!shared && select_version(parameter, *filters)) matching.push_back(&parameter);
  }
  reply_page(
      matching, *page, tokens_, scope, clock_.now(),
      [](const Parameter* parameter) { return parameter->name; },
      [](const Parameter* parameter) { return metadata_to_wire(*parameter); }, reply);
}

void SsmApi::get_parameter_history(const Context& context, const Input& input, Reply reply) {
  bool decrypt = json::get_bool(input, "WithDecryption").value_or(false);
  std::string name = json::string_or(input, "Name", "");
  auto reference = parse_reference(name, context.region, context.account_id, false, true);
  if (!reference) return reply(std::unexpected(reference.error()));
  std::string scope = "GetParameterHistory\n" + reference->name;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 50, 50, kPageMembers);
  if (!page) return reply(std::unexpected(page.error()));

  std::lock_guard lock(mutex_);
  auto parameter = find(context, *reference);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  std::vector<const ParameterVersion*> versions;
  for (const auto& version : (*parameter)->versions) versions.push_back(&version);
  reply_page(
      versions, *page, tokens_, scope, clock_.now(),
      // Zero-padded, so that the keys sort as the versions do.
      [](const ParameterVersion* version) {
        std::string digits = std::to_string(version->version);
        return std::string(20 - std::min<std::size_t>(digits.size(), 20), '0') + digits;
      },
      [&](const ParameterVersion* version) {
        return history_to_wire(**parameter, *version, decrypt);
      },
      reply);
}

void SsmApi::label_parameter_version(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  auto parameter = find_named(context, input);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  std::int64_t number =
      json::get_int(input, "ParameterVersion").value_or((*parameter)->latest().version);
  if ((*parameter)->find_version(number) == nullptr) {
    return reply(version_not_found((*parameter)->name, ":" + std::to_string(number)));
  }
  auto invalid_labels = (*parameter)->attach_labels(number, json::get_strings(input, "Labels"));
  if (!invalid_labels) return reply(std::unexpected(invalid_labels.error()));
  store::commit_then_reply(store_, {put(context.region, **parameter)},
                           bj::object{{"InvalidLabels", json::strings_array(*invalid_labels)},
                                      {"ParameterVersion", number}},
                           std::move(reply));
}

void SsmApi::unlabel_parameter_version(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  auto parameter = find_named(context, input);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  std::int64_t number = json::get_int(input, "ParameterVersion").value_or(0);
  auto version =
      std::find_if((*parameter)->versions.begin(), (*parameter)->versions.end(),
                   [&](const ParameterVersion& candidate) { return candidate.version == number; });
  if (version == (*parameter)->versions.end()) {
    return reply(version_not_found((*parameter)->name, ":" + std::to_string(number)));
  }
  std::vector<std::string> removed;
  std::vector<std::string> not_there;
  for (const auto& label : json::get_strings(input, "Labels")) {
    (version->has_label(label) ? removed : not_there).push_back(label);
  }
  std::erase_if(version->labels, [&](const std::string& label) {
    return std::find(removed.begin(), removed.end(), label) != removed.end();
  });
  store::commit_then_reply(store_, {put(context.region, **parameter)},
                           bj::object{{"RemovedLabels", json::strings_array(removed)},
                                      {"InvalidLabels", json::strings_array(not_there)}},
                           std::move(reply));
}

void SsmApi::add_tags_to_resource(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  auto parameter = find_resource(context, input);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  if (auto status = merge_tags((*parameter)->tags, read_tags(input)); !status) {
    return reply(std::unexpected(status.error()));
  }
  store::commit_then_reply(store_, {put(context.region, **parameter)}, bj::object{},
                           std::move(reply));
}

void SsmApi::remove_tags_from_resource(const Context& context, const Input& input, Reply reply) {
  auto keys = json::get_strings(input, "TagKeys");
  std::lock_guard lock(mutex_);
  auto parameter = find_resource(context, input);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  std::erase_if((*parameter)->tags, [&](const auto& tag) {
    return std::find(keys.begin(), keys.end(), tag.first) != keys.end();
  });
  store::commit_then_reply(store_, {put(context.region, **parameter)}, bj::object{},
                           std::move(reply));
}

void SsmApi::list_tags_for_resource(const Context& context, const Input& input, Reply reply) {
  std::lock_guard lock(mutex_);
  auto parameter = find_resource(context, input);
  if (!parameter) return reply(std::unexpected(parameter.error()));
  reply(bj::object{{"TagList", tags_to_wire((*parameter)->tags)}});
}

}  // namespace wharf::ssm
