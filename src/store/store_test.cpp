// Unit tests for the SQLite store: durability, atomicity, ordering, group commit and schema checks.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_schema.hpp"
#include "store/store.hpp"

namespace wharf::store {
namespace {

Mutation put(std::string kind, std::string key, std::string value) {
  return Mutation{std::move(kind), std::move(key), std::move(value)};
}

Mutation erase(std::string kind, std::string key) {
  return Mutation{std::move(kind), std::move(key), std::nullopt};
}

// Zero-padded so that key order is numeric order.
std::string padded(int number) {
  std::string digits = std::to_string(number);
  return std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits;
}

std::vector<std::string> keys_of(const std::vector<Record>& records) {
  std::vector<std::string> keys;
  for (const Record& record : records) keys.push_back(record.key);
  return keys;
}

// Talks to the database file directly, behind the store's back, to set up odd states.
void exec_raw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  std::string message = sqlite3_errmsg(db);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error(sql + ": " + message);
}

std::string query_raw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = "/tmp/wharf-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    path_ = (dir_ / "wharf.db").string();
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Throws rather than asserting so it can return a value; GoogleTest reports the exception.
  std::unique_ptr<Store> open_store() {
    Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
    if (!store) throw std::runtime_error(store.error().message);
    return std::move(*store);
  }

  static std::vector<Record> load(Store& store, const std::string& kind) {
    Result<std::vector<Record>> records = store.load(kind);
    if (!records) throw std::runtime_error(records.error().message);
    return std::move(*records);
  }

