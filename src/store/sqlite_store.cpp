// The SQLite implementation of Store: WAL, full fsync, and one writer thread that group-commits.
#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "store/sqlite_schema.hpp"
#include "store/store.hpp"

namespace wharf::store {
namespace {

// Long enough to ride out another process's checkpoint or a backup holding the lock.
constexpr int kBusyTimeoutMs = 5000;

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

std::unexpected<Error> sqlite_error(sqlite3* db, std::string_view doing) {
  return fail(ErrorCode::kInternal, std::string(doing) + ": " + sqlite3_errmsg(db));
}

// Statements are reused, so each use must leave it reset and unbound however it ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_;
};

Result<Connection> open_connection(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    if (!db) return fail(ErrorCode::kInternal, "opening " + path + ": out of memory");
    return sqlite_error(db.get(), "opening " + path);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  if (sqlite3_busy_timeout(db.get(), kBusyTimeoutMs) != SQLITE_OK) {
    return sqlite_error(db.get(), "setting busy timeout");
  }
  return db;
}

Status exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqlite_error(db, std::string("running \"") + sql + "\"");
  }
  return {};
}

Result<Statement> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &raw, nullptr) != SQLITE_OK) {
    return sqlite_error(db, "preparing \"" + std::string(sql) + "\"");
  }
  return Statement(raw);
}

// Runs a statement that yields one row (a PRAGMA read) and leaves it positioned on that row.
Result<Statement> query_row(sqlite3* db, std::string_view sql) {
  Result<Statement> stmt = prepare(db, sql);
  if (!stmt) return stmt;
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) {
    return sqlite_error(db, "reading \"" + std::string(sql) + "\"");
  }
  return stmt;
}

Status step_to_done(sqlite3* db, sqlite3_stmt* stmt) {
  ResetOnExit reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_DONE) return fail(ErrorCode::kInternal, sqlite3_errmsg(db));
  return {};
}

