// Cluster operations: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
// UpdateClusterSettings, DeleteCluster.
#include <algorithm>
#include <mutex>

#include "common/arn.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/validation.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr ClusterInclude kIncludeAllButStatistics{true, true, false, true};

Result<std::vector<std::pair<std::string, std::string>>> read_settings(const bj::object& input) {
  std::vector<std::pair<std::string, std::string>> settings;
  const auto* list = json::get_array(input, "settings");
  if (list == nullptr) return settings;
  for (const auto& item : *list) {
    const auto& setting = item.as_object();
    settings.emplace_back(json::string_or(setting, "name", ""),
                          json::string_or(setting, "value", ""));
  }
  if (auto status = validate_cluster_settings(settings); !status) {
    return std::unexpected(status.error());
  }
  return settings;
}

void apply_settings(Cluster& cluster,
                    const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [name, value] : settings) {
    auto existing = std::find_if(cluster.settings.begin(), cluster.settings.end(),
                                 [&](const auto& setting) { return setting.first == name; });
    if (existing != cluster.settings.end()) {
      existing->second = value;
    } else {
      cluster.settings.emplace_back(name, value);
    }
  }
}

// containerInsights as the caller's effective account setting says, for new clusters.
std::string effective_container_insights(const RegionState& region, const std::string& principal) {
  for (const std::string& who : {principal, std::string(kDefaultPrincipal)}) {
    auto by_principal = region.settings.find(who);
    if (by_principal == region.settings.end()) continue;
    auto setting = by_principal->second.find("containerInsights");
    if (setting != by_principal->second.end()) return setting->second.value;
  }
  return std::string(default_account_setting("containerInsights"));
}

Status apply_configuration(Cluster& cluster, const bj::object& input) {
  if (const auto* configuration = json::get_object(input, "configuration")) {
    cluster.configuration = *configuration;
  }
  if (const auto* defaults = json::get_object(input, "serviceConnectDefaults")) {
    cluster.service_connect_defaults = *defaults;
  }
  return {};
}

// Until capacity providers can be created, only the built-in Fargate ones exist.
Status validate_capacity_providers(const bj::object& input) {
  auto known = [](std::string_view name) { return name == "FARGATE" || name == "FARGATE_SPOT"; };
  std::vector<std::string_view> listed;
  if (const auto* providers = json::get_array(input, "capacityProviders")) {
    for (const auto& provider : *providers) {
      std::string_view name = provider.as_string();
      if (!known(name)) {
        return invalid("The specified capacity provider '" + std::string(name) +
                       "' does not exist. Use FARGATE or FARGATE_SPOT.");
      }
      listed.push_back(name);
    }
  }
  if (const auto* strategy = json::get_array(input, "defaultCapacityProviderStrategy")) {
    for (const auto& item : *strategy) {
      std::string name = json::string_or(item.as_object(), "capacityProvider", "");
      if (std::find(listed.begin(), listed.end(), name) == listed.end()) {
        return invalid("The default capacity provider strategy names '" + name +
                       "', which is not among the cluster's capacityProviders.");
      }
    }
  }
  return {};
}

ClusterCounts counts_of(const RegionState& region, const Cluster& cluster) {
  ClusterCounts counts;
  counts.registered_container_instances = region.registered_instance_count(cluster.name);
  TaskCounts tasks = region.task_counts(cluster.name);
  counts.running_tasks = tasks.running;
  counts.pending_tasks = tasks.pending;
  return counts;
}

ClusterInclude read_include(const bj::object& input) {
  ClusterInclude include;
  const auto* list = json::get_array(input, "include");
  if (list == nullptr) return include;
  for (const auto& item : *list) {
    std::string_view value = item.as_string();
    include.settings |= value == "SETTINGS";
    include.configurations |= value == "CONFIGURATIONS";
    include.statistics |= value == "STATISTICS";
    include.tags |= value == "TAGS";
  }
  return include;
}

}  // namespace