  // Makes any write of the key "poison" fail, so tests can watch a batch fail inside SQLite.
  void install_poison_trigger() {
    open_store()->close();
    exec_raw(path_,
             "CREATE TRIGGER reject_poison BEFORE INSERT ON records WHEN NEW.key = 'poison' "
             "BEGIN SELECT RAISE(ABORT, 'poisoned key'); END");
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, RoundTripsRecordsInKeyOrder) {
  std::unique_ptr<Store> store = open_store();
  ASSERT_TRUE(store->commit_sync({put("ecs.cluster", "b", "2"), put("ecs.cluster", "a", "1"),
                                  put("ecs.task", "a", "task"), put("ecs.cluster", "c", "")}));
  ASSERT_TRUE(store->commit_sync({put("ecs.cluster", "b", "two")}));

  std::vector<Record> clusters = load(*store, "ecs.cluster");
  ASSERT_EQ(keys_of(clusters), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(clusters[0].kind, "ecs.cluster");
  EXPECT_EQ(clusters[0].value, "1");
  EXPECT_EQ(clusters[1].value, "two");
  EXPECT_EQ(clusters[2].value, "");
  EXPECT_EQ(load(*store, "ecs.task").size(), 1u);
  EXPECT_TRUE(load(*store, "ecs.nothing").empty());
}

TEST_F(SqliteStoreTest, KeepsBinaryValuesIntact) {
  std::unique_ptr<Store> store = open_store();
  std::string bytes("\0\xff\x01zero\0", 8);
  ASSERT_TRUE(store->commit_sync({put("blob", "k", bytes)}));
  EXPECT_EQ(load(*store, "blob").at(0).value, bytes);
}

TEST_F(SqliteStoreTest, DeleteRemovesOnlyThatKey) {
  std::unique_ptr<Store> store = open_store();
  ASSERT_TRUE(store->commit_sync({put("k", "a", "1"), put("k", "b", "2"), put("other", "a", "3")}));
  ASSERT_TRUE(store->commit_sync({erase("k", "a"), erase("k", "never-existed")}));

  EXPECT_EQ(keys_of(load(*store, "k")), std::vector<std::string>{"b"});
  EXPECT_EQ(keys_of(load(*store, "other")), std::vector<std::string>{"a"});
}

TEST_F(SqliteStoreTest, AppliesABatchAllOrNothing) {
  install_poison_trigger();
  std::unique_ptr<Store> store = open_store();
  ASSERT_TRUE(store->commit_sync({put("k", "doomed", "old")}));
  ASSERT_TRUE(store->commit_sync({put("k", "x", "1"), erase("k", "doomed"), put("k", "y", "2")}));
  EXPECT_EQ(keys_of(load(*store, "k")), (std::vector<std::string>{"x", "y"}));

  Status failed = store->commit_sync(
      {put("k", "a", "1"), erase("k", "x"), put("k", "poison", "p"), put("k", "z", "3")});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  EXPECT_NE(failed.error().message.find("k/poison"), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("poisoned key"), std::string::npos);
  EXPECT_EQ(keys_of(load(*store, "k")), (std::vector<std::string>{"x", "y"}));
}

TEST_F(SqliteStoreTest, AFailingBatchFailsOnlyItselfWithinAGroup) {
  install_poison_trigger();
  std::unique_ptr<Store> store = open_store();

  // Holding the writer in a callback lets the next three commits queue up as one group.
  std::promise<void> writer_held;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  store->commit({put("k", "gate", "")}, [&](Status) {
    writer_held.set_value();
    released.wait();
  });
  writer_held.get_future().wait();

  std::mutex results_mutex;
  std::vector<std::pair<std::string, bool>> results;
  auto record = [&](std::string name) {
    return [&, name](Status status) {
      std::lock_guard lock(results_mutex);
      results.emplace_back(name, status.has_value());
    };
  };
  store->commit({put("k", "good1", "1")}, record("good1"));
  store->commit({put("k", "bad-neighbour", "1"), put("k", "poison", "1")}, record("poison"));
  store->commit({put("k", "good2", "2")}, record("good2"));
  release.set_value();
  ASSERT_TRUE(store->commit_sync({put("k", "after", "")}));

  std::lock_guard lock(results_mutex);
  EXPECT_EQ(results, (std::vector<std::pair<std::string, bool>>{
                         {"good1", true}, {"poison", false}, {"good2", true}}));
  EXPECT_EQ(keys_of(load(*store, "k")),
            (std::vector<std::string>{"after", "gate", "good1", "good2"}));
}

TEST_F(SqliteStoreTest, ConcurrentCommittersKeepEachCallersOrder) {
  constexpr int kThreads = 8;
  constexpr int kCommitsPerThread = 500;
  constexpr int kTotal = kThreads * kCommitsPerThread;
  std::unique_ptr<Store> store = open_store();

  std::mutex mutex;
  std::condition_variable all_done;
  int done_count = 0;
  int failures = 0;
  int out_of_order = 0;
  std::vector<int> calls(kTotal, 0);
  std::vector<int> next_expected(kThreads, 0);

  std::vector<std::thread> committers;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    committers.emplace_back([&, thread_idx] {
      for (int commit_idx = 0; commit_idx < kCommitsPerThread; ++commit_idx) {
        std::string thread_key = "t" + std::to_string(thread_idx);
        store->commit({put("unique", thread_key + "-" + padded(commit_idx), "v"),
                       put("latest", thread_key, std::to_string(commit_idx))},
                      [&, thread_idx, commit_idx](Status status) {
                        std::lock_guard lock(mutex);
                        ++calls[thread_idx * kCommitsPerThread + commit_idx];
                        if (!status) ++failures;
                        if (next_expected[thread_idx]++ != commit_idx) ++out_of_order;
                        if (++done_count == kTotal) all_done.notify_one();
                      });
      }
    });
  }
  for (std::thread& committer : committers) committer.join();
  {
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return done_count >= kTotal; });
  }
  store->close();

  std::lock_guard lock(mutex);
  EXPECT_EQ(done_count, kTotal);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(out_of_order, 0);
  for (int commit_idx = 0; commit_idx < kTotal; ++commit_idx) {
    ASSERT_EQ(calls[commit_idx], 1) << "commit " << commit_idx;
  }

  std::unique_ptr<Store> reopened = open_store();
  EXPECT_EQ(load(*reopened, "unique").size(), static_cast<std::size_t>(kTotal));
  std::vector<Record> latest = load(*reopened, "latest");
  ASSERT_EQ(latest.size(), static_cast<std::size_t>(kThreads));
  for (const Record& record : latest) {
    EXPECT_EQ(record.value, std::to_string(kCommitsPerThread - 1)) << record.key;
  }
}

