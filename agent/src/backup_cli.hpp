// The parts of crawler-ha backup's subcommands they share (command_backup.cpp:
// list, expire-blobs, verify-blobs and the dispatch; backup_setup.cpp;
// backup_run.cpp): exit statuses, messages, pgBackRest's program and
// configuration files, the blobs' repository settings and retention.
#pragma once
#include <sys/types.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/child_process.hpp"

namespace crawler::agent::backup_cli {


// Exit statuses beyond 0, 1 and 2: "not now", which a script on both nodes
// tells apart from a failure (setup: restart first; run: not the primary).
constexpr int kNotNow = 3;
constexpr const char* kDefaultConfig = "/etc/pgbackrest/pgbackrest.conf";
constexpr int kConnectTimeoutS = 10;

// Prints "crawler-ha backup SUB: WHY" and the hint to --help; returns 2.
int bad_options(const std::string& sub, const std::string& why);
// Prints "crawler-ha backup SUB: WHY"; returns 1.
int fail(const std::string& sub, const std::string& why);
// What a pgBackRest run said, on one line at most `max` bytes: its error
// output, else its normal output, else how it ended.
std::string said(const ChildResult& r, std::size_t max = 2000);
// A size for people (byte_size_text()).
std::string bytes_text(std::int64_t n);
// The one server `conninfo` names: a multi-host string would let libpq pick
// one, and a backup must be of the server beside this pgBackRest. nullopt
// with *error otherwise.
std::optional<std::string> one_server(const std::string& conninfo, std::string* error);
// The pgbackrest program found on PATH; "" with *error when there is none.
std::string pgbackrest_exe(std::string* error);
// The whole text of a file, or nothing when it does not exist; throws
// std::runtime_error when it exists and cannot be read.
std::optional<std::string> read_existing(const std::string& path);
// Writes `text` to `path` with `mode` (whatever the umask) through a
// temporary file in the same directory renamed over it, so that pgBackRest
// reads the old file or the new one, never half of one. Throws
// std::runtime_error.
void write_atomically(const std::string& path, const std::string& text, mode_t mode);
// Creates `dir` (and its parents) with `mode`; throws std::runtime_error.
void make_dir(const std::string& dir, mode_t mode);
// A value that goes into the configuration file after "key=": one line of
// printable characters.
bool config_value_ok(const std::string& v);

// What the blob commands take from pgBackRest's configuration (as setup
// wrote it, with its include directory): the repository and its passphrase.
struct BlobSettings {
  std::string repo;        // the directory the blobs go under
  std::string passphrase;  // the repository's (repo1-cipher-pass)
};

// Reads [global] of the configuration file and then of every *.conf of its
// include directory in name order (a later file wins), for repo1-path,
// repo1-type and repo1-cipher-pass; `blob_repo`, when given, instead of
// repo1-path. nullopt with *error when the settings are missing or unsafe.
std::optional<BlobSettings> blob_settings(const std::string& config, const std::string& blob_repo,
                                          std::string* error);
// The labels each stanza of the repository still holds, by pgBackRest's
// info of every stanza; a stanza whose info is not readable is left out,
// so that its manifests are all kept. nullopt with *error when info fails.
std::optional<std::map<std::string, std::set<std::string>>> kept_labels(const std::string& exe,
                                                                        const std::string& config,
                                                                        std::string* error);
// One line saying what a blob retention removed and kept.
std::string expiry_text(const ExpiryReport& e);

// crawler-ha backup setup ARGS (backup_setup.cpp): the exit status.
int backup_setup(const std::vector<std::string>& args);
// crawler-ha backup run ARGS (backup_run.cpp): the exit status.
int backup_run(const std::vector<std::string>& args);
// crawler-ha backup schedule ARGS (backup_schedule_command.cpp): the exit status.
int backup_schedule(const std::vector<std::string>& args);
// crawler-ha backup test-restore ARGS (backup_restore_test.cpp): the exit status.
int backup_test_restore(const std::vector<std::string>& args);

}  // namespace crawler::agent::backup_cli