void EcsApi::create_cluster(const Context& context, const Input& input, Reply reply) {
  std::string name = json::string_or(input, "clusterName", "default");
  if (auto status = validate_cluster_name(name); !status)
    return reply(std::unexpected(status.error()));
  Tags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_json(*list);
  if (auto status = validate_tags(tags); !status) return reply(std::unexpected(status.error()));
  auto settings = read_settings(input);
  if (!settings) return reply(std::unexpected(settings.error()));
  if (auto status = validate_capacity_providers(input); !status) {
    return reply(std::unexpected(status.error()));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto existing = region.clusters.find(name);
  if (existing != region.clusters.end() && existing->second.status == "ACTIVE") {
    // Creating an existing cluster is idempotent and returns it unchanged, as ECS does.
    return reply(bj::object{
        {"cluster", cluster_to_wire(existing->second, counts_of(region, existing->second),
                                    kIncludeAllButStatistics)}});
  }
  Cluster cluster;
  cluster.name = name;
  cluster.arn = arn(context, "cluster/" + name);
  cluster.settings = {
      {"containerInsights", effective_container_insights(region, context.principal_arn)}};
  apply_settings(cluster, *settings);
  apply_configuration(cluster, input);
  if (const auto* providers = json::get_array(input, "capacityProviders")) {
    cluster.capacity_providers = *providers;
  }
  if (const auto* strategy = json::get_array(input, "defaultCapacityProviderStrategy")) {
    cluster.default_capacity_provider_strategy = *strategy;
  }
  cluster.tags = std::move(tags);
  auto mutation = EcsState::put(context.region, cluster);
  bj::object output{
      {"cluster", cluster_to_wire(cluster, counts_of(region, cluster), kIncludeAllButStatistics)}};
  region.clusters[name] = std::move(cluster);
  commit_then_reply({std::move(mutation)}, std::move(output), std::move(reply));
}

void EcsApi::describe_clusters(const Context& context, const Input& input, Reply reply) {
  std::vector<std::string> identifiers;
  if (const auto* list = json::get_array(input, "clusters")) {
    for (const auto& item : *list) identifiers.emplace_back(item.as_string());
  }
  if (identifiers.empty()) identifiers.push_back("default");
  if (identifiers.size() > 100) {
    return reply(invalid("DescribeClusters accepts at most 100 clusters per call."));
  }
  ClusterInclude include = read_include(input);

  std::shared_lock lock(state_.mutex());
  const RegionState* region = state_.find_region(context.region);
  bj::array clusters;
  bj::array failures;
  for (const auto& identifier : identifiers) {
    auto name = cluster_name(context, identifier);
    const Cluster* cluster = nullptr;
    if (name && region != nullptr) {
      auto found = region->clusters.find(*name);
      if (found != region->clusters.end()) cluster = &found->second;
    }
    if (cluster == nullptr) {
      std::string missing_arn =
          looks_like_arn(identifier) ? identifier : arn(context, "cluster/" + identifier);
      failures.push_back(bj::object{{"arn", missing_arn}, {"reason", "MISSING"}});
      continue;
    }
    clusters.push_back(cluster_to_wire(*cluster, counts_of(*region, *cluster), include));
  }
  reply(bj::object{{"clusters", std::move(clusters)}, {"failures", std::move(failures)}});
}

void EcsApi::list_clusters(const Context& context, const Input& input, Reply reply) {
  auto page = aws::read_page_request(tokens_, clock_.now(), input, "ListClusters", 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::shared_lock lock(state_.mutex());
  bj::array arns;
  bj::object output;
  const RegionState* region = state_.find_region(context.region);
  if (region != nullptr) {
    auto cluster =
        page->after ? region->clusters.upper_bound(*page->after) : region->clusters.begin();
    for (; cluster != region->clusters.end(); ++cluster) {
      if (cluster->second.status != "ACTIVE") continue;
      if (arns.size() == static_cast<size_t>(page->max_results)) {
        output["nextToken"] =
            tokens_.issue("ListClusters", std::prev(cluster)->first, clock_.now());
        break;
      }
      arns.push_back(bj::string(cluster->second.arn));
    }
  }
  output["clusterArns"] = std::move(arns);
  reply(std::move(output));
}

void EcsApi::update_cluster(const Context& context, const Input& input, Reply reply) {
  auto settings = read_settings(input);
  if (!settings) return reply(std::unexpected(settings.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, json::string_or(input, "cluster", ""));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  apply_settings(**cluster, *settings);
  apply_configuration(**cluster, input);
  commit_then_reply({EcsState::put(context.region, **cluster)},
                    bj::object{{"cluster", cluster_to_wire(**cluster, counts_of(region, **cluster),
                                                           kIncludeAllButStatistics)}},
                    std::move(reply));
}

void EcsApi::update_cluster_settings(const Context& context, const Input& input, Reply reply) {
  auto settings = read_settings(input);
  if (!settings) return reply(std::unexpected(settings.error()));
  if (settings->empty()) return reply(invalid("settings must name at least one setting."));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, json::string_or(input, "cluster", ""));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  apply_settings(**cluster, *settings);
  commit_then_reply({EcsState::put(context.region, **cluster)},
                    bj::object{{"cluster", cluster_to_wire(**cluster, counts_of(region, **cluster),
                                                           kIncludeAllButStatistics)}},
                    std::move(reply));
}

void EcsApi::delete_cluster(const Context& context, const Input& input, Reply reply) {
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, json::string_or(input, "cluster", ""));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  // Services arrive in a later issue; until then tasks and container instances block deletion.
  const auto& tasks = region.tasks_of((*cluster)->name);
  if (std::any_of(tasks.begin(), tasks.end(),
                  [](const auto& entry) { return !is_stopped(entry.second); })) {
    return reply(fail(ErrorCode::kClusterContainsTasks,
                      "The Cluster cannot be deleted while Tasks are active."));
  }
  if (int64_t registered = region.registered_instance_count((*cluster)->name); registered > 0) {
    return reply(fail(ErrorCode::kClusterContainsContainerInstances,
                      "The cluster cannot be deleted while container instances are active or "
                      "draining (" +
                          std::to_string(registered) +
                          " registered); deregister them with DeregisterContainerInstance "
                          "first."));
  }
  (*cluster)->status = "INACTIVE";
  commit_then_reply(
      {EcsState::put(context.region, **cluster)},
      bj::object{{"cluster", cluster_to_wire(**cluster, {}, kIncludeAllButStatistics)}},
      std::move(reply));
}

}  // namespace wharf::ecs