TEST_F(SqliteStoreTest, LoadIsSafeAlongsideCommits) {
  std::unique_ptr<Store> store = open_store();
  std::atomic<bool> stop = false;
  std::atomic<int> load_failures = 0;
  std::atomic<int> shrinks = 0;
  std::vector<std::thread> loaders;
  for (int loader_idx = 0; loader_idx < 2; ++loader_idx) {
    loaders.emplace_back([&] {
      std::size_t last_size = 0;
      while (!stop) {
        Result<std::vector<Record>> records = store->load("k");
        if (!records) {
          ++load_failures;
          continue;
        }
        if (records->size() < last_size) ++shrinks;
        last_size = records->size();
      }
    });
  }
  for (int commit_idx = 0; commit_idx < 200; ++commit_idx) {
    ASSERT_TRUE(store->commit_sync({put("k", padded(commit_idx), "v")}));
  }
  stop = true;
  for (std::thread& loader : loaders) loader.join();
  EXPECT_EQ(load_failures, 0);
  EXPECT_EQ(shrinks, 0);
  EXPECT_EQ(load(*store, "k").size(), 200u);
}

TEST_F(SqliteStoreTest, ReopenAfterCloseRestoresEverything) {
  {
    std::unique_ptr<Store> store = open_store();
    for (int record_idx = 0; record_idx < 50; ++record_idx) {
      ASSERT_TRUE(store->commit_sync({put("a", padded(record_idx), std::to_string(record_idx)),
                                      put("b", padded(record_idx), "b")}));
    }
    ASSERT_TRUE(store->commit_sync({erase("b", padded(7)), put("a", padded(3), "changed")}));
    store->close();
  }
  std::unique_ptr<Store> store = open_store();
  std::vector<Record> a = load(*store, "a");
  ASSERT_EQ(a.size(), 50u);
  EXPECT_EQ(a[3].value, "changed");
  EXPECT_EQ(a[49].value, "49");
  std::vector<Record> b = load(*store, "b");
  ASSERT_EQ(b.size(), 49u);
  EXPECT_EQ(b[7].key, padded(8));
}

TEST_F(SqliteStoreTest, FreshDatabaseIsCurrentAndInWalMode) {
  open_store()->close();
  EXPECT_EQ(query_raw(path_, "PRAGMA user_version"), std::to_string(kSqliteSchemaVersion));
  EXPECT_EQ(query_raw(path_, "PRAGMA journal_mode"), "wal");
  // Opening again must find nothing left to migrate.
  open_store()->close();
  EXPECT_EQ(query_raw(path_, "PRAGMA user_version"), std::to_string(kSqliteSchemaVersion));
}

