// overlayfs mounts for container root file systems, and their cleanup.
#include "agent/rootfs.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "agent/files.hpp"
#include "agent/init_layer.hpp"
#include "agent/layer_unpack.hpp"
#include "agent/remove_tree.hpp"
#include "common/log.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;

namespace {

// Creates one directory (its parent must exist); an existing one is kept as it is.
Status make_dir(const fs::path& dir, mode_t mode) {
  if (mkdir(dir.c_str(), mode) == 0) return {};
  if (errno == EEXIST) return {};
  return std::unexpected(errno_error("creating " + dir.string()));
}

// upper/ is the container's "/": it starts with the owner and mode of the top layer's root.
// `made_empty`: a ready-made upper/ that only needs them.
Status make_upper_dir(const fs::path& upper, const fs::path& top_layer, bool made_empty) {
  struct stat top {};
  if (stat(top_layer.c_str(), &top) != 0) return std::unexpected(errno_error("inspecting layer"));
  if (!made_empty && mkdir(upper.c_str(), 0700) != 0) {
    if (errno == EEXIST) return {};  // the container's writes from before a restart
    return std::unexpected(errno_error("creating " + upper.string()));
  }
  if (chown(upper.c_str(), top.st_uid, top.st_gid) != 0 ||
      chmod(upper.c_str(), top.st_mode & 07777) != 0) {
    return std::unexpected(errno_error("setting the owner and mode of " + upper.string()));
  }
  return {};
}

bool is_mount_point(const fs::path& path) {
  UniqueFd parent(open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!parent) return false;
  UniqueFd entry(openat(parent.get(), path.filename().c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  return entry && is_mount_root(parent.get(), entry.get());
}

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view field) {
  auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string text;
  for (std::size_t char_idx = 0; char_idx < field.size(); ++char_idx) {
    std::string_view rest = field.substr(char_idx);
    if (rest.size() >= 4 && rest[0] == '\\' &&
        std::all_of(rest.begin() + 1, rest.begin() + 4, is_octal)) {
      text += static_cast<char>((rest[1] - '0') * 64 + (rest[2] - '0') * 8 + (rest[3] - '0'));
      char_idx += 3;
      continue;
    }
    text += field[char_idx];
  }
  return text;
}

std::string overlay_options(std::span<const std::string> lowers_top_first, const fs::path& upper,
                            const fs::path& work) {
  std::string options = "lowerdir=";
  for (std::size_t layer_idx = 0; layer_idx < lowers_top_first.size(); ++layer_idx) {
    if (layer_idx > 0) options += ':';
    options += lowers_top_first[layer_idx];
  }
  return options + ",upperdir=" + upper.string() + ",workdir=" + work.string();
}

std::size_t mount_options_limit() {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) - 1;
}

Status mount_overlay(const std::string& options, const fs::path& merged) {
  if (mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) != 0) {
    return std::unexpected(errno_error("mount(2) overlay"));
  }
  return {};
}

// Mounts with relative lowerdirs resolved from `dir`. The working directory is per process, so
// the mount runs on a thread that unshared its file system context first.
Status mount_overlay_from(const fs::path& dir, const std::string& options, const fs::path& merged) {
  Status result;
  std::thread worker([&] {
    if (unshare(CLONE_FS) != 0) {
      result = std::unexpected(errno_error("unshare(CLONE_FS)"));
      return;
    }
    if (chdir(dir.c_str()) != 0) {
      result = std::unexpected(errno_error("chdir to " + dir.string()));
      return;
    }
    result = mount_overlay(options, merged);
  });
  worker.join();
  return result;
}

// A failed step of the new mount API, with what the kernel logged on the context ("e overlay:
// ..." lines) and, for EINVAL, the likely cause on kernels older than 6.5.
Error fs_context_error(int fs_fd, const std::string& doing) {
  int code = errno;
  Error failure = errno_error(doing);
  char line[512];
  ssize_t size = 0;
  while ((size = read(fs_fd, line, sizeof line)) > 0) {
    failure.message += "; ";
    failure.message.append(line, static_cast<std::size_t>(size));
  }
  if (code == EINVAL) {
    failure.message +=
        "; passing more lower layers than fit in one page of mount options needs overlayfs's "
        "'lowerdir+' (Linux 6.5 or later)";
  }
  return failure;
}

