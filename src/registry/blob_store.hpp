// Content-addressed blob storage on local disk, shared by every repository, and the upload
// sessions that fill it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "oci/digest.hpp"

namespace wharf::registry {

// Layout under the root (DATA_DIR/registry):
//   blobs/<algorithm>/<hex[0:2]>/<hex>   a verified blob; never partially visible
//   uploads/<upload id>                  bytes of an upload session as they arrive
// A blob appears only by rename() from uploads/ after its digest verified and its bytes were
// fsync'd, so a crash leaves at worst a stray upload file, which open() removes.
struct BlobStoreOptions {
  std::filesystem::path root;
  // Upload sessions untouched this long are removed by expire_uploads().
  std::chrono::seconds upload_timeout = std::chrono::hours(1);
  // Blobs written or retained within this window are never garbage-collected, so a blob pushed
  // just before the manifest that references it survives a concurrent collection.
  std::chrono::seconds gc_grace = std::chrono::hours(1);
};

// An open blob: read it with pread or send it with sendfile.
struct BlobFile {
  UniqueFd fd;
  uint64_t size = 0;
};

struct UploadStatus {
  std::string id;
  std::string owner;  // who started it, e.g. "us-east-1/123456789012/app" (checked by callers)
  uint64_t size = 0;  // bytes received so far
  TimePoint started;
  TimePoint touched;  // last write
};

struct GcStats {
  std::size_t blobs_removed = 0;
  uint64_t bytes_removed = 0;
  std::vector<oci::Digest> removed;
};

class BlobStore;
struct UploadSession;  // internal to blob_store.cpp

// Exclusive write access to one upload session; appends bytes at its end and hashes them as
// they pass. Releasing it (destruction) keeps what was written, for a later chunk.
class UploadWriter {
 public:
  UploadWriter(UploadWriter&&) noexcept;
  UploadWriter& operator=(UploadWriter&&) noexcept;
  ~UploadWriter();

  // Appends `bytes` to the upload. kInternal when the disk write fails.
  Status write(std::string_view bytes);
  // Writes out what is still buffered; its error, if writing failed (the session keeps it, so
  // the upload can only fail from then on). Call before answering for a chunk: releasing the
  // writer does the same but has no one to tell.
  Status close();
  // Bytes in the upload so far, including earlier chunks.
  uint64_t size() const;
  const std::string& id() const { return id_; }

 private:
  friend class BlobStore;
  UploadWriter(BlobStore* store, UploadSession* session, std::string id)
      : store_(store), session_(session), id_(std::move(id)) {}
  BlobStore* store_ = nullptr;
  UploadSession* session_ = nullptr;  // the store's session, pinned (busy) while this writer lives
  std::string id_;
};

class BlobStore {
 public:
  // Creates the directories and removes upload files left behind by an earlier process.
  static Result<std::unique_ptr<BlobStore>> open(BlobStoreOptions options, const Clock& clock);
  ~BlobStore();

  // ---- blobs (thread-safe; none of these block for more than a stat/open) ----
  // The blob's size, or nullopt when it is not stored.
  std::optional<uint64_t> size(const oci::Digest& digest) const;
  // Opens the blob for reading; kLayersNotFound when it is not stored.
  Result<BlobFile> open_blob(const oci::Digest& digest) const;
  // Reads a whole (small) blob, e.g. an image config; kLayersNotFound when absent,
  // kInvalidParameter when larger than `limit`.
  Result<std::string> read_blob(const oci::Digest& digest, uint64_t limit) const;
  // Stores `bytes` as a blob (verified, durable, atomic), returning its digest. For small
  // blobs written whole; large ones go through an upload.
  Result<oci::Digest> put_blob(std::string_view bytes, std::string_view algorithm = "sha256");
  // Records that something is about to reference the blob (a manifest push, a cross-repository
  // mount) and reports whether it is stored. A blob retained within the grace period is never
  // collected, and the check and the record are atomic with collection, so a caller that got
  // true can rely on the blob for gc_grace.
  bool retain(const oci::Digest& digest);
  // The path of a blob (for tests and diagnostics; it may not exist).
  std::filesystem::path blob_path(const oci::Digest& digest) const;

  // ---- uploads ----
  // Starts an upload session; returns its id (a UUID).
  Result<std::string> begin_upload(std::string owner);
  // kUploadNotFound when there is no such session.
  Result<UploadStatus> upload_status(std::string_view id) const;
  // Exclusive access for appending. `offset`, when given, must equal the current size
  // (kInvalidLayerPart otherwise: an out-of-order chunk). kUploadNotFound for an unknown id,
  // kResourceInUse while another writer or a completion holds the session.
  Result<UploadWriter> writer(std::string_view id, std::optional<uint64_t> offset = std::nullopt);
  // writer(id, offset), write(bytes), release: for a part held whole in memory (ECR
  // UploadLayerPart). The session is free again when this returns. Returns the new size.
  Result<uint64_t> append(std::string_view id, uint64_t offset, std::string_view bytes);
  // Verifies that the upload's bytes hash to `digest`, makes them durable and moves them into
  // place as that blob (a no-op on the bytes if the blob already exists), and ends the session.
  // Returns the blob's size. kInvalidLayer when the digest does not match (the session is ended
  // too), kUploadNotFound / kResourceInUse as for writer(), kInternal on disk failure.
  // Blocks on fsync: call it off the event loops.
  Result<uint64_t> complete_upload(std::string_view id, const oci::Digest& digest);
  // Ends the session and removes its bytes. kUploadNotFound when unknown.
  Status cancel_upload(std::string_view id);
  // Removes sessions untouched for longer than upload_timeout; returns how many.
  std::size_t expire_uploads();
  std::size_t upload_count() const;

  // ---- garbage collection ----
  // Removes every stored blob that is not in `referenced`, is older than the grace period and
  // was not retained within it. Call with the referenced set taken from every manifest after
  // this call began listing (RegistryState::referenced_blobs()); blobs whose files are still
  // being uploaded are not in blobs/ yet and are never candidates. Blocks on disk I/O.
  Result<GcStats> collect_garbage(const std::function<std::set<oci::Digest>()>& referenced);

 private:
  friend class UploadWriter;
  BlobStore(BlobStoreOptions options, const Clock& clock);
  Status prepare();
  std::filesystem::path upload_path(std::string_view id) const;
  Status install(const std::filesystem::path& from, const oci::Digest& digest);
  // Marks upload `id` busy for one writer or for completion; `offset`, when given, must be
  // its current size. kUploadNotFound, kResourceInUse, kInvalidLayerPart.
  Result<UploadSession*> claim(std::string_view id, std::optional<uint64_t> offset);
  void release(UploadSession* session);

  BlobStoreOptions options_;
  const Clock& clock_;
  mutable std::mutex mutex_;  // guards uploads_ and retained_, and orders retain() vs deletion
  std::map<std::string, std::unique_ptr<UploadSession>, std::less<>> uploads_;
  std::map<oci::Digest, TimePoint> retained_;
  // Cleared when the file system refuses O_DIRECT, so uploads stop trying it.
  std::atomic<bool> direct_io_ = true;
};

}  // namespace wharf::registry
