// `crawler-ha backup`: database backups with pgBackRest, and the blobs
// their rows reference (docs/backup.md).
#pragma once
#include <string>
#include <vector>

namespace crawler::agent {

// `crawler-ha backup setup|run|list ...`:
//  - setup --node CONNINFO --pgdata DIR --repo DIR --passphrase-file FILE
//    [--config FILE] [--stanza NAME] [--log-path DIR] [--lock-path DIR] [--spool-path DIR]
//    [--process-max N]: writes this node's pgBackRest configuration (the
//    passphrase only into a mode-600 include file), sets archive_command and
//    archive_mode (ALTER SYSTEM, so CONNINFO must be a superuser's), then
//    stanza-create and check. Run on the data node as the PostgreSQL OS
//    user. Idempotent. Exit 0 done, 1 refused or failed, 2 bad options, 3
//    PostgreSQL must be restarted first (archive_mode was off): run it
//    again after the restart.
//  - run --node CONNINFO [--type full|diff|incr] [--config FILE] [--stanza
//    NAME] [--store DIR] [--blob-repo DIR]: backs up this node when
//    ha_backup_begin() lets it (the writable primary), verifies the
//    repository, records the backup and its consistency figures
//    (ha_backup_freeze(), ha_backup_record()) with the list of blobs its
//    rows reference in the same snapshot (ha_backup_blob_manifest(),
//    ha_backup_record_blobs()), copies the blobs the repository lacks from
//    the store DIR (encrypted, content-addressed, read back), writes the
//    manifest, removes the blob objects no kept backup needs, and checks
//    that the WAL up to its restore point is archived. Exit 0 done and
//    verified, 1 failed (recorded as a backup event when the backup was
//    allowed; a blob missing or damaged in the store fails it, after the
//    rest is copied), 2 bad options, 3 refused: this node may not back up
//    now (a standby, a fenced node).
//  - expire-blobs [--config FILE] [--blob-repo DIR]: retention of the blob
//    objects and manifests alone, as run does it. Exit 0, 1 failed, 2.
//  - verify-blobs [--config FILE] [--blob-repo DIR] [--stanza NAME --label
//    LABEL]: decrypts and hashes every object (or one manifest's), reports
//    missing and corrupt ones. Exit 0 all good, 1 a problem, 2 bad options.
//  - list [--db CONNINFO ...] [--json]: every node's ha_backups(). Exit 0
//    when a node answered, 1 when none did, 2 bad options.
//  - test-restore --node CONNINFO [--label LABEL] [--scratch-dir DIR]
//    [--sample N]: restores one of this node's recorded backups (default the
//    newest) to its restore point in a scratch cluster, compares the three
//    consistency figures with those recorded, checks the blob list against
//    the recorded count and bytes, reads a sample of its blobs back from the
//    repository and hashes them, throws the cluster away, and records the
//    outcome (ha_backup_restore_tested()). Exit 0 passed, 1 failed, 2.
// Never prints the passphrase, never passes it on a command line.
int run_backup_command(const std::vector<std::string>& args);

// crawler-ha restore (command_restore.cpp): --target DIR (--store DIR |
// --no-blobs) [--latest | --time T | --set LABEL] [--stanza NAME]: the
// database through pgBackRest from the stanza chosen by choose_restore()
// (restore_plan.hpp), started apart (scratch_server.hpp) until its recovery
// ends, the blobs its rows reference restored from the repository and
// verified, then ha_restored() and a clean stop. Exit 0 restored with every
// blob, 1 failed or blobs missing (named), 2 bad options.
int run_restore_command(const std::vector<std::string>& args);

}  // namespace crawler::agent
