// Task definition operations: register, describe, list, list families, deregister, delete.
#include <charconv>
#include <cstdio>
#include <mutex>

#include "common/arn.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/task_definition_validation.hpp"
#include "ecs/validation.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr int64_t kMaxRevisionsPerFamily = 1'000'000;

std::optional<int64_t> parse_revision(std::string_view text) {
  int64_t revision = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), revision);
  if (ec != std::errc() || end != text.data() + text.size() || revision < 1) return std::nullopt;
  return revision;
}

// The page key of a revision: family and zero-padded revision sort like (family, revision).
std::string revision_page_key(const TaskDefinition& definition) {
  char revision[24];
  std::snprintf(revision, sizeof revision, "%012lld", static_cast<long long>(definition.revision));
  return definition.family + ":" + revision;
}

std::pair<std::string, int64_t> split_page_key(const std::string& key) {
  auto colon = key.rfind(':');
  if (colon == std::string::npos) return {key, 0};
  return {key.substr(0, colon), parse_revision(key.substr(colon + 1)).value_or(0)};
}

using Families = std::map<std::string, std::map<int64_t, TaskDefinition>, std::less<>>;

// Visits revisions in (family, revision) order, ascending or descending, strictly after
// `after`, until `visit` returns false.
template <typename Visit>
void visit_revisions(const Families& families, bool descending,
                     const std::optional<std::string>& after, Visit visit) {
  if (!descending) {
    auto family = families.begin();
    auto [after_family, after_revision] =
        after ? split_page_key(*after) : std::pair{std::string(), int64_t{0}};
    if (after) family = families.lower_bound(after_family);
    for (; family != families.end(); ++family) {
      auto revision = family->second.begin();
      if (after && family->first == after_family)
        revision = family->second.upper_bound(after_revision);
      for (; revision != family->second.end(); ++revision) {
        if (!visit(revision->second)) return;
      }
    }
    return;
  }
  auto family = families.rbegin();
  auto [after_family, after_revision] =
      after ? split_page_key(*after) : std::pair{std::string(), int64_t{0}};
  if (after) family = std::make_reverse_iterator(families.upper_bound(after_family));
  for (; family != families.rend(); ++family) {
    auto revision = family->second.rbegin();
    if (after && family->first == after_family) {
      revision = std::make_reverse_iterator(family->second.lower_bound(after_revision));
    }
    for (; revision != family->second.rend(); ++revision) {
      if (!visit(revision->second)) return;
    }
  }
}

bool family_has_active(const std::map<int64_t, TaskDefinition>& revisions) {
  return std::any_of(revisions.begin(), revisions.end(),
                     [](const auto& entry) { return entry.second.status == "ACTIVE"; });
}

bj::object describe_output(const TaskDefinition& definition, bool include_tags) {
  bj::object output{{"taskDefinition", task_definition_to_wire(definition)}};
  if (include_tags) output["tags"] = tags_to_json(definition.tags);
  return output;
}

}  // namespace

Result<TaskDefinition*> EcsApi::find_task_definition(const Context& context, RegionState& region,
                                                     std::string_view identifier,
                                                     bool allow_bare_family) const {
  std::string_view family_revision = identifier;
  if (looks_like_arn(identifier)) {
    auto parsed = parse_arn(identifier);
    if (!parsed || parsed->service != "ecs" || parsed->resource_type() != "task-definition") {
      return client_error("'" + std::string(identifier) +
                          "' is not a task definition ARN: expected "
                          "arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION.");
    }
    if (parsed->region != context.region || parsed->account != context.account_id) {
      return client_error("Unable to describe task definition: " + std::string(identifier) +
                          " belongs to another region or account.");
    }
    auto id = parsed->resource_id();
    family_revision = identifier.substr(identifier.size() - id.size());
  }
  auto colon = family_revision.rfind(':');
  std::string family(family_revision.substr(0, colon));
  auto revisions = region.task_definitions.find(family);
  if (colon == std::string_view::npos) {
    if (!allow_bare_family) {
      return client_error("Task definition '" + std::string(identifier) +
                          "' must name a revision: use family:revision or the full ARN.");
    }
    if (revisions != region.task_definitions.end()) {
      for (auto it = revisions->second.rbegin(); it != revisions->second.rend(); ++it) {
        if (it->second.status == "ACTIVE") return &it->second;
      }
    }
    return client_error("Unable to describe task definition: family '" + family +
                        "' has no ACTIVE revision.");
  }
  auto revision = parse_revision(family_revision.substr(colon + 1));
  if (!revision) {
    return client_error("Invalid revision in task definition '" + std::string(identifier) +
                        "': the revision must be a positive integer.");
  }
  if (revisions != region.task_definitions.end()) {
    auto found = revisions->second.find(*revision);
    if (found != revisions->second.end()) return &found->second;
  }
  return client_error("Unable to describe task definition: " + std::string(identifier) +
                      " does not exist.");
}

