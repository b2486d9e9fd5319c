// The steps `crawler-ha restore` (command_restore.cpp) and `crawler-ha
// backup test-restore` (backup_restore_test.cpp) share: pgBackRest's
// restore into a directory, a private socket directory for the restored
// cluster, and the blobs its rows reference.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/child_process.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/pgbackrest.hpp"

namespace crawler::agent::backup_cli {

// `pgbackrest restore` of the backup `set` into `data_dir` (made by
// pgBackRest, which refuses a directory that is not empty), with WAL
// archiving off in the restored cluster and the recovery target options
// given (--type=..., --target=..., --target-action=...).
ChildResult pgbackrest_restore(const PgBackRest& br, const std::string& data_dir, const std::string& set,
                               const std::vector<std::string>& target_options);

// A new private directory (mode 0700) for a restored cluster's socket,
// /tmp/crawler-ha-restore.XXXXXX; "" with *error. The caller removes it
// (RemovedAtExit).
std::string make_socket_dir(std::string* error);

// Removes `dir` and everything in it when it goes out of scope, whatever
// the way out: a scratch cluster or a socket directory never outlives the
// command that made it.
struct RemovedAtExit {
  std::string dir;
  explicit RemovedAtExit(std::string d) : dir(std::move(d)) {}
  ~RemovedAtExit();
  RemovedAtExit(const RemovedAtExit&) = delete;
  RemovedAtExit& operator=(const RemovedAtExit&) = delete;
};

// The blobs the images rows of the database `db` is connected to reference
// (ha_backup_blob_manifest() in a REPEATABLE READ transaction of its own),
// each checked by blob_ref_ok(); nullopt with *error.
std::optional<std::vector<BlobRef>> referenced_blobs(NodeDb& db, std::string* error);

// Whether `name` is a database name this program puts in a connection
// string: 1 to 63 letters, digits, "_", "." or "-".
bool safe_dbname(const std::string& name);

}  // namespace crawler::agent::backup_cli
