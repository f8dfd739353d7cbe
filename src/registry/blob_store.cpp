// BlobStore: blobs on disk, upload sessions, expiry and garbage collection.
#include "registry/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace wharf::registry {

namespace fs = std::filesystem;

namespace {

// Writeback of an upload's file is started in windows of this size as the bytes arrive, so the
// fsync that completes the upload finds little left to write.
constexpr uint64_t kWritebackWindow = 8 << 20;
// O_DIRECT writes start at multiples of this (a page; more than any block size in use).
constexpr std::size_t kDirectAlign = 4096;

Error disk_error(std::string doing, const fs::path& path) {
  return Error{ErrorCode::kInternal, doing + " " + path.string() + ": " + std::strerror(errno)};
}

Status fsync_path(const fs::path& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return std::unexpected(disk_error("opening", path));
  if (::fsync(fd.get()) != 0) return std::unexpected(disk_error("syncing", path));
  return {};
}

Status fsync_dir(const fs::path& path) {
  return fsync_path(path, O_RDONLY | O_DIRECTORY);
}

// Creates `dir` (and missing parents), syncing each parent a new entry appeared in.
Status ensure_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return fsync_dir(dir.parent_path());
  if (errno == EEXIST) return {};
  if (errno != ENOENT) return std::unexpected(disk_error("creating", dir));
  if (auto status = ensure_dir(dir.parent_path()); !status) return status;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(disk_error("creating", dir));
  }
  return fsync_dir(dir.parent_path());
}

Status write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return std::unexpected(disk_error("writing", path));
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

Result<oci::Digest> hash_file(const fs::path& path, std::string_view algorithm) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(disk_error("opening", path));
  oci::Hasher hasher(algorithm);
  std::array<char, 256 * 1024> buffer;
  while (true) {
    ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::unexpected(disk_error("reading", path));
    if (got == 0) break;
    hasher.update({buffer.data(), static_cast<std::size_t>(got)});
  }
  return hasher.digest();
}

TimePoint modified_at(const struct stat& info) {
  auto since_epoch =
      std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(since_epoch));
}

Error upload_not_found(std::string_view id) {
  return Error{ErrorCode::kUploadNotFound, "upload " + std::string(id) + " does not exist"};
}

