// Container root file systems: one overlayfs mount per container over its image's cached layers.
//
// rootfs/ = overlay(lowerdir = the image's unpacked layers, top layer first;
//                   upperdir = upper/, workdir = work/, both the container's own)
// with upper/ and work/ in layout.container_dir(container), on the data directory's disk, and
// the mount point in layout.container_run_dir(container). Layers stay read-only and shared; the
// container's writes land in upper/, and removing the rootfs removes them.
//
// Many layers: the legacy mount(2) call takes at most one page of options (4096 bytes). When
// the absolute lowerdir paths don't fit, the mount runs on a helper thread with a private working
// directory (unshare(CLONE_FS)) in layers/, naming lowers by their short relative paths
// ("sha256/<hex>"). When even those don't fit, the lowers are added one at a time through the
// new mount API (fsconfig "lowerdir+", Linux 6.5+); on older kernels that is an error that says
// so. overlayfs itself stacks at most 500 lowers.
#pragma once

#include <filesystem>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "agent/layout.hpp"
#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::agent {

// overlayfs's limit on lower layers (OVL_MAX_STACK).
inline constexpr std::size_t kMaxRootfsLayers = 500;

// Mounts the rootfs of `container` and returns layout.container_merged_dir(container).
// `diff_ids` are in image-config order (rootfs.diff_ids: base layer first) and must all be
// unpacked (kNotFound otherwise). upper/ takes the owner and mode of the top layer's root, which
// the container sees as "/". Idempotent: an existing mount is kept, so an agent that restarts
// next to running containers re-attaches; an existing upper/ is reused. On failure the
// directories stay for remove_rootfs().
//
// `claim_dir`, when given, is asked for the container's directory (layout.container_dir) before
// it is made: true when it put one there, ready-made with empty upper/ and work/ (SpareDirs).
Result<std::filesystem::path> mount_rootfs(
    const Layout& layout, const ContainerRef& container, std::span<const oci::Digest> diff_ids,
    const std::function<bool(const std::filesystem::path&)>& claim_dir = {});

bool rootfs_mounted(const Layout& layout, const ContainerRef& container);

// Once the container runs, its own mount namespace holds the rootfs: the host's mount is
// detached (MNT_DETACH), so the host's mount table does not grow with every running container.
// The runtime reads the whole table (/proc/self/mountinfo, overlay options and all) several
// times per container start, which made each start ~4 ms slower per hundred running
// containers. The directories stay for remove_rootfs().
Status detach_rootfs(const Layout& layout, const ContainerRef& container);

// Unmounts the rootfs and removes its mount point, work/ and upper/ (the container's writes), then
// the container's directories if nothing else is left in them. kResourceInUse while a process still
// uses the mount. Removing a rootfs that is not there succeeds.
Status remove_rootfs(const Layout& layout, const ContainerRef& container);

// After an agent crash: unmounts every mount under layout.run_containers_dir() that no live
// container owns, deepest first, and returns the mount points it unmounted. A mount at or
// below containers/<task>/<name>/ belongs to that container; one on containers/<task> itself
// to the task, live while any of its containers is. A busy stale mount is detached
// (MNT_DETACH). Directories are left for remove_rootfs().
Result<std::vector<std::filesystem::path>> unmount_stale_mounts(const Layout& layout,
                                                                std::span<const ContainerRef> live);

// The run directory (layout.run_dir()) holds what lives only as long as the containers: their
// bundles, their rootfs mount points and the OCI runtime's state. It belongs on a tmpfs, as /run
// is on most hosts: a container start creates a dozen small files and directories there, and on
// a disk file system that costs milliseconds (more where ext4 runs without a journal and skips
// every recently freed inode). Makes the directory and, unless it is on a tmpfs already, mounts a
// tmpfs of its own there (mode 0711, nosuid, nodev). Returns whether it mounted one.
Result<bool> open_run_dir(const Layout& layout);

// Once no container is left (the runtime's state directory is empty and nothing is mounted
// beneath), removes the run directory, unmounting it if it is a mount of its own. Otherwise keeps
// it, for an agent that starts again later: returns false then.
Result<bool> close_run_dir(const Layout& layout);

// The mount points listed in /proc/<pid>/mountinfo text, in its order, octal escapes undone.
std::vector<std::filesystem::path> parse_mount_points(std::string_view mountinfo);

}  // namespace wharf::agent