void EcsApi::register_task_definition(const Context& context, const Input& input, Reply reply) {
  auto body = validate_task_definition(input);
  if (!body) return reply(std::unexpected(body.error()));
  Tags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_json(*list);
  if (auto status = validate_tags(tags); !status) return reply(std::unexpected(status.error()));
  std::string family = json::string_or(input, "family", "");

  std::unique_lock lock(state_.mutex());
  auto& revisions = state_.region(context.region).task_definitions[family];
  int64_t revision = revisions.empty() ? 1 : revisions.rbegin()->first + 1;
  if (revision > kMaxRevisionsPerFamily) {
    return reply(client_error("Family '" + family +
                              "' already has the maximum of 1,000,000 "
                              "revisions; register under a new family name."));
  }
  TaskDefinition definition;
  definition.family = family;
  definition.revision = revision;
  definition.arn = arn(context, "task-definition/" + family + ":" + std::to_string(revision));
  definition.registered_at = clock_.now();
  definition.registered_by = context.principal_arn;
  definition.tags = std::move(tags);
  definition.body = std::move(*body);
  auto mutation = EcsState::put(context.region, definition);
  bj::object output = describe_output(definition, true);
  revisions[revision] = std::move(definition);
  commit_then_reply({std::move(mutation)}, std::move(output), std::move(reply));
}

void EcsApi::describe_task_definition(const Context& context, const Input& input, Reply reply) {
  bool include_tags = false;
  if (const auto* include = json::get_array(input, "include")) {
    for (const auto& item : *include) include_tags |= item.as_string() == "TAGS";
  }
  std::shared_lock lock(state_.mutex());
  // region() may insert; a missing region is rare and harmless, but keep readers read-only.
  const RegionState* region = state_.find_region(context.region);
  if (region == nullptr) {
    return reply(client_error("Unable to describe task definition: " +
                              json::string_or(input, "taskDefinition", "") + " does not exist."));
  }
  auto definition = find_task_definition(context, const_cast<RegionState&>(*region),
                                         json::string_or(input, "taskDefinition", ""), true);
  if (!definition) return reply(std::unexpected(definition.error()));
  reply(describe_output(**definition, include_tags));
}

void EcsApi::list_task_definitions(const Context& context, const Input& input, Reply reply) {
  std::string family = json::string_or(input, "familyPrefix", "");
  std::string status = json::string_or(input, "status", "ACTIVE");
  bool descending = json::string_or(input, "sort", "ASC") == "DESC";
  std::string scope =
      "ListTaskDefinitions\n" + family + "\n" + status + "\n" + (descending ? "D" : "A");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::shared_lock lock(state_.mutex());
  bj::array arns;
  bj::object output;
  const RegionState* region = state_.find_region(context.region);
  if (region != nullptr) {
    Families subset;
    const Families* families = &region->task_definitions;
    if (!family.empty()) {
      // familyPrefix names one whole family, as in ECS.
      auto found = region->task_definitions.find(family);
      families = &subset;
      if (found != region->task_definitions.end()) subset.emplace(found->first, found->second);
    }
    std::string last_key;
    visit_revisions(*families, descending, page->after, [&](const TaskDefinition& definition) {
      if (definition.status != status) return true;
      if (arns.size() == static_cast<size_t>(page->max_results)) {
        output["nextToken"] = tokens_.issue(scope, last_key, clock_.now());
        return false;
      }
      arns.push_back(bj::string(definition.arn));
      last_key = revision_page_key(definition);
      return true;
    });
  }
  output["taskDefinitionArns"] = std::move(arns);
  reply(std::move(output));
}