// The bytes of one writer's turn at an upload, from an offset that is a multiple of kDirectAlign:
// the receiving thread only copies them into a few reused, aligned buffers, and a thread of the
// pipeline hashes each full buffer and writes it with O_DIRECT. The disk is written without
// going through the page cache (whose fresh pages are slow to touch in a VM), and hashing runs
// on the other core. Whatever does not fill a buffer by finish() is hashed and written in line,
// the last partial block through the ordinary descriptor. The hasher belongs to the pipeline
// until finish() returns.
class DirectPipeline {
 public:
  // nullptr when the file system refuses O_DIRECT (tmpfs, for one).
  static std::unique_ptr<DirectPipeline> open(const fs::path& path, int buffered_fd,
                                              oci::Hasher& hasher, uint64_t offset) {
    UniqueFd direct(::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
    if (!direct) return nullptr;
    return std::unique_ptr<DirectPipeline>(
        new DirectPipeline(path, std::move(direct), buffered_fd, hasher, offset));
  }
  DirectPipeline(const DirectPipeline&) = delete;
  DirectPipeline& operator=(const DirectPipeline&) = delete;
  ~DirectPipeline() { (void)finish(); }

  Status write(std::string_view bytes) {
    while (!bytes.empty()) {
      if (filling_ == nullptr) {
        auto buffer = take_free_buffer();
        if (!buffer) return std::unexpected(buffer.error());
        filling_ = *buffer;
      }
      std::size_t taken = std::min(bytes.size(), kBufferSize - filled_);
      std::memcpy(filling_ + filled_, bytes.data(), taken);
      filled_ += taken;
      bytes.remove_prefix(taken);
      if (filled_ == kBufferSize) submit();
    }
    return {};
  }

  // Waits for the buffers in flight, then hashes and writes what is left in line.
  Status finish() {
    if (finished_) return outcome();
    finished_ = true;
    if (thread_.joinable()) {
      {
        std::lock_guard lock(mutex_);
        stopping_ = true;
      }
      work_.notify_one();
      thread_.join();
    }
    if (filled_ > 0 && !error_) {
      std::size_t aligned = filled_ - filled_ % kDirectAlign;
      write_out(filling_, aligned, false);
      write_out(filling_ + aligned, filled_ - aligned, true);
    }
    for (char* buffer : buffers_) std::free(buffer);
    buffers_.clear();
    return outcome();
  }

 private:
  static constexpr std::size_t kBufferSize = 1 << 20;
  static constexpr std::size_t kBufferCount = 4;

  struct Job {
    char* buffer;
    uint64_t offset;
  };

  DirectPipeline(const fs::path& path, UniqueFd direct, int buffered_fd, oci::Hasher& hasher,
                 uint64_t offset)
      : path_(path),
        direct_(std::move(direct)),
        buffered_fd_(buffered_fd),
        hasher_(hasher),
        offset_(offset) {}

  Status outcome() const {
    if (error_) return std::unexpected(*error_);
    return {};
  }

  // A free buffer: a new one while fewer than kBufferCount exist, else one the thread is done
  // with (waiting for it: the disk sets the pace).
  Result<char*> take_free_buffer() {
    std::unique_lock lock(mutex_);
    if (error_) return std::unexpected(*error_);
    if (free_.empty() && buffers_.size() < kBufferCount) {
      char* buffer = static_cast<char*>(std::aligned_alloc(kDirectAlign, kBufferSize));
      if (buffer == nullptr) throw std::bad_alloc();
      buffers_.push_back(buffer);
      return buffer;
    }
    done_.wait(lock, [&] { return !free_.empty() || error_; });
    if (error_) return std::unexpected(*error_);
    char* buffer = free_.back();
    free_.pop_back();
    return buffer;
  }

  void submit() {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back({filling_, offset_});
    }
    offset_ += kBufferSize;
    filling_ = nullptr;
    filled_ = 0;
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { run(); });
      } catch (const std::system_error& error) {
        // No thread to be had: this buffer, and the next ones, are written in line.
        spdlog::warn("registry: writing an upload without a helper thread: {}", error.what());
        drain_in_line();
        return;
      }
    }
    work_.notify_one();
  }

  // Without a thread: does the queued jobs here and hands their buffers back.
  void drain_in_line() {
    std::deque<Job> jobs;
    {
      std::lock_guard lock(mutex_);
      jobs.swap(jobs_);
    }
    for (const Job& job : jobs) complete(job);
  }

  // Hashes and writes a full buffer (unless an earlier write failed) and hands it back.
  void complete(const Job& job) {
    bool failed = false;
    {
      std::lock_guard lock(mutex_);
      failed = error_.has_value();
    }
    if (!failed) write_out(job.buffer, kBufferSize, false, job.offset);
    std::lock_guard lock(mutex_);
    free_.push_back(job.buffer);
    done_.notify_one();
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      work_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) return;
      Job job = jobs_.front();
      jobs_.pop_front();
      lock.unlock();
      complete(job);
      lock.lock();
    }
  }

  // Hashes `size` bytes and writes them at the end of what was written so far (or at `at`).
  void write_out(const char* data, std::size_t size, bool buffered,
                 std::optional<uint64_t> at = std::nullopt) {
    if (size == 0) return;
    hasher_.update({data, size});
    uint64_t position = at.value_or(offset_);
    if (!at) offset_ += size;
    int fd = buffered ? buffered_fd_ : direct_.get();
    while (size > 0) {
      ssize_t written = ::pwrite(fd, data, size, static_cast<off_t>(position));
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && errno == EINVAL && fd == direct_.get()) {
        fd = buffered_fd_;  // O_DIRECT refused for this write after all
        continue;
      }
      if (written <= 0) {
        std::lock_guard lock(mutex_);
        error_ = disk_error("writing", path_);
        done_.notify_all();
        return;
      }
      data += written;
      size -= static_cast<std::size_t>(written);
      position += static_cast<uint64_t>(written);
    }
  }

  fs::path path_;
  UniqueFd direct_;
  int buffered_fd_;
  oci::Hasher& hasher_;
  uint64_t offset_;  // where the next buffer goes; the receiving thread's
  char* filling_ = nullptr;
  std::size_t filled_ = 0;
  bool finished_ = false;
  std::mutex mutex_;  // guards the fields below
  std::condition_variable work_;
  std::condition_variable done_;
  std::deque<Job> jobs_;
  std::vector<char*> free_;
  std::vector<char*> buffers_;
  std::optional<Error> error_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

