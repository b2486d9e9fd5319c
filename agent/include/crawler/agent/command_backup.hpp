// `crawler-ha backup`: database backups with pgBackRest (docs/backup.md).
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
//    NAME]: backs up this node when ha_backup_begin() lets it (the writable
//    primary), verifies the repository, records the backup and its
//    consistency figures (ha_backup_freeze(), ha_backup_record()), and checks
//    that the WAL up to its restore point is archived. Exit 0 done and
//    verified, 1 failed (recorded as a backup event when the backup was
//    allowed), 2 bad options, 3 refused: this node may not back up now (a
//    standby, a fenced node).
//  - list [--db CONNINFO ...] [--json]: every node's ha_backups(). Exit 0
//    when a node answered, 1 when none did, 2 bad options.
// Never prints the passphrase, never passes it on a command line.
int run_backup_command(const std::vector<std::string>& args);

}  // namespace crawler::agent
