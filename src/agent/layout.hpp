// The agent's on-disk layout: every path under its data directory is named here, once.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::agent {

// One container of one task, as the layout and the rootfs code name it.
struct ContainerRef {
  std::string task_id;
  std::string container_name;

  bool operator==(const ContainerRef&) const = default;
  auto operator<=>(const ContainerRef&) const = default;
};

// A name that may be one path component under the data directory: 1–255 characters of
// [A-Za-z0-9._-], not "." or "..". Task ids and ECS container names always are.
bool is_safe_path_component(std::string_view name);

// kInvalidParameter unless the task id and container name are both safe path components.
Status validate_container_ref(const ContainerRef& container);

// <data_dir>/
//   agent.lock                        held by the one agent that uses this data directory
//   state/agent.json                  the agent's registration (container instance, cluster)
//   state/network.json                the bridge network's subnet, addresses and host ports
//   layers/<alg>/<hex>/               one unpacked layer, the root of its file tree
//   layers/tmp/<random>/              layers being unpacked or removed; never read as layers
//   images/index.json                 references → images, last uses, layer sizes
//   images/<alg>/<hex>/               one image, by manifest digest: manifest.json, config.json
//   containers/<task-id>/task.json    the task's last known state
//   containers/<task-id>/<name>/      one container's lasting files: upper/ work/ logs/
//
// <run_dir>/ (on a tmpfs: what lives only as long as the containers, gone at a reboot as they are)
//   runtime/                          the OCI runtime's state (its --root)
//   containers/<task-id>/<name>/      one container: bundle/ (config.json, /etc files, the
//                                     init's pid, the shim's exit status), rootfs/ (the overlay)
//
// Layers are keyed by DIFF_ID (the sha256 of the uncompressed tar, listed in the image config's
// rootfs.diff_ids), not by the compressed blob's digest: the same file tree compressed two ways
// (gzip and zstd, or two gzip levels) is one cache entry, and a container's lower layers follow
// from the image config alone. layers/tmp/ sits on the same file system as layers/<alg>/, so a
// finished unpack is renamed into place atomically.
//
// Every function that takes a digest, task id or container name expects a validated one
// (oci::parse_digest, validate_container_ref); anything else is a bug and throws
// std::invalid_argument rather than building a path that escapes the data directory.
class Layout {
 public:
  // `data_dir` and `run_dir` must be absolute and free of ',', ':', '\' and white space, which
  // overlayfs mount options and /proc/self/mountinfo would need escaped. Without a `run_dir`,
  // <data_dir>/run is one.
  static Result<Layout> create(const std::filesystem::path& data_dir,
                               const std::filesystem::path& run_dir = {});

  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& run_dir() const { return run_dir_; }
  std::filesystem::path lock_file() const;

  std::filesystem::path state_dir() const;
  std::filesystem::path agent_state_file() const;
  std::filesystem::path network_state_file() const;
  // The awsvpc network's endpoints (task namespaces).
  std::filesystem::path awsvpc_state_file() const;

  std::filesystem::path layers_dir() const;
  std::filesystem::path layer_dir(const oci::Digest& diff_id) const;
  std::filesystem::path layer_temp_dir() const;
  // Init layers (see init_layer.hpp), by the sha256 of their stack of diff_ids.
  std::filesystem::path init_layers_dir() const;
  std::filesystem::path init_layer_dir(std::string_view chain_hex) const;

  std::filesystem::path images_dir() const;
  // Among the image directories (images/<alg>/), which never take this name.
  std::filesystem::path image_index_file() const;
  std::filesystem::path image_dir(const oci::Digest& manifest_digest) const;
  std::filesystem::path image_manifest_file(const oci::Digest& manifest_digest) const;
  std::filesystem::path image_config_file(const oci::Digest& manifest_digest) const;

  std::filesystem::path containers_dir() const;
  // Task and container directories made ahead of launches (see SpareDirs).
  std::filesystem::path spares_dir() const;
  std::filesystem::path task_dir(std::string_view task_id) const;
  std::filesystem::path task_state_file(std::string_view task_id) const;
  std::filesystem::path container_dir(const ContainerRef& container) const;
  std::filesystem::path container_upper_dir(const ContainerRef& container) const;
  std::filesystem::path container_work_dir(const ContainerRef& container) const;
  std::filesystem::path container_logs_dir(const ContainerRef& container) const;

  std::filesystem::path runtime_state_dir() const;
  std::filesystem::path run_containers_dir() const;
  std::filesystem::path task_run_dir(std::string_view task_id) const;
  std::filesystem::path container_run_dir(const ContainerRef& container) const;
  std::filesystem::path container_merged_dir(const ContainerRef& container) const;
  std::filesystem::path container_bundle_dir(const ContainerRef& container) const;

 private:
  Layout(std::filesystem::path data_dir, std::filesystem::path run_dir)
      : data_dir_(std::move(data_dir)), run_dir_(std::move(run_dir)) {}

  std::filesystem::path data_dir_;
  std::filesystem::path run_dir_;
};

}  // namespace wharf::agent