// One upload session. Fields other than `busy`, `size` and `touched` belong to whoever holds
// it busy (a writer or a completion); those three are guarded by the store's mutex.
struct UploadSession {
  std::string id;
  std::string owner;
  fs::path path;
  UniqueFd fd;  // open while a writer holds the session
  oci::Hasher hasher{"sha256"};
  // The current writer's pipeline, when its turn began at an aligned offset and the file
  // system takes O_DIRECT; otherwise the writer hashes and writes in line.
  std::unique_ptr<DirectPipeline> direct;
  std::optional<Error> failed;  // a pipeline's write failed after its writer was gone
  uint64_t written_back = 0;    // bytes [0, written_back) have had their writeback started
  uint64_t size = 0;
  TimePoint started;
  TimePoint touched;
  bool busy = false;
};

namespace {

// Writes out what the session's pipeline still holds and ends it. A failure stays in the session:
// the upload can only fail from then on.
Status finish_pipeline(UploadSession& session) {
  if (!session.direct) return {};
  Status written = session.direct->finish();
  session.direct.reset();
  if (!written) session.failed = written.error();
  return written;
}

}  // namespace

// ---- UploadWriter ----

UploadWriter::UploadWriter(UploadWriter&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)),
      session_(std::exchange(other.session_, nullptr)),
      id_(std::move(other.id_)) {}

UploadWriter& UploadWriter::operator=(UploadWriter&& other) noexcept {
  if (this == &other) return *this;
  if (store_ != nullptr) store_->release(session_);
  store_ = std::exchange(other.store_, nullptr);
  session_ = std::exchange(other.session_, nullptr);
  id_ = std::move(other.id_);
  return *this;
}

UploadWriter::~UploadWriter() {
  if (store_ != nullptr) store_->release(session_);
}

Status UploadWriter::write(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (session_->failed) return std::unexpected(*session_->failed);
  // Only this writer changes `size`, so reading it without the mutex is safe here.
  uint64_t end = session_->size + bytes.size();
  // Where the upload stands at an aligned offset, the pipeline can take over from here.
  if (!session_->direct && session_->size % kDirectAlign == 0 && store_->direct_io_) {
    session_->direct =
        DirectPipeline::open(session_->path, session_->fd.get(), session_->hasher, session_->size);
    // Only EINVAL says the file system takes no O_DIRECT; anything else is this open's trouble.
    if (!session_->direct && errno == EINVAL) store_->direct_io_ = false;
  }
  if (session_->direct) {
    if (auto status = session_->direct->write(bytes); !status) return status;
  } else {
    if (auto status = write_all(session_->fd.get(), bytes, session_->path); !status) {
      return status;
    }
    session_->hasher.update(bytes);
    if (end - session_->written_back >= kWritebackWindow) {
      // Asynchronous: queues the range for writing and returns. Advisory, so a failure is left
      // to the fsync in complete_upload() to report.
      ::sync_file_range(session_->fd.get(), static_cast<off_t>(session_->written_back),
                        static_cast<off_t>(end - session_->written_back), SYNC_FILE_RANGE_WRITE);
      session_->written_back = end;
    }
  }
  std::lock_guard lock(store_->mutex_);
  session_->size += bytes.size();
  session_->touched = store_->clock_.now();
  return {};
}

