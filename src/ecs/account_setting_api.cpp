// Account settings: per principal, with an account-wide default, falling back to AWS's default.
#include <mutex>

#include "common/arn.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/validation.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

// Settings that only the account default can change (AWS refuses them per principal).
bool is_account_wide_only(std::string_view name) {
  return name == "fargateFIPSMode" || name == "fargateTaskRetirementWaitPeriod" ||
         name == "guardDutyActivate" || name == "defaultLogDriverMode" ||
         name == "fargateEventWindows";
}

std::string root_arn(const aws::CallContext& context) {
  return "arn:aws:iam::" + context.account_id + ":root";
}

Status validate_principal(const aws::CallContext& context, std::string_view principal) {
  auto parsed = parse_arn(principal);
  if (!parsed || parsed->service != "iam" ||
      !(parsed->resource == "root" || parsed->resource.starts_with("user/") ||
        parsed->resource.starts_with("role/"))) {
    return invalid("principalArn '" + std::string(principal) +
                   "' must be the ARN of an IAM user, an IAM role or the account root.");
  }
  if (parsed->account != context.account_id) {
    return invalid("principalArn '" + std::string(principal) + "' belongs to another account.");
  }
  return {};
}

// The setting that applies to `principal`: its own, else the account default, else AWS's.
Setting effective(const RegionState* region, const aws::CallContext& context,
                  const std::string& principal, std::string_view name) {
  if (region != nullptr) {
    for (const std::string& who : {principal, std::string(kDefaultPrincipal)}) {
      auto by_principal = region->settings.find(who);
      if (by_principal == region->settings.end()) continue;
      auto setting = by_principal->second.find(name);
      if (setting == by_principal->second.end()) continue;
      Setting out = setting->second;
      out.principal_arn = who.empty() ? root_arn(context) : who;
      return out;
    }
  }
  return Setting{std::string(name), std::string(default_account_setting(name)), principal,
                 "aws_managed"};
}

bj::object wire_for(const aws::CallContext& context, Setting setting) {
  if (setting.principal_arn.empty()) setting.principal_arn = root_arn(context);
  return setting_to_wire(setting);
}

}  // namespace

void EcsApi::put_account_setting(const Context& context, const Input& input, Reply reply) {
  std::string name = json::string_or(input, "name", "");
  std::string value = json::string_or(input, "value", "");
  std::string principal = json::string_or(input, "principalArn", context.principal_arn);
  if (auto status = validate_account_setting(name, value); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (auto status = validate_principal(context, principal); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (is_account_wide_only(name) && principal != root_arn(context)) {
    return reply(invalid("The " + name +
                         " setting applies to the whole account: change it with "
                         "PutAccountSettingDefault or as the root principal."));
  }
  // The root principal's setting is the account's: it applies to every user and role that has
  // none of its own, exactly like PutAccountSettingDefault.
  std::string stored_principal =
      principal == root_arn(context) ? std::string(kDefaultPrincipal) : principal;
  Setting setting{name, value, stored_principal, "user"};
  std::unique_lock lock(state_.mutex());
  state_.region(context.region).settings[stored_principal][name] = setting;
  commit_then_reply({EcsState::put(context.region, setting)},
                    bj::object{{"setting", wire_for(context, setting)}}, std::move(reply));
}

void EcsApi::put_account_setting_default(const Context& context, const Input& input, Reply reply) {
  std::string name = json::string_or(input, "name", "");
  std::string value = json::string_or(input, "value", "");
  if (auto status = validate_account_setting(name, value); !status) {
    return reply(std::unexpected(status.error()));
  }
  Setting setting{name, value, std::string(kDefaultPrincipal), "user"};
  std::unique_lock lock(state_.mutex());
  state_.region(context.region).settings[std::string(kDefaultPrincipal)][name] = setting;
  commit_then_reply({EcsState::put(context.region, setting)},
                    bj::object{{"setting", wire_for(context, setting)}}, std::move(reply));
}

void EcsApi::delete_account_setting(const Context& context, const Input& input, Reply reply) {
  std::string name = json::string_or(input, "name", "");
  std::string principal = json::string_or(input, "principalArn", context.principal_arn);
  if (default_account_setting(name).empty()) {
    return reply(invalid("Unknown account setting name '" + name + "'."));
  }
  if (auto status = validate_principal(context, principal); !status) {
    return reply(std::unexpected(status.error()));
  }
  std::string stored_principal =
      principal == root_arn(context) ? std::string(kDefaultPrincipal) : principal;
  std::unique_lock lock(state_.mutex());
  auto& by_principal = state_.region(context.region).settings[stored_principal];
  auto found = by_principal.find(name);
  if (found == by_principal.end()) {
    return reply(invalid("The account setting " + name + " is not set for " + principal +
                         "; there is nothing to delete."));
  }
  Setting removed = found->second;
  by_principal.erase(found);
  commit_then_reply({EcsState::remove_setting(context.region, removed)},
                    bj::object{{"setting", wire_for(context, removed)}}, std::move(reply));
}

void EcsApi::list_account_settings(const Context& context, const Input& input, Reply reply) {
  std::string name_filter = json::string_or(input, "name", "");
  std::string value_filter = json::string_or(input, "value", "");
  std::string principal = json::string_or(input, "principalArn", context.principal_arn);
  bool effective_settings = json::get_bool(input, "effectiveSettings").value_or(false);
  if (!value_filter.empty() && name_filter.empty()) {
    return reply(invalid("value can only be given together with name."));
  }
  if (auto status = validate_principal(context, principal); !status) {
    return reply(std::unexpected(status.error()));
  }
  std::string scope = "ListAccountSettings\n" + name_filter + "\n" + value_filter + "\n" +
                      principal + "\n" + (effective_settings ? "E" : "");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 10, 10);
  if (!page) return reply(std::unexpected(page.error()));

  std::shared_lock lock(state_.mutex());
  const RegionState* region = state_.find_region(context.region);
  std::vector<Setting> settings;
  for (std::string_view name : account_setting_names()) {
    if (!name_filter.empty() && name != name_filter) continue;
    Setting setting = effective(region, context, principal, name);
    bool own = setting.principal_arn == principal && setting.type == "user";
    if (!effective_settings && !own) continue;
    if (!value_filter.empty() && setting.value != value_filter) continue;
    settings.push_back(std::move(setting));
  }
  bj::array out;
  bj::object output;
  std::size_t start = 0;
  if (page->after) {
    while (start < settings.size() && settings[start].name != *page->after) ++start;
    ++start;
  }
  for (std::size_t setting_idx = start; setting_idx < settings.size(); ++setting_idx) {
    if (out.size() == static_cast<size_t>(page->max_results)) {
      output["nextToken"] = tokens_.issue(scope, settings[setting_idx - 1].name, clock_.now());
      break;
    }
    out.push_back(setting_to_wire(settings[setting_idx]));
  }
  output["settings"] = std::move(out);
  reply(std::move(output));
}

}  // namespace wharf::ecs
