// Loading and persisting EcsState.
#include "ecs/state.hpp"

#include <boost/json.hpp>

#include <cstdio>

namespace wharf::ecs {

namespace {

constexpr const char* kClusterKind = "ecs.cluster";
constexpr const char* kTaskDefinitionKind = "ecs.task_definition";
constexpr const char* kSettingKind = "ecs.account_setting";
constexpr const char* kContainerInstanceKind = "ecs.container_instance";

// Store keys start with the region so a region's records sort together.
std::string region_of(const std::string& key) {
  return key.substr(0, key.find('/'));
}

std::string revision_key(const std::string& region, const TaskDefinition& definition) {
  char revision[24];
  std::snprintf(revision, sizeof revision, "%012lld", static_cast<long long>(definition.revision));
  return region + "/" + definition.family + "/" + revision;
}

std::string setting_key(const std::string& region, const Setting& setting, bool account_default) {
  return region + "/" + (account_default ? std::string("default") : setting.principal_arn) + "/" +
         setting.name;
}

Result<boost::json::object> parse_object(const store::Record& record) {
  boost::system::error_code ec;
  auto value = boost::json::parse(record.value, ec);
  if (ec || !value.is_object()) {
    return fail(ErrorCode::kInternal, "record " + record.kind + " " + record.key + " is not JSON");
  }
  return std::move(value.as_object());
}

template <typename Decode, typename Insert>
Status load_kind(store::Store& store, const char* kind, Decode decode, Insert insert) {
  auto records = store.load(kind);
  if (!records) return std::unexpected(records.error().context(std::string("loading ") + kind));
  for (const auto& record : *records) {
    auto object = parse_object(record);
    if (!object) return std::unexpected(object.error());
    auto decoded = decode(std::move(*object));
    if (!decoded) return std::unexpected(decoded.error().context("record " + record.key));
    insert(region_of(record.key), record.key, std::move(*decoded));
  }
  return {};
}

}  // namespace

Status EcsState::load() {
  std::unique_lock lock(mutex_);
  auto status = load_kind(store_, kClusterKind, cluster_from_store,
                          [this](const std::string& region, const std::string&, Cluster cluster) {
                            std::string name = cluster.name;
                            regions_[region].clusters[name] = std::move(cluster);
                          });
  if (!status) return status;
  status = load_kind(store_, kTaskDefinitionKind, task_definition_from_store,
                     [this](const std::string& region, const std::string&, TaskDefinition def) {
                       std::string family = def.family;
                       int64_t revision = def.revision;
                       regions_[region].task_definitions[family][revision] = std::move(def);
                     });
  if (!status) return status;
  status = load_kind(store_, kSettingKind, setting_from_store,
                     [this](const std::string& region, const std::string&, Setting setting) {
                       std::string principal = setting.principal_arn;  // empty for the default
                       std::string name = setting.name;
                       regions_[region].settings[principal][name] = std::move(setting);
                     });
  if (!status) return status;
  return load_kind(
      store_, kContainerInstanceKind, container_instance_from_store,
      [this](const std::string& region, const std::string&, ContainerInstance instance) {
        std::string cluster = instance.cluster;
        std::string id = instance.id;
        regions_[region].container_instances[cluster][id] = std::move(instance);
      });
}

const std::map<std::string, ContainerInstance, std::less<>>& RegionState::instances_of(
    std::string_view cluster) const {
  static const std::map<std::string, ContainerInstance, std::less<>> kNone;
  auto found = container_instances.find(cluster);
  return found == container_instances.end() ? kNone : found->second;
}

int64_t RegionState::registered_instance_count(std::string_view cluster) const {
  int64_t count = 0;
  for (const auto& [id, instance] : instances_of(cluster)) count += is_registered(instance);
  return count;
}

const RegionState* EcsState::find_region(std::string_view name) const {
  auto found = regions_.find(name);
  return found == regions_.end() ? nullptr : &found->second;
}

void EcsState::persist(std::vector<store::Mutation> mutations, std::function<void(Status)> done) {
  store_.commit(std::move(mutations), std::move(done));
}

store::Mutation EcsState::put(const std::string& region, const Cluster& cluster) {
  return {kClusterKind, region + "/" + cluster.name,
          boost::json::serialize(cluster_to_store(cluster))};
}

store::Mutation EcsState::put(const std::string& region, const TaskDefinition& definition) {
  return {kTaskDefinitionKind, revision_key(region, definition),
          boost::json::serialize(task_definition_to_store(definition))};
}

store::Mutation EcsState::put(const std::string& region, const Setting& setting) {
  bool account_default = setting.principal_arn.empty();
  return {kSettingKind, setting_key(region, setting, account_default),
          boost::json::serialize(setting_to_wire(setting))};
}

store::Mutation EcsState::put(const std::string& region, const ContainerInstance& instance) {
  return {kContainerInstanceKind, region + "/" + instance.cluster + "/" + instance.id,
          boost::json::serialize(container_instance_to_store(instance))};
}

store::Mutation EcsState::remove_setting(const std::string& region, const Setting& setting) {
  return {kSettingKind, setting_key(region, setting, setting.principal_arn.empty()), std::nullopt};
}

size_t EcsState::task_definition_count() const {
  size_t count = 0;
  for (const auto& [name, region] : regions_) {
    for (const auto& [family, revisions] : region.task_definitions) count += revisions.size();
  }
  return count;
}

}  // namespace wharf::ecs