void EcsApi::list_task_definition_families(const Context& context, const Input& input,
                                           Reply reply) {
  std::string prefix = json::string_or(input, "familyPrefix", "");
  std::string status = json::string_or(input, "status", "ALL");
  std::string scope = "ListTaskDefinitionFamilies\n" + prefix + "\n" + status;
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::shared_lock lock(state_.mutex());
  bj::array families;
  bj::object output;
  const RegionState* region = state_.find_region(context.region);
  if (region != nullptr) {
    auto family = page->after ? region->task_definitions.upper_bound(*page->after)
                              : region->task_definitions.lower_bound(prefix);
    std::string last_family;
    for (; family != region->task_definitions.end() && family->first.starts_with(prefix);
         ++family) {
      bool active = family_has_active(family->second);
      if ((status == "ACTIVE" && !active) || (status == "INACTIVE" && active)) continue;
      if (families.size() == static_cast<size_t>(page->max_results)) {
        output["nextToken"] = tokens_.issue(scope, last_family, clock_.now());
        break;
      }
      families.push_back(bj::string(family->first));
      last_family = family->first;
    }
  }
  output["families"] = std::move(families);
  reply(std::move(output));
}

void EcsApi::deregister_task_definition(const Context& context, const Input& input, Reply reply) {
  std::unique_lock lock(state_.mutex());
  auto definition = find_task_definition(context, state_.region(context.region),
                                         json::string_or(input, "taskDefinition", ""), false);
  if (!definition) return reply(std::unexpected(definition.error()));
  TaskDefinition& found = **definition;
  if (found.status != "ACTIVE") {
    return reply(client_error("The specified task definition " + found.arn + " is already " +
                              found.status + "."));
  }
  found.status = "INACTIVE";
  found.deregistered_at = clock_.now();
  commit_then_reply({EcsState::put(context.region, found)},
                    bj::object{{"taskDefinition", task_definition_to_wire(found)}},
                    std::move(reply));
}

void EcsApi::delete_task_definitions(const Context& context, const Input& input, Reply reply) {
  const auto* identifiers = json::get_array(input, "taskDefinitions");
  if (identifiers == nullptr || identifiers->empty() || identifiers->size() > 10) {
    return reply(invalid("taskDefinitions must list from 1 to 10 task definitions."));
  }
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  bj::array deleted;
  bj::array failures;
  std::vector<store::Mutation> mutations;
  for (const auto& item : *identifiers) {
    std::string identifier(item.as_string());
    auto definition = find_task_definition(context, region, identifier, false);
    if (!definition) {
      failures.push_back(bj::object{{"arn", identifier},
                                    {"reason", "The specified task definition does not exist."},
                                    {"detail", definition.error().message}});
      continue;
    }
    TaskDefinition& found = **definition;
    if (found.status == "ACTIVE") {
      failures.push_back(
          bj::object{{"arn", found.arn},
                     {"reason",
                      "The specified task definition is still in ACTIVE status. Please deregister "
                      "the target and try again."}});
      continue;
    }
    if (found.status != "DELETE_IN_PROGRESS") {
      found.status = "DELETE_IN_PROGRESS";
      mutations.push_back(EcsState::put(context.region, found));
    }
    deleted.push_back(task_definition_to_wire(found));
  }
  bj::object output{{"taskDefinitions", std::move(deleted)}, {"failures", std::move(failures)}};
  if (mutations.empty()) return reply(std::move(output));
  commit_then_reply(std::move(mutations), std::move(output), std::move(reply));
}

}  // namespace wharf::ecs
