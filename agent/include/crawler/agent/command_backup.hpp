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
// Never prints the passphrase, never passes it on a command line.
int run_backup_command(const std::vector<std::string>& args);

}  // namespace crawler::agent
