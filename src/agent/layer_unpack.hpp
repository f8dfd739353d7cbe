// Unpacks image layer blobs into the agent's content-addressed layer cache, safely and once.
//
// A layer blob is a tar, plain or compressed with gzip or zstd; the compression is read from the
// blob's magic bytes, never trusted from a media type. The tar is unpacked into a fresh directory
// under layout.layer_temp_dir() while the sha256 of the uncompressed tar (the layer's DIFF_ID) is
// computed; only a complete, verified tree is renamed to layout.layer_dir(diff_id). So a crash
// leaves no half layer where a reader looks, and concurrent unpackers of one layer race only on
// the final rename: one wins, the others discard their copy and use the winner's. (The image store
// should still share one unpack per layer among its own callers to save the work.)
//
// Entry paths, as Docker treats them: a leading "/" is stripped ("/etc/x" lands at etc/x),
// empty and "." components are dropped, and missing parent directories are created 0755 root.
// Refused, with an error naming the entry (the layer is then not cached):
//   - a ".." component anywhere, in an entry's path or a hard link's target (Docker accepts
//     "a/../b" after cleaning it; real layers never contain one, so Wharf does not);
//   - a path longer than 4095 bytes or a component longer than 255;
//   - an entry whose parent path goes through a symbolic link or a non-directory: entries are
//     created with openat(O_NOFOLLOW) one component at a time, so no symlink in the layer (or
//     planted by an earlier entry) is ever followed while unpacking;
//   - a hard link whose target is not already in this layer (targets resolve inside the layer,
//     leading "/" stripped, without following symlinks), or is a directory;
//   - character and block devices and sockets (FIFOs are allowed).
// A later entry replaces an earlier one of the same path, except that a directory over a
// directory keeps its contents and only takes the new metadata. Ownership (numeric uid/gid),
// permission bits including setuid/setgid/sticky, and mtimes (directories' applied last) are
// kept. Extended attributes are kept only in "user." and "security.capability"; the rest —
// notably trusted.overlay.* and user.overlay.*, which would steer overlayfs — are dropped.
//
// OCI whiteouts become overlayfs whiteouts, so the cached layer can be an overlay lowerdir as is:
//   - "DIR/.wh.NAME" becomes a character device 0:0 at DIR/NAME (the only device node ever
//     created). If this layer itself has DIR/NAME, the whiteout only hides lower layers: a
//     file already hides them, and a directory is marked opaque instead.
//   - "DIR/.wh..wh..opq" sets the xattr trusted.overlay.opaque=y on DIR, hiding lower layers'
//     contents of DIR but not this layer's.
//   - other ".wh..wh.*" names, and everything in a ".wh..wh.*" directory at the layer root
//     (aufs bookkeeping such as .wh..wh.plnk), are skipped.
// Unpacking needs root (CAP_CHOWN, CAP_MKNOD, trusted.* xattrs), as the agent runs.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "agent/layout.hpp"
#include "common/error.hpp"
#include "oci/digest.hpp"

namespace wharf::agent {

enum class LayerCompression { kNone, kGzip, kZstd };

std::string_view to_string(LayerCompression compression);

// The compression of a blob that starts with `head` (at least its first 6 bytes, when it has
// them). kInvalidLayer for an empty blob and for xz, bzip2 and lz4, which OCI layers don't use.
Result<LayerCompression> detect_layer_compression(std::string_view head);

struct UnpackedLayer {
  oci::Digest diff_id;
  std::filesystem::path dir;                               // layout.layer_dir(diff_id)
  LayerCompression compression = LayerCompression::kNone;  // unknown (kNone) on a cache hit
  bool unpacked = false;                                   // false when the cache already had it
};

// Unpacks `blob` (already verified against its compressed digest by whoever fetched it) into
// the cache. With `expected_diff_id` (from the image config), a cached layer is returned without
// reading the blob, and a blob whose uncompressed tar hashes differently is refused with
// kImageDigestDoesNotMatch. Malformed or refused tars are kInvalidLayer; local failures
// kInternal.
Result<UnpackedLayer> unpack_layer(const Layout& layout, const std::filesystem::path& blob,
                                   const std::optional<oci::Digest>& expected_diff_id);

bool layer_unpacked(const Layout& layout, const oci::Digest& diff_id);

// Removes a cached layer: renamed out of layers/<alg>/ first, so it vanishes whole. The caller
// makes sure no container rootfs uses it.
Status remove_layer(const Layout& layout, const oci::Digest& diff_id);

// Removes what crashed unpacks and removals left in layout.layer_temp_dir(). Only at start-up,
// before any unpack runs.
Status remove_layer_temp_dirs(const Layout& layout);

}  // namespace wharf::agent