TEST_F(SqliteStoreTest, RefusesASchemaNewerThanItKnows) {
  open_store()->close();
  exec_raw(path_, "PRAGMA user_version=" + std::to_string(kSqliteSchemaVersion + 1));

  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_NE(store.error().message.find("newer than this binary"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(query_raw(path_, "PRAGMA user_version"), std::to_string(kSqliteSchemaVersion + 1));
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  std::FILE* file = std::fopen(path_.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("this is not a database, just some text that is long enough to have a header", file);
  std::fclose(file);
  EXPECT_FALSE(open_sqlite_store(path_));
}

TEST_F(SqliteStoreTest, CommitAfterCloseFails) {
  std::unique_ptr<Store> store = open_store();
  ASSERT_TRUE(store->commit_sync({put("k", "before", "")}));
  store->close();
  store->close();  // a second close is harmless

  int calls = 0;
  Status seen;
  store->commit({put("k", "after", "")}, [&](Status status) {
    ++calls;
    seen = std::move(status);
  });
  EXPECT_EQ(calls, 1);
  ASSERT_FALSE(seen);
  EXPECT_EQ(seen.error().code, ErrorCode::kInternal);
  Status sync = store->commit_sync({put("k", "after", "")});
  ASSERT_FALSE(sync);
  EXPECT_EQ(sync.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(store->load("k"));

  EXPECT_EQ(keys_of(load(*open_store(), "k")), std::vector<std::string>{"before"});
}

// Reads one acknowledgement (a key index) from the pipe; false at end of stream.
bool read_ack(int fd, std::uint32_t& index) {
  std::size_t have = 0;
  auto* bytes = reinterpret_cast<char*>(&index);
  while (have < sizeof index) {
    ssize_t got = read(fd, bytes + have, sizeof index - have);
    if (got == 0) return false;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    have += static_cast<std::size_t>(got);
  }
  return true;
}

// The child's whole life: commit records one at a time and report each acknowledged one.
// Only _exit() leaves it, so it never runs the parent's test harness or exit handlers.
[[noreturn]] void run_crash_child(const std::string& path, int ack_fd) {
  constexpr std::uint32_t kEnough = 1'000'000;  // far more than it lives to write
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path);
  if (!store) _exit(2);
  for (std::uint32_t index = 0; index < kEnough; ++index) {
    Status committed = (*store)->commit_sync({put("crash", padded(static_cast<int>(index)), "v"),
                                              put("crash-last", "last", std::to_string(index))});
    if (!committed) _exit(3);
    if (write(ack_fd, &index, sizeof index) != sizeof index) _exit(4);
  }
  _exit(0);
}

TEST_F(SqliteStoreTest, AcknowledgedCommitsSurviveSigkill) {
  constexpr std::uint32_t kAcksBeforeKill = 300;
  open_store()->close();  // the schema exists before the child starts

  int ack_pipe[2];
  ASSERT_EQ(pipe(ack_pipe), 0);
  // No store (and so no writer thread) is alive here, so the child starts single-threaded
  // with nothing locked.
  pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    close(ack_pipe[0]);
    run_crash_child(path_, ack_pipe[1]);
  }
  close(ack_pipe[1]);

  std::set<std::uint32_t> acked;
  std::uint32_t index = 0;
  while (acked.size() < kAcksBeforeKill && read_ack(ack_pipe[0], index)) acked.insert(index);
  kill(child, SIGKILL);
  // Acks already in the pipe were written before the kill, so they count too.
  while (read_ack(ack_pipe[0], index)) acked.insert(index);
  close(ack_pipe[0]);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status))
      << "child exited early with status " << WEXITSTATUS(wait_status);
  ASSERT_GE(acked.size(), kAcksBeforeKill);

  std::unique_ptr<Store> store = open_store();
  std::set<std::string> present;
  for (const Record& record : load(*store, "crash")) present.insert(record.key);
  for (std::uint32_t acked_index : acked) {
    ASSERT_TRUE(present.contains(padded(static_cast<int>(acked_index))))
        << "acknowledged record " << acked_index << " was lost";
  }
  // At most the one commit in flight at the kill may have landed without an ack.
  EXPECT_LE(present.size(), acked.size() + 1);
  std::vector<Record> last = load(*store, "crash-last");
  ASSERT_EQ(last.size(), 1u);
  EXPECT_GE(std::stoul(last[0].value), *acked.rbegin());
}

// Not a pass/fail check: prints the durable commit rate so regressions are visible in logs.
TEST_F(SqliteStoreTest, ReportsDurableCommitRate) {
  constexpr int kThreads = 32;
  constexpr int kCommitsPerThread = 100;
  std::unique_ptr<Store> store = open_store();
  auto started = std::chrono::steady_clock::now();
  std::atomic<int> failures = 0;
  std::vector<std::thread> committers;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    committers.emplace_back([&, thread_idx] {
      for (int commit_idx = 0; commit_idx < kCommitsPerThread; ++commit_idx) {
        std::string key = std::to_string(thread_idx) + "-" + padded(commit_idx);
        if (!store->commit_sync({put("ecs.task", key, R"({"lastStatus":"RUNNING"})")})) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& committer : committers) committer.join();
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  double per_second = kThreads * kCommitsPerThread / elapsed.count();
  std::printf("[ rate     ] %d callers x %d commit_sync: %.0f durable commits/s\n", kThreads,
              kCommitsPerThread, per_second);
  RecordProperty("commits_per_second", static_cast<int>(per_second));
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace wharf::store