void bind_text(sqlite3_stmt* stmt, int index, const std::string& text) {
  // SQLITE_STATIC: the string outlives the step, and copying every key would cost throughput.
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

void bind_blob(sqlite3_stmt* stmt, int index, const std::string& bytes) {
  sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
}

std::string column_bytes(sqlite3_stmt* stmt, int index) {
  const void* data = sqlite3_column_blob(stmt, index);
  int size = sqlite3_column_bytes(stmt, index);
  if (size == 0) return {};  // data is null for an empty blob
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

// Commits the durability settings before any data is written: WAL so readers never block the
// writer, synchronous=FULL so that a commit is on disk (WAL fsync'd) before it is acknowledged.
Status configure_for_durability(sqlite3* db) {
  // Records are JSON of about a kilobyte; with 4 KiB pages most would spill into overflow pages.
  // Takes effect only while the database is still empty.
  if (Status ok = exec(db, "PRAGMA page_size=16384"); !ok) return ok;
  Result<Statement> mode = query_row(db, "PRAGMA journal_mode=WAL");
  if (!mode) return std::unexpected(mode.error());
  std::string_view actual = reinterpret_cast<const char*>(sqlite3_column_text(mode->get(), 0));
  if (actual != "wal") {
    return fail(ErrorCode::kInternal,
                "enabling WAL: the database stayed in journal mode " + std::string(actual));
  }
  return exec(db, "PRAGMA synchronous=FULL");
}

Result<int> schema_version(sqlite3* db) {
  Result<Statement> version = query_row(db, "PRAGMA user_version");
  if (!version) return std::unexpected(version.error());
  return sqlite3_column_int(version->get(), 0);
}

Status rollback_if_open(sqlite3* db) {
  // Some errors (SQLITE_FULL, SQLITE_IOERR) have already rolled the transaction back.
  if (sqlite3_get_autocommit(db)) return {};
  return exec(db, "ROLLBACK");
}

// Applies the next migration inside its own transaction. The version is read after BEGIN
// IMMEDIATE, so two processes opening a fresh file cannot both apply the same migration.
// Returns false when the schema is already current.
Result<bool> migrate_one_step(sqlite3* db) {
  if (Status begun = exec(db, "BEGIN IMMEDIATE"); !begun) return std::unexpected(begun.error());
  Result<int> version = schema_version(db);
  if (!version) {
    rollback_if_open(db);
    return std::unexpected(version.error());
  }
  if (*version > kSqliteSchemaVersion) {
    rollback_if_open(db);
    return fail(ErrorCode::kInternal,
                "the database has schema version " + std::to_string(*version) +
                    ", newer than this binary understands (" +
                    std::to_string(kSqliteSchemaVersion) + "); run a newer wharf");
  }
  if (*version == kSqliteSchemaVersion) {
    if (Status ended = exec(db, "COMMIT"); !ended) return std::unexpected(ended.error());
    return false;
  }
  std::string step = "migrating to schema version " + std::to_string(*version + 1);
  Status applied = exec(db, kSqliteMigrations[static_cast<std::size_t>(*version)]);
  if (applied) {
    // A PRAGMA cannot take a bound parameter; the value is our own integer.
    applied = exec(db, ("PRAGMA user_version=" + std::to_string(*version + 1)).c_str());
  }
  if (applied) applied = exec(db, "COMMIT");
  if (!applied) {
    rollback_if_open(db);
    return std::unexpected(std::move(applied).error().context(step));
  }
  return true;
}

Status migrate(sqlite3* db) {
  while (true) {
    Result<bool> stepped = migrate_one_step(db);
    if (!stepped) return std::unexpected(stepped.error());
    if (!*stepped) return {};
  }
}

// The write connection and its statements; used only by the writer thread once the store is open.
struct WriteSide {
  Connection db;
  Statement begin;
  Statement commit;
  Statement upsert;
  Statement erase;
};

// The read connection; load() takes read_mutex_ to use it.
struct ReadSide {
  Connection db;
  Statement select_kind;
};

Result<WriteSide> open_write_side(const std::string& path) {
  WriteSide side;
  Result<Connection> db = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db) return std::unexpected(db.error());
  side.db = std::move(*db);
  if (Status ok = configure_for_durability(side.db.get()); !ok) {
    return std::unexpected(ok.error());
  }
  if (Status ok = migrate(side.db.get()); !ok) return std::unexpected(ok.error());
  struct Wanted {
    Statement* into;
    std::string_view sql;
  };
  for (auto [into, sql] : {
           Wanted{&side.begin, "BEGIN IMMEDIATE"},
           Wanted{&side.commit, "COMMIT"},
           Wanted{&side.upsert,
                  "INSERT INTO records(kind, key, value) VALUES(?1, ?2, ?3) "
                  "ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value"},
           Wanted{&side.erase, "DELETE FROM records WHERE kind = ?1 AND key = ?2"},
       }) {
    Result<Statement> stmt = prepare(side.db.get(), sql);
    if (!stmt) return std::unexpected(stmt.error());
    *into = std::move(*stmt);
  }
  return side;
}

Result<ReadSide> open_read_side(const std::string& path) {
  ReadSide side;
  // Read-write flags because a WAL reader must be able to update the shared-memory index;
  // query_only stops this connection from ever writing data.
  Result<Connection> db = open_connection(path, SQLITE_OPEN_READWRITE);
  if (!db) return std::unexpected(db.error());
  side.db = std::move(*db);
  if (Status ok = exec(side.db.get(), "PRAGMA query_only=1"); !ok) {
    return std::unexpected(ok.error());
  }
  Result<Statement> select =
      prepare(side.db.get(), "SELECT key, value FROM records WHERE kind = ?1 ORDER BY key");
  if (!select) return std::unexpected(select.error());
  side.select_kind = std::move(*select);
  return side;
}

struct PendingCommit {
  std::vector<Mutation> mutations;
  CommitCallback done;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(WriteSide write, ReadSide read)
      : write_(std::move(write)), read_(std::move(read)), writer_([this] { run_writer(); }) {}
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() override { close(); }

  Result<std::vector<Record>> load(const std::string& kind) override;
  void commit(std::vector<Mutation> mutations, CommitCallback done) override;
  void close() override;

 private:
  void run_writer();
  bool take_group(std::vector<PendingCommit>& group);
  void write_group(std::span<PendingCommit> group);
  Status write_in_transaction(std::span<const PendingCommit> group);
  Status apply(const Mutation& mutation);
  void shut_down();

  // Optional so that close() can release each connection, statements first.
  std::optional<WriteSide> write_;

  std::mutex read_mutex_;
  std::optional<ReadSide> read_;  // guarded by read_mutex_

  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::vector<PendingCommit> queue_;  // guarded by queue_mutex_
  bool closing_ = false;              // guarded by queue_mutex_

  std::once_flag close_once_;
  std::thread writer_;  // after everything it uses, so it starts only once they are built
  // Read by close() while another close() may be joining writer_, so kept apart from it.
  const std::thread::id writer_id_ = writer_.get_id();
};

Result<std::vector<Record>> SqliteStore::load(const std::string& kind) {
  std::lock_guard lock(read_mutex_);
  if (!read_) return fail(ErrorCode::kInternal, "loading " + kind + ": the store is closed");
  sqlite3_stmt* stmt = read_->select_kind.get();
  ResetOnExit reset(stmt);
  bind_text(stmt, 1, kind);
  std::vector<Record> records;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    records.push_back(Record{kind, column_bytes(stmt, 0), column_bytes(stmt, 1)});
  }
  if (rc != SQLITE_DONE) return sqlite_error(read_->db.get(), "loading " + kind);
  return records;
}

