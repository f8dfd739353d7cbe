// The init layer: the mount points a container's runtime needs and an image may lack (/proc,
// /sys, /dev, and /etc/hosts, /etc/hostname and /etc/resolv.conf, which the runtime binds over),
// made once per stack of image layers and mounted as the top lower layer of every container of
// that image, as Docker's "-init" layers are.
//
// Without it the runtime creates the missing ones in the container's upper directory at every
// start: new inodes on the data dir's file system, each 0.3-0.6 ms on a journal-less ext4, and
// 3-8 ms per launch with a busybox image that has none of them.
//
// Only what the merged view of the layers lacks is made: an entry in any layer, a whiteout of
// it, an opaque directory above it or a non-directory /etc (a symbolic link, say) leaves it to
// the runtime as before. Layer trees are untrusted: they are read with *at() calls that never
// follow a symbolic link.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "agent/layout.hpp"
#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::agent {

struct MountPoint {
  std::string path;  // relative to the root: "proc", "etc/hosts"
  bool directory = false;

  bool operator==(const MountPoint&) const = default;
};

// The mount points the merged view of `layers` (unpacked layer directories, top layer first)
// lacks and an init layer can add.
std::vector<MountPoint> missing_mount_points(std::span<const std::filesystem::path> layers);

// Where the init layer of `diff_ids` (base layer first) lives: layout.init_layer_dir() of the
// sha256 of their stack.
std::filesystem::path init_layer_path(const Layout& layout, std::span<const oci::Digest> diff_ids);

// init_layer_path() of `diff_ids` (all unpacked), made when missing:
// a directory holding missing_mount_points(), possibly none.
Result<std::filesystem::path> ensure_init_layer(const Layout& layout,
                                                std::span<const oci::Digest> diff_ids);

}  // namespace wharf::agent
