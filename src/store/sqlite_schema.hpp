// The SQLite store's schema, as the ordered list of migrations that build it.
#pragma once

#include <array>

namespace wharf::store {

// Migration i takes a database from PRAGMA user_version i to i + 1. Append only: never edit or
// reorder a migration that has shipped, because existing databases have already applied it.
inline constexpr std::array<const char*, 1> kSqliteMigrations = {
    "CREATE TABLE records(kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
    "PRIMARY KEY(kind, key)) WITHOUT ROWID",
};

// The newest schema this binary understands; it refuses databases that are newer.
inline constexpr int kSqliteSchemaVersion = static_cast<int>(kSqliteMigrations.size());

}  // namespace wharf::store