void SqliteStore::commit(std::vector<Mutation> mutations, CommitCallback done) {
  std::unique_lock lock(queue_mutex_);
  if (closing_) {
    lock.unlock();
    // No store thread is left to call back on, so the caller's thread does.
    done(fail(ErrorCode::kInternal, "committing: the store is closed"));
    return;
  }
  // The writer only sleeps on an empty queue, so only the first arrival needs to wake it.
  bool was_empty = queue_.empty();
  queue_.push_back(PendingCommit{std::move(mutations), std::move(done)});
  lock.unlock();
  if (was_empty) queue_changed_.notify_one();
}

void SqliteStore::close() {
  if (std::this_thread::get_id() == writer_id_) {
    // Joining the writer from the writer would hang forever; fail loudly instead.
    std::fputs("wharf::store: close() called from a commit callback\n", stderr);
    std::abort();
  }
  std::call_once(close_once_, [this] { shut_down(); });
}

void SqliteStore::shut_down() {
  {
    std::lock_guard lock(queue_mutex_);
    closing_ = true;
  }
  queue_changed_.notify_one();
  writer_.join();
  // Closing the last connection checkpoints the WAL into the main file.
  write_.reset();
  std::lock_guard lock(read_mutex_);
  read_.reset();
}

void SqliteStore::run_writer() {
  std::vector<PendingCommit> group;
  while (take_group(group)) {
    write_group(group);
    group.clear();
  }
}

// Waits for work and takes everything queued. False once closing and drained.
bool SqliteStore::take_group(std::vector<PendingCommit>& group) {
  std::unique_lock lock(queue_mutex_);
  queue_changed_.wait(lock, [this] { return !queue_.empty() || closing_; });
  if (queue_.empty()) return false;
  group.swap(queue_);
  return true;
}

void SqliteStore::write_group(std::span<PendingCommit> group) {
  Status written = write_in_transaction(group);
  if (written || group.size() == 1) {
    for (PendingCommit& pending : group) pending.done(written);
    return;
  }
  // Something in the group failed; redo each batch alone so only the bad one reports failure.
  for (PendingCommit& pending : group) pending.done(write_in_transaction({&pending, 1}));
}

Status SqliteStore::write_in_transaction(std::span<const PendingCommit> group) {
  sqlite3* db = write_->db.get();
  if (Status begun = step_to_done(db, write_->begin.get()); !begun) {
    return std::unexpected(std::move(begun).error().context("beginning a commit"));
  }
  for (const PendingCommit& pending : group) {
    for (const Mutation& mutation : pending.mutations) {
      Status applied = apply(mutation);
      if (applied) continue;
      rollback_if_open(db);
      return applied;
    }
  }
  if (Status committed = step_to_done(db, write_->commit.get()); !committed) {
    rollback_if_open(db);
    return std::unexpected(std::move(committed).error().context("committing"));
  }
  return {};
}

Status SqliteStore::apply(const Mutation& mutation) {
  sqlite3* db = write_->db.get();
  sqlite3_stmt* stmt = mutation.value ? write_->upsert.get() : write_->erase.get();
  bind_text(stmt, 1, mutation.kind);
  bind_text(stmt, 2, mutation.key);
  if (mutation.value) bind_blob(stmt, 3, *mutation.value);
  Status stepped = step_to_done(db, stmt);
  if (stepped) return {};
  std::string doing =
      (mutation.value ? "writing " : "deleting ") + mutation.kind + "/" + mutation.key;
  return std::unexpected(std::move(stepped).error().context(doing));
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  std::string doing = "opening store " + path;
  Result<WriteSide> write = open_write_side(path);
  if (!write) return std::unexpected(std::move(write).error().context(doing));
  Result<ReadSide> read = open_read_side(path);
  if (!read) return std::unexpected(std::move(read).error().context(doing));
  return std::make_unique<SqliteStore>(std::move(*write), std::move(*read));
}

}  // namespace wharf::store
