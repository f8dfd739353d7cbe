// The durable store: a transactional key-value map of records grouped by kind.
// The server holds its state in memory and uses the store only to make changes durable and to
// load everything back at start-up. Several implementations sit behind this interface (SQLite
// now, etcd later).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace wharf::store {

struct Record {
  std::string kind;   // e.g. "ecs.cluster"
  std::string key;    // unique within the kind, e.g. "us-east-1/prod"
  std::string value;  // opaque bytes (JSON in practice)
};

// One change; value nullopt deletes the key.
struct Mutation {
  std::string kind;
  std::string key;
  std::optional<std::string> value;
};

using CommitCallback = std::function<void(Status)>;

class Store {
 public:
  virtual ~Store() = default;

  // Every record of a kind, in key order. Used at start-up.
  virtual Result<std::vector<Record>> load(const std::string& kind) = 0;
  // Applies the mutations atomically. `done` is called once, on a store thread, after the
  // change is durable (fsync'd) or has failed. Commits are applied in call order; concurrent
  // callers are grouped into one transaction and one sync. `done` must not block for long (it
  // holds up every later commit): post the result back to the caller's own executor. After
  // close(), `done` is called at once, on the calling thread, with ErrorCode::kInternal.
  virtual void commit(std::vector<Mutation> mutations, CommitCallback done) = 0;
  // commit() and wait for durability. Never call it from a commit callback: it would wait on
  // the very thread that has to finish it.
  Status commit_sync(std::vector<Mutation> mutations);
  // Finishes outstanding commits; later commit() and load() calls fail. Safe to call more than
  // once; must not be called from a commit callback.
  virtual void close() = 0;
};

// Commits `mutations`, then calls `reply` with `output`, or with the commit's error: an API's
// acknowledgement never precedes durability. With nothing to commit, replies at once.
template <typename Output, typename Reply>
void commit_then_reply(Store& store, std::vector<Mutation> mutations, Output output, Reply reply) {
  if (mutations.empty()) return reply(std::move(output));
  store.commit(std::move(mutations),
               [reply = std::move(reply), output = std::move(output)](Status status) mutable {
                 if (!status) return reply(std::unexpected(status.error()));
                 reply(std::move(output));
               });
}

// Opens (creating if needed) a SQLite database in WAL mode at `path`, applying schema migrations.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace wharf::store