// The new mount API takes lowers one by one, so no page limit applies.
Status mount_overlay_appending_lowers(std::span<const std::string> lowers_top_first,
                                      const fs::path& upper, const fs::path& work,
                                      const fs::path& merged) {
  UniqueFd fs_fd(fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs_fd) return std::unexpected(errno_error("fsopen overlay"));
  auto set = [&](const char* key, const std::string& value) {
    return fsconfig(fs_fd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0;
  };
  for (const std::string& lower : lowers_top_first) {
    if (!set("lowerdir+", lower)) {
      return std::unexpected(fs_context_error(fs_fd.get(), "adding lower layer " + lower));
    }
  }
  if (!set("upperdir", upper.string()) || !set("workdir", work.string()) ||
      fsconfig(fs_fd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return std::unexpected(fs_context_error(fs_fd.get(), "creating the overlay"));
  }
  UniqueFd mount_fd(fsmount(fs_fd.get(), FSMOUNT_CLOEXEC, 0));
  if (!mount_fd) return std::unexpected(errno_error("fsmount overlay"));
  if (move_mount(mount_fd.get(), "", AT_FDCWD, merged.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return std::unexpected(errno_error("move_mount overlay"));
  }
  return {};
}

// Picks the first way to pass the lowers that fits; see the header.
// `init`, when not empty, is the topmost lower layer (see init_layer.hpp).
Status mount_layers(const Layout& layout, std::span<const oci::Digest> diff_ids,
                    const fs::path& init, const fs::path& upper, const fs::path& work,
                    const fs::path& merged) {
  std::vector<std::string> absolute;
  std::vector<std::string> relative;
  if (!init.empty()) {
    absolute.push_back(init.string());
    relative.push_back(init.lexically_relative(layout.layers_dir()));
  }
  for (auto diff_id = diff_ids.rbegin(); diff_id != diff_ids.rend(); ++diff_id) {
    absolute.push_back(layout.layer_dir(*diff_id).string());
    relative.push_back(layout.layer_dir(*diff_id).lexically_relative(layout.layers_dir()));
  }
  std::string options = overlay_options(absolute, upper, work);
  if (options.size() <= mount_options_limit()) return mount_overlay(options, merged);
  options = overlay_options(relative, upper, work);
  if (options.size() <= mount_options_limit()) {
    return mount_overlay_from(layout.layers_dir(), options, merged);
  }
  return mount_overlay_appending_lowers(absolute, upper, work, merged);
}

Status check_layers(const Layout& layout, std::span<const oci::Digest> diff_ids) {
  if (diff_ids.empty()) return invalid("the image has no layers to mount as a root file system");
  if (diff_ids.size() > kMaxRootfsLayers) {
    return invalid("the image has " + std::to_string(diff_ids.size()) +
                   " layers; overlayfs stacks at most " + std::to_string(kMaxRootfsLayers));
  }
  for (const oci::Digest& diff_id : diff_ids) {
    if (!oci::parse_digest(diff_id.str())) return invalid("bad diff_id '" + diff_id.str() + "'");
    if (!layer_unpacked(layout, diff_id)) {
      return fail(ErrorCode::kNotFound, "layer " + diff_id.str() + " is not unpacked");
    }
  }
  return {};
}

Result<fs::path> mount_container_rootfs(const Layout& layout, const ContainerRef& container,
                                        std::span<const oci::Digest> diff_ids,
                                        const std::function<bool(const fs::path&)>& claim_dir) {
  if (auto valid = validate_container_ref(container); !valid) {
    return std::unexpected(std::move(valid.error()));
  }
  if (auto present = check_layers(layout, diff_ids); !present) {
    return std::unexpected(std::move(present.error()));
  }
  fs::path merged = layout.container_merged_dir(container);
  if (is_mount_point(merged)) return merged;

  fs::path upper = layout.container_upper_dir(container);
  fs::path work = layout.container_work_dir(container);
  std::error_code error;
  for (const fs::path& dir : {layout.containers_dir(), layout.run_containers_dir()}) {
    fs::create_directories(dir, error);
    if (error)
      return fail(ErrorCode::kInternal, "creating " + dir.string() + ": " + error.message());
  }
  Status made = make_dir(layout.task_dir(container.task_id), 0711);
  fs::path dir = layout.container_dir(container);
  struct stat existing {};
  bool claimed =
      made && claim_dir && lstat(dir.c_str(), &existing) != 0 && errno == ENOENT && claim_dir(dir);
  if (made && !claimed) made = make_dir(dir, 0711);
  if (made) made = make_upper_dir(upper, layout.layer_dir(diff_ids.back()), claimed);
  if (made) made = make_dir(work, 0700);
  if (made) made = make_dir(layout.task_run_dir(container.task_id), 0711);
  if (made) made = make_dir(layout.container_run_dir(container), 0711);
  if (made) made = make_dir(merged, 0755);
  if (!made) return std::unexpected(std::move(made.error()));
  fs::path init;
  if (diff_ids.size() < kMaxRootfsLayers) {  // room for one more lower layer
    auto init_layer = ensure_init_layer(layout, diff_ids);
    if (init_layer) {
      init = *init_layer;
    } else {  // the runtime makes the mount points in upper/, as without it
      spdlog::warn("no init layer for container {} of task {}: {}", container.container_name,
                   container.task_id, init_layer.error().message);
    }
  }
  if (auto mounted = mount_layers(layout, diff_ids, init, upper, work, merged); !mounted) {
    return std::unexpected(std::move(mounted.error())
                               .context("mounting overlay with " + std::to_string(diff_ids.size()) +
                                        " layers at " + merged.string()));
  }
  return merged;
}

}  // namespace

Result<fs::path> mount_rootfs(const Layout& layout, const ContainerRef& container,
                              std::span<const oci::Digest> diff_ids,
                              const std::function<bool(const fs::path&)>& claim_dir) {
  auto merged = mount_container_rootfs(layout, container, diff_ids, claim_dir);
  if (!merged) {
    return std::unexpected(std::move(merged.error())
                               .context("mounting the rootfs of container " +
                                        container.container_name + " of task " +
                                        container.task_id));
  }
  return merged;
}

bool rootfs_mounted(const Layout& layout, const ContainerRef& container) {
  return validate_container_ref(container) &&
         is_mount_point(layout.container_merged_dir(container));
}

Status detach_rootfs(const Layout& layout, const ContainerRef& container) {
  if (auto valid = validate_container_ref(container); !valid) return valid;
  fs::path merged = layout.container_merged_dir(container);
  while (is_mount_point(merged)) {
    if (umount2(merged.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      return std::unexpected(errno_error("detaching the host's mount of " + merged.string()));
    }
  }
  return {};
}

Status remove_rootfs(const Layout& layout, const ContainerRef& container) {
  if (auto valid = validate_container_ref(container); !valid) return valid;
  std::string doing = "removing the rootfs of container " + container.container_name + " of task " +
                      container.task_id;
  fs::path merged = layout.container_merged_dir(container);
  while (is_mount_point(merged)) {  // one umount per mount stacked there
    if (umount2(merged.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EBUSY) {
      return fail(ErrorCode::kResourceInUse,
                  doing + ": " + merged.string() + " is busy: a process still uses it");
    }
    return std::unexpected(errno_error(doing + ": unmounting " + merged.string()));
  }
  // rmdir, not a recursive removal: were merged/ still a mount, this must not reach into it.
  if (rmdir(merged.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected(errno_error(doing + ": removing " + merged.string()));
  }
  for (const fs::path& dir :
       {layout.container_work_dir(container), layout.container_upper_dir(container)}) {
    if (auto removed = remove_tree(dir); !removed) {
      return std::unexpected(std::move(removed.error()).context(doing));
    }
  }
  // The bundle and logs may outlive the rootfs; their directories go only when they are gone.
  for (const fs::path& dir :
       {layout.container_run_dir(container), layout.container_dir(container)}) {
    if (rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
      return std::unexpected(errno_error(doing + ": removing " + dir.string()));
    }
  }
  return {};
}

std::vector<fs::path> parse_mount_points(std::string_view mountinfo) {
  std::vector<fs::path> points;
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root MOUNT-POINT options ... - type source super-options
    std::istringstream fields(line);
    std::string field;
    for (int field_idx = 0; field_idx < 5; ++field_idx) fields >> field;
    if (fields) points.emplace_back(unescape_mountinfo(field));
  }
  return points;
}

namespace {

struct MountBeneath {
  fs::path point;
  fs::path relative;  // to the directory it is beneath
};

// The mounts strictly beneath `dir`, in mountinfo's order (a mount after the one it sits on).
Result<std::vector<MountBeneath>> mounts_beneath(const fs::path& dir) {
  auto mountinfo = read_text_file("/proc/self/mountinfo");
  if (!mountinfo) return fail(ErrorCode::kInternal, "cannot read /proc/self/mountinfo");
  std::vector<MountBeneath> beneath;
  for (fs::path& point : parse_mount_points(*mountinfo)) {
    fs::path relative = point.lexically_relative(dir);
    if (relative.empty() || *relative.begin() == "." || *relative.begin() == "..") continue;
    beneath.push_back({std::move(point), std::move(relative)});
  }
  return beneath;
}

}  // namespace

Result<bool> open_run_dir(const Layout& layout) {
  const fs::path& dir = layout.run_dir();
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return fail(ErrorCode::kInternal, "creating " + dir.string() + ": " + error.message());
  struct statfs on {};
  if (statfs(dir.c_str(), &on) != 0) {
    return std::unexpected(errno_error("inspecting the file system of " + dir.string()));
  }
  if (on.f_type == TMPFS_MAGIC) return false;  // /run is a tmpfs, or an earlier start mounted one
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0711") != 0) {
    return std::unexpected(errno_error("mounting a tmpfs on " + dir.string()));
  }
  return true;
}

Result<bool> close_run_dir(const Layout& layout) {
  const fs::path& dir = layout.run_dir();
  std::error_code error;
  if (!fs::is_empty(layout.runtime_state_dir(), error) && !error) return false;
  auto beneath = mounts_beneath(dir);
  if (!beneath) return std::unexpected(beneath.error());
  if (!beneath->empty()) return false;
  if (is_mount_point(dir) && umount2(dir.c_str(), UMOUNT_NOFOLLOW) != 0) {
    if (errno == EBUSY) return false;  // a process works in it
    return std::unexpected(errno_error("unmounting " + dir.string()));
  }
  if (auto removed = remove_tree(dir); !removed) return std::unexpected(removed.error());
  return true;
}

Result<std::vector<fs::path>> unmount_stale_mounts(const Layout& layout,
                                                   std::span<const ContainerRef> live) {
  std::error_code error;
  fs::path containers = fs::weakly_canonical(layout.run_containers_dir(), error);
  if (error) containers = layout.run_containers_dir();
  auto beneath = mounts_beneath(containers);
  if (!beneath) return std::unexpected(beneath.error());

  auto task_is_live = [&](const std::string& task_id) {
    return std::ranges::any_of(live,
                               [&](const ContainerRef& ref) { return ref.task_id == task_id; });
  };
  std::vector<fs::path> stale;
  for (const auto& [point, relative] : *beneath) {
    auto component = relative.begin();
    std::string task_id = *component++;
    if (component == relative.end()) {
      if (!task_is_live(task_id)) stale.push_back(point);
      continue;
    }
    if (std::ranges::find(live, ContainerRef{task_id, *component}) == live.end()) {
      stale.push_back(point);
    }
  }
  // mountinfo lists a mount after the one it sits on: unmount from the end.
  std::vector<fs::path> unmounted;
  for (auto point = stale.rbegin(); point != stale.rend(); ++point) {
    if (umount2(point->c_str(), UMOUNT_NOFOLLOW) == 0 ||
        (errno == EBUSY && umount2(point->c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0)) {
      unmounted.push_back(*point);
      continue;
    }
    if (errno == EINVAL || errno == ENOENT) continue;  // went with a mount beneath it
    return std::unexpected(errno_error("unmounting stale mount " + point->string()));
  }
  return unmounted;
}

}  // namespace wharf::agent
