// Paths of the agent's data directory.
#include "agent/layout.hpp"

#include <algorithm>
#include <stdexcept>

namespace wharf::agent {
namespace fs = std::filesystem;

namespace {

bool is_component_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string_view checked(std::string_view name) {
  if (!is_safe_path_component(name)) {  // callers validate first
    throw std::invalid_argument("unsafe path component '" + std::string(name) + "'");
  }
  return name;
}

fs::path digest_path(const fs::path& dir, const oci::Digest& digest) {
  if (!oci::parse_digest(digest.str())) {
    throw std::invalid_argument("invalid digest '" + digest.str() + "'");  // callers parse first
  }
  return dir / digest.algorithm / digest.hex;
}

// An absolute, normalised directory that overlayfs options and mountinfo carry unescaped.
Result<fs::path> checked_dir(const fs::path& dir, std::string_view what) {
  const std::string& text = dir.native();
  if (!dir.is_absolute()) {
    return invalid("agent " + std::string(what) + " '" + text + "' must be an absolute path");
  }
  if (text.find_first_of(",:\\ \t\n\r\f\v") != std::string::npos) {
    return invalid("agent " + std::string(what) + " '" + text +
                   "' must not contain ',', ':', '\\' or white space (overlayfs options)");
  }
  fs::path normal = dir.lexically_normal();
  if (!normal.has_filename() && normal != normal.root_path()) normal = normal.parent_path();
  return normal;
}

}  // namespace

bool is_safe_path_component(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::ranges::all_of(name, is_component_char);
}

Status validate_container_ref(const ContainerRef& container) {
  if (!is_safe_path_component(container.task_id)) {
    return invalid("task id '" + container.task_id + "' is not a safe directory name");
  }
  if (!is_safe_path_component(container.container_name)) {
    return invalid("container name '" + container.container_name +
                   "' is not a safe directory name");
  }
  return {};
}

Result<Layout> Layout::create(const fs::path& data_dir, const fs::path& run_dir) {
  auto data = checked_dir(data_dir, "data directory");
  if (!data) return std::unexpected(data.error());
  auto run = checked_dir(run_dir.empty() ? *data / "run" : run_dir, "run directory");
  if (!run) return std::unexpected(run.error());
  return Layout(std::move(*data), std::move(*run));
}

fs::path Layout::lock_file() const {
  return data_dir_ / "agent.lock";
}

fs::path Layout::state_dir() const {
  return data_dir_ / "state";
}
fs::path Layout::agent_state_file() const {
  return state_dir() / "agent.json";
}

fs::path Layout::network_state_file() const {
  return state_dir() / "network.json";
}

fs::path Layout::awsvpc_state_file() const {
  return state_dir() / "awsvpc.json";
}

fs::path Layout::layers_dir() const {
  return data_dir_ / "layers";
}
fs::path Layout::layer_dir(const oci::Digest& diff_id) const {
  return digest_path(layers_dir(), diff_id);
}
fs::path Layout::layer_temp_dir() const {
  return layers_dir() / "tmp";
}
fs::path Layout::init_layers_dir() const {
  return data_dir_ / "init-layers";
}
fs::path Layout::init_layer_dir(std::string_view chain_hex) const {
  return init_layers_dir() / checked(chain_hex);
}

fs::path Layout::images_dir() const {
  return data_dir_ / "images";
}

fs::path Layout::image_index_file() const {
  return images_dir() / "index.json";
}
fs::path Layout::image_dir(const oci::Digest& manifest_digest) const {
  return digest_path(images_dir(), manifest_digest);
}
fs::path Layout::image_manifest_file(const oci::Digest& manifest_digest) const {
  return image_dir(manifest_digest) / "manifest.json";
}
fs::path Layout::image_config_file(const oci::Digest& manifest_digest) const {
  return image_dir(manifest_digest) / "config.json";
}

fs::path Layout::containers_dir() const {
  return data_dir_ / "containers";
}
fs::path Layout::spares_dir() const {
  return data_dir_ / "spares";
}
fs::path Layout::task_dir(std::string_view task_id) const {
  return containers_dir() / checked(task_id);
}
fs::path Layout::task_state_file(std::string_view task_id) const {
  return task_dir(task_id) / "task.json";
}
fs::path Layout::container_dir(const ContainerRef& container) const {
  return task_dir(container.task_id) / checked(container.container_name);
}
fs::path Layout::container_upper_dir(const ContainerRef& container) const {
  return container_dir(container) / "upper";
}
fs::path Layout::container_work_dir(const ContainerRef& container) const {
  return container_dir(container) / "work";
}
fs::path Layout::container_logs_dir(const ContainerRef& container) const {
  return container_dir(container) / "logs";
}

fs::path Layout::runtime_state_dir() const {
  return run_dir_ / "runtime";
}
fs::path Layout::run_containers_dir() const {
  return run_dir_ / "containers";
}
fs::path Layout::task_run_dir(std::string_view task_id) const {
  return run_containers_dir() / checked(task_id);
}
fs::path Layout::container_run_dir(const ContainerRef& container) const {
  return task_run_dir(container.task_id) / checked(container.container_name);
}
fs::path Layout::container_merged_dir(const ContainerRef& container) const {
  return container_run_dir(container) / "rootfs";
}
fs::path Layout::container_bundle_dir(const ContainerRef& container) const {
  return container_run_dir(container) / "bundle";
}

}  // namespace wharf::agent