Status UploadWriter::close() {
  if (session_ == nullptr) return {};
  return finish_pipeline(*session_);
}

uint64_t UploadWriter::size() const {
  std::lock_guard lock(store_->mutex_);
  return session_->size;
}

// ---- BlobStore ----

BlobStore::BlobStore(BlobStoreOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

BlobStore::~BlobStore() = default;

Result<std::unique_ptr<BlobStore>> BlobStore::open(BlobStoreOptions options, const Clock& clock) {
  std::unique_ptr<BlobStore> store(new BlobStore(std::move(options), clock));
  if (auto status = store->prepare(); !status) return std::unexpected(status.error());
  return store;
}

Status BlobStore::prepare() {
  for (const char* dir : {"blobs", "uploads"}) {
    if (auto status = ensure_dir(options_.root / dir); !status) {
      return std::unexpected(status.error().context("preparing the blob store"));
    }
  }
  // Sessions live in memory, so files in uploads/ are leftovers of an earlier process.
  std::error_code ec;
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(options_.root / "uploads", ec)) {
    std::error_code remove_ec;
    removed += fs::remove_all(entry.path(), remove_ec) > 0 ? 1 : 0;
  }
  if (ec) return fail(ErrorCode::kInternal, "listing uploads: " + ec.message());
  if (removed > 0) spdlog::info("registry: removed {} abandoned upload files", removed);
  return {};
}

fs::path BlobStore::blob_path(const oci::Digest& digest) const {
  return options_.root / "blobs" / digest.algorithm / digest.hex.substr(0, 2) / digest.hex;
}

fs::path BlobStore::upload_path(std::string_view id) const {
  return options_.root / "uploads" / std::string(id);
}

std::optional<uint64_t> BlobStore::size(const oci::Digest& digest) const {
  struct stat info;
  if (::stat(blob_path(digest).c_str(), &info) != 0) return std::nullopt;
  return static_cast<uint64_t>(info.st_size);
}

Result<BlobFile> BlobStore::open_blob(const oci::Digest& digest) const {
  fs::path path = blob_path(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT)
      return fail(ErrorCode::kLayersNotFound, "blob " + digest.str() + " is not stored");
    return std::unexpected(disk_error("opening", path));
  }
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return std::unexpected(disk_error("reading", path));
  return BlobFile{std::move(fd), static_cast<uint64_t>(info.st_size)};
}

