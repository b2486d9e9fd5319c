// pgBackRest as `crawler-ha backup` drives it: its command lines, the
// configuration it is given, and what its info and verify commands answer.
// Pure except PgBackRest::run (which runs it) and read_passphrase_file
// (which reads a file); unit-tested in agent/tests/pgbackrest_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crawler/agent/child_process.hpp"

namespace crawler::agent {

// Whether `path` may go into a pgBackRest configuration and, unquoted, into
// archive_command (which PostgreSQL runs through the shell, with % as its
// escape): absolute, at most 1024 bytes, only letters, digits and / _ . - + , @ = :
// and no "/../" step. Everything else (spaces, quotes, %, $, newlines) is
// refused rather than quoted.
bool safe_path(const std::string& path);
// Whether `name` is a stanza name crawler_ha accepts (the node-name rule:
// 1 to 63 letters, digits, "_", "." or "-").
bool safe_stanza(const std::string& name);

// The include directory beside a configuration file: <its directory>/conf.d
// (for /etc/pgbackrest/pgbackrest.conf, pgBackRest's own default).
std::string include_dir_for(const std::string& config_file);
// The file in it that holds the repository's passphrase.
std::string passphrase_file_in(const std::string& include_dir);

// The passphrase of `path`: a private file (mode 600 or stricter, a regular
// file), one line, surrounding white space removed, 20 to 1024 printable
// ASCII characters. Nothing, with *error saying why, otherwise (never
// quoting the content).
std::optional<std::string> read_passphrase_file(const std::string& path, std::string* error);

// What one node's configuration says.
struct PgBackRestSettings {
  std::string stanza;
  std::string repo_path;      // repo1-path
  std::string pg_path;        // pg1-path: the data directory
  std::string pg_port;        // pg1-port
  std::string pg_socket_dir;  // pg1-socket-path
  std::string pg_user;        // pg1-user: a superuser, as pgBackRest connects
  std::string pg_database;    // pg1-database
  std::string log_path, lock_path;
  std::string spool_path;     // where restore's archive-get keeps its queue
  int process_max = 2;
};
// The first line of every configuration file this program writes: a file
// without it is someone else's, and is never overwritten.
extern const char* const kWrittenByMarker;
// The configuration file's text: [global] with the repository (zstd,
// aes-256-cbc, two full backups kept, fast checkpoints) and logging, and
// the stanza's section. No secret is in it.
std::string render_config(const PgBackRestSettings& s, const std::string& passphrase_file);
// The include file's text: repo1-cipher-pass in [global].
std::string render_passphrase_include(const std::string& passphrase);
// archive_command for the stanza: pgBackRest's archive-push, every path
// named on its command line (all of them safe_path()s).
std::string archive_command(const std::string& exe, const std::string& config, const std::string& include_dir,
                            const std::string& stanza);

// One backup as `pgbackrest info --output=json` lists it.
struct BackupInfo {
  std::string label, type;   // type: full, diff or incr
  std::string prior;         // "" for a full backup
  std::int64_t start_time = 0, stop_time = 0;  // Unix seconds
  std::string start_lsn, stop_lsn, wal_start, wal_stop;
  std::int64_t size = 0, delta = 0, repo_size = 0, repo_delta = 0;
  bool error = false;        // pgBackRest found page checksum errors while copying
  std::string node;          // annotation crawler_ha_node ("" when not made by crawler-ha)
  std::int64_t term = -1;    // annotation crawler_ha_term (-1 when none)
};
// A stanza as info lists it.
struct StanzaInfo {
  int status_code = -1;      // 0 ok, 1 missing stanza path, 2 no valid backups, ...
  std::string status_message;
  std::string system_id;     // the current database's system identifier ("" when none)
  std::vector<BackupInfo> backups;  // oldest first
};
// Parses info's JSON for `stanza`. Throws std::runtime_error saying what is
// missing or malformed (an answer of another version, or no such stanza).
StanzaInfo parse_info(const std::string& json, const std::string& stanza);
// The names of the stanzas info's JSON lists (info run without --stanza
// lists every stanza of the repository). Throws std::runtime_error when the
// text is not info's JSON.
std::vector<std::string> stanza_names(const std::string& json);

// `pgbackrest verify --output=text --verbose`: ok when its status line for the
// stanza says "ok". detail is the text itself (pgBackRest 2.45 exits 0 even
// when it finds a damaged file: only the text tells).
struct VerifyResult {
  bool ok = false;
  std::string detail;
};
VerifyResult parse_verify(const std::string& text);

// One node's pgBackRest: every run names the configuration file, its
// include directory and the stanza on the command line, so no default
// configuration (Debian's /etc/pgbackrest.conf) is read, and runs with the
// environment given (no PGBACKREST_* variable of the caller's).
class PgBackRest {
 public:
  PgBackRest(std::string exe, std::string config, std::string include_dir, std::string stanza,
             std::vector<std::string> env);
  // `pgbackrest --config=... --config-include-path=... --stanza=... options... command`
  // (no --stanza when the stanza is "": info then lists every stanza).
  ChildResult run(const std::string& command, const std::vector<std::string>& options = {}) const;
  const std::string& exe() const { return exe_; }

 private:
  std::string exe_, config_, include_dir_, stanza_;
  std::vector<std::string> env_;
};

// The environment pgBackRest runs with: PATH, and HOME, LANG and TZ when
// this process has them (libpq's ~/.pgpass, messages, log times); nothing
// else of the caller's.
std::vector<std::string> pgbackrest_environment();

}  // namespace crawler::agent