Result<std::string> BlobStore::read_blob(const oci::Digest& digest, uint64_t limit) const {
  auto file = open_blob(digest);
  if (!file) return std::unexpected(file.error());
  if (file->size > limit) {
    return invalid("blob " + digest.str() + " is " + std::to_string(file->size) +
                   " bytes, more than the limit of " + std::to_string(limit));
  }
  std::string bytes(file->size, '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got =
        ::pread(file->fd.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::unexpected(disk_error("reading", blob_path(digest)));
    done += static_cast<std::size_t>(got);
  }
  return bytes;
}

Result<oci::Digest> BlobStore::put_blob(std::string_view bytes, std::string_view algorithm) {
  oci::Digest digest = oci::digest_of(bytes, algorithm);
  fs::path temp = upload_path(new_uuid() + ".put");
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return std::unexpected(disk_error("creating", temp));
  Status written = write_all(fd.get(), bytes, temp);
  if (written && ::fsync(fd.get()) != 0) written = std::unexpected(disk_error("syncing", temp));
  fd.reset();
  if (written) written = install(temp, digest);
  if (!written) {
    ::unlink(temp.c_str());
    return std::unexpected(written.error());
  }
  return digest;
}

bool BlobStore::retain(const oci::Digest& digest) {
  std::lock_guard lock(mutex_);
  struct stat info;
  if (::stat(blob_path(digest).c_str(), &info) != 0) return false;
  retained_[digest] = clock_.now();
  return true;
}

// Moves a verified, synced file into place as the blob. Marking the blob retained first means
// a concurrent collection either removed the old copy before (and the rename recreates it) or
// sees the mark and leaves it.
Status BlobStore::install(const fs::path& from, const oci::Digest& digest) {
  TimePoint now = clock_.now();
  {
    std::lock_guard lock(mutex_);
    retained_[digest] = now;
  }
  // The blob's age is measured by the injected clock, so its mtime comes from it too.
  auto since_epoch = now.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  std::array<struct timespec, 2> times{};
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(seconds.count());
  times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  if (::utimensat(AT_FDCWD, from.c_str(), times.data(), 0) != 0) {
    return std::unexpected(disk_error("stamping", from));
  }
  fs::path target = blob_path(digest);
  if (auto status = ensure_dir(target.parent_path()); !status) return status;
  if (::rename(from.c_str(), target.c_str()) != 0) {
    return std::unexpected(disk_error("moving an upload to", target));
  }
  return fsync_dir(target.parent_path());
}

// ---- uploads ----

Result<std::string> BlobStore::begin_upload(std::string owner) {
  auto session = std::make_unique<UploadSession>();
  session->id = new_uuid();
  session->owner = std::move(owner);
  session->path = upload_path(session->id);
  UniqueFd fd(::open(session->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return std::unexpected(disk_error("creating", session->path));
  session->started = session->touched = clock_.now();
  std::string id = session->id;
  std::lock_guard lock(mutex_);
  uploads_.emplace(id, std::move(session));
  return id;
}

Result<UploadStatus> BlobStore::upload_status(std::string_view id) const {
  std::lock_guard lock(mutex_);
  auto found = uploads_.find(id);
  if (found == uploads_.end()) return std::unexpected(upload_not_found(id));
  const UploadSession& session = *found->second;
  return UploadStatus{session.id, session.owner, session.size, session.started, session.touched};
}

Result<UploadSession*> BlobStore::claim(std::string_view id, std::optional<uint64_t> offset) {
  std::lock_guard lock(mutex_);
  auto found = uploads_.find(id);
  if (found == uploads_.end()) return std::unexpected(upload_not_found(id));
  UploadSession* session = found->second.get();
  if (session->busy) {
    return fail(ErrorCode::kResourceInUse, "upload " + std::string(id) + " is being written");
  }
  if (offset && *offset != session->size) {
    return fail(ErrorCode::kInvalidLayerPart,
                "upload " + std::string(id) + " has " + std::to_string(session->size) +
                    " bytes; a chunk starting at " + std::to_string(*offset) + " is out of order");
  }
  session->busy = true;
  return session;
}

Result<UploadWriter> BlobStore::writer(std::string_view id, std::optional<uint64_t> offset) {
  auto claimed = claim(id, offset);
  if (!claimed) return std::unexpected(claimed.error());
  UploadSession* session = *claimed;
  session->fd.reset(::open(session->path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!session->fd) {
    Error error = disk_error("opening", session->path);
    release(session);
    return std::unexpected(std::move(error));
  }
  return UploadWriter(this, session, std::string(id));
}

Result<uint64_t> BlobStore::append(std::string_view id, uint64_t offset, std::string_view bytes) {
  auto writer = this->writer(id, offset);
  if (!writer) return std::unexpected(writer.error());
  if (auto written = writer->write(bytes); !written) return std::unexpected(written.error());
  if (auto closed = writer->close(); !closed) return std::unexpected(closed.error());
  return writer->size();
}

void BlobStore::release(UploadSession* session) {
  (void)finish_pipeline(*session);  // a failure stays in the session for completion to report
  session->fd.reset();
  std::lock_guard lock(mutex_);
  session->busy = false;
}

Result<uint64_t> BlobStore::complete_upload(std::string_view id, const oci::Digest& digest) {
  auto claimed = claim(id, std::nullopt);
  if (!claimed) return std::unexpected(claimed.error());
  UploadSession* session = *claimed;
  Result<uint64_t> outcome = [&]() -> Result<uint64_t> {
    if (session->failed) return std::unexpected(*session->failed);
    if (auto synced = fsync_path(session->path, O_RDONLY); !synced) {
      return std::unexpected(synced.error());
    }
    Result<oci::Digest> actual = digest.algorithm == "sha256"
                                     ? Result<oci::Digest>(session->hasher.digest())
                                     : hash_file(session->path, digest.algorithm);
    if (!actual) return std::unexpected(actual.error());
    if (*actual != digest) {
      return fail(ErrorCode::kInvalidLayer,
                  "the uploaded content has digest " + actual->str() + ", not " + digest.str());
    }
    if (auto installed = install(session->path, digest); !installed) {
      return std::unexpected(installed.error());
    }
    return session->size;
  }();
  if (!outcome) ::unlink(session->path.c_str());
  std::lock_guard lock(mutex_);
  uploads_.erase(uploads_.find(id));
  return outcome;
}

Status BlobStore::cancel_upload(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto found = uploads_.find(id);
  if (found == uploads_.end()) return std::unexpected(upload_not_found(id));
  if (found->second->busy) {
    return fail(ErrorCode::kResourceInUse, "upload " + std::string(id) + " is being written");
  }
  ::unlink(found->second->path.c_str());
  uploads_.erase(found);
  return {};
}

std::size_t BlobStore::expire_uploads() {
  TimePoint cutoff = clock_.now() - options_.upload_timeout;
  std::lock_guard lock(mutex_);
  std::size_t expired = 0;
  for (auto session = uploads_.begin(); session != uploads_.end();) {
    if (session->second->busy || session->second->touched > cutoff) {
      ++session;
      continue;
    }
    ::unlink(session->second->path.c_str());
    session = uploads_.erase(session);
    ++expired;
  }
  return expired;
}

std::size_t BlobStore::upload_count() const {
  std::lock_guard lock(mutex_);
  return uploads_.size();
}

// ---- garbage collection ----

Result<GcStats> BlobStore::collect_garbage(
    const std::function<std::set<oci::Digest>()>& referenced) {
  struct Candidate {
    oci::Digest digest;
    fs::path path;
  };
  TimePoint cutoff = clock_.now() - options_.gc_grace;
  std::vector<Candidate> candidates;
  std::error_code ec;
  for (auto entry = fs::recursive_directory_iterator(options_.root / "blobs", ec);
       !ec && entry != fs::recursive_directory_iterator(); entry.increment(ec)) {
    if (entry->is_directory(ec) || entry.depth() != 2) continue;
    std::string algorithm = entry->path().parent_path().parent_path().filename().string();
    auto digest = oci::parse_digest(algorithm + ":" + entry->path().filename().string());
    if (!digest) continue;  // not a blob this store wrote
    candidates.push_back({std::move(*digest), entry->path()});
  }
  if (ec) return fail(ErrorCode::kInternal, "listing blobs: " + ec.message());

  std::set<oci::Digest> keep = referenced();
  GcStats stats;
  for (const Candidate& candidate : candidates) {
    if (keep.contains(candidate.digest)) continue;
    // The check and the removal are atomic with retain() and install().
    std::lock_guard lock(mutex_);
    auto retained = retained_.find(candidate.digest);
    if (retained != retained_.end() && retained->second > cutoff) continue;
    struct stat info;
    if (::stat(candidate.path.c_str(), &info) != 0 || modified_at(info) > cutoff) continue;
    if (::unlink(candidate.path.c_str()) != 0) continue;
    stats.blobs_removed++;
    stats.bytes_removed += static_cast<uint64_t>(info.st_size);
    stats.removed.push_back(candidate.digest);
  }
  std::lock_guard lock(mutex_);
  std::erase_if(retained_, [&](const auto& entry) { return entry.second <= cutoff; });
  return stats;
}

}  // namespace wharf::registry
