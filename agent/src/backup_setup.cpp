// crawler-ha backup setup: this node's pgBackRest configuration (the
// passphrase in an include file of its own), WAL archiving through
// pgBackRest, stanza-create and check. docs/backup.md, "Setting up".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/child_process.hpp"
#include "crawler/agent/cluster_nodes.hpp"
#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/pgbackrest.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

#include "backup_cli.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace crawler::agent::backup_cli {
namespace {

struct SetupOptions {
  std::string node, pgdata, repo, passphrase_file, config = kDefaultConfig, stanza;
  std::string log_path = "/var/log/pgbackrest", lock_path = "/tmp/pgbackrest", spool_path = "/var/spool/pgbackrest";
  int process_max = 2;
};

}  // namespace

int backup_setup(const std::vector<std::string>& args) {
  SetupOptions o;
  po::options_description d{"crawler-ha backup setup"};
  d.add_options()("help,h", "show this help")
      ("node", po::value(&o.node), "libpq connection string of this node's PostgreSQL, as a superuser (ALTER SYSTEM)")
      ("pgdata", po::value(&o.pgdata), "this node's data directory (checked against the server's)")
      ("repo", po::value(&o.repo), "the repository directory (repo1-path)")
      ("passphrase-file", po::value(&o.passphrase_file),
       "file holding the repository's passphrase, mode 600 (e.g. openssl rand -base64 48)")
      ("config", po::value(&o.config)->default_value(o.config), "the pgBackRest configuration file to write")
      ("stanza", po::value(&o.stanza), "the stanza (default: the node's name in ha_node)")
      ("log-path", po::value(&o.log_path)->default_value(o.log_path), "pgBackRest's log directory")
      ("lock-path", po::value(&o.lock_path)->default_value(o.lock_path), "pgBackRest's lock directory")
      ("spool-path", po::value(&o.spool_path)->default_value(o.spool_path),
       "pgBackRest's spool directory (a restore's WAL queue)")
      ("process-max", po::value(&o.process_max)->default_value(o.process_max),
       "processes pgBackRest compresses and copies with (1 to 32)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return bad_options("setup", e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha backup setup --node CONNINFO --pgdata DIR --repo DIR --passphrase-file FILE "
                 "[--config FILE] [--stanza NAME]\n\n"
              << d
              << "\nRun on the data node as the PostgreSQL OS user. Exit status: 0 done, 1 refused or failed,\n"
                 "2 bad options, 3 PostgreSQL must be restarted first (archive_mode was off); run it again then.\n";
    return 0;
  }
  for (auto [name, value] : {std::pair{"--node", &o.node}, {"--pgdata", &o.pgdata}, {"--repo", &o.repo},
                             {"--passphrase-file", &o.passphrase_file}})
    if (value->empty()) return bad_options("setup", std::string(name) + " is required");
  for (auto [name, value] : {std::pair{"--pgdata", &o.pgdata}, {"--repo", &o.repo}, {"--config", &o.config},
                             {"--log-path", &o.log_path}, {"--lock-path", &o.lock_path},
                             {"--spool-path", &o.spool_path}})
    if (!safe_path(*value))
      return bad_options("setup", std::string(name) +
                                      " must be an absolute path of letters, digits and / _ . - + , @ = : only "
                                      "(it goes into archive_command, which the shell reads)");
  if (!o.stanza.empty() && !safe_stanza(o.stanza))
    return bad_options("setup", "--stanza must be 1 to 63 letters, digits, \"_\", \".\" or \"-\"");
  if (o.process_max < 1 || o.process_max > 32) return bad_options("setup", "--process-max must be between 1 and 32");
  std::string error;
  auto server = one_server(o.node, &error);
  if (!server) return bad_options("setup", error);
  set_log_level("error");

  auto passphrase = read_passphrase_file(o.passphrase_file, &error);
  if (!passphrase) return fail("setup", error);
  const std::string exe = pgbackrest_exe(&error);
  if (exe.empty()) return fail("setup", error);

  NodeDb db(*server, "--node", "backup setup", "", kConnectTimeoutS);
  if (!db.try_connect()) return fail("setup", "cannot use the node's database: " + db.last_error());
  DbResult su = db.call("SELECT pg_catalog.current_setting('is_superuser') = 'on' AS su, session_user AS who");
  if (!su.ok) return fail("setup", su.sqlstate + " " + su.error);
  if (su.at(0, "su").value_or("f") != "t")
    return fail("setup", "the role " + su.at(0, "who").value_or("?") +
                             " is not a superuser: setup sets archive_mode and archive_command with ALTER SYSTEM, "
                             "and pgBackRest connects as the same role; connect as the PostgreSQL superuser "
                             "(e.g. --node 'host=/var/run/postgresql dbname=crawl user=postgres')");
  DbResult f = db.call(db.with_schema(
      "SELECT n.node_name, pg_catalog.current_setting('data_directory') AS data_directory,"
      " pg_catalog.current_setting('port') AS port,"
      " pg_catalog.current_setting('unix_socket_directories') AS sockets,"
      " pg_catalog.current_setting('archive_mode') AS archive_mode,"
      // reset_val: the value set, where current_setting() shows "(disabled)" while archive_mode is off
      " (SELECT ps.reset_val FROM pg_catalog.pg_settings ps WHERE ps.name = 'archive_command') AS archive_command,"
      " pg_catalog.current_setting('archive_library') AS archive_library,"
      // what the files say now (a change waiting for the restart is marked
      // "setting could not be applied" there, and is still the value to come)
      " (SELECT fs.setting FROM pg_catalog.pg_file_settings fs WHERE fs.name = 'archive_mode'"
      "   ORDER BY fs.seqno DESC LIMIT 1) AS archive_mode_in_files,"
      " session_user AS pg_user, pg_catalog.current_database() AS pg_database"
      " FROM @extschema@.ha_node n"));
  if (!f.ok || f.rows.size() != 1) return fail("setup", "cannot read the node's settings: " + f.sqlstate + " " + f.error);
  auto col = [&](const char* c) { return f.at(0, c).value_or(""); };
  const std::string node_name = col("node_name");
  if (o.stanza.empty()) o.stanza = node_name;
  if (!safe_stanza(o.stanza)) return fail("setup", "the node's name " + node_name + " cannot be a stanza: give --stanza");

  // The server --node reaches must be the one whose files this machine
  // holds: pgBackRest copies pg1-path, and the archive_command set below
  // is that server's.
  std::error_code ec1, ec2;
  fs::path mine = fs::canonical(o.pgdata, ec1), theirs = fs::canonical(col("data_directory"), ec2);
  if (ec1) return fail("setup", "--pgdata " + o.pgdata + ": " + ec1.message());
  if (ec2 || mine != theirs)
    return fail("setup", "--pgdata " + o.pgdata + " is not the data directory of the server --node reaches (" +
                             col("data_directory") + ")");
  struct stat st;
  if (::stat(mine.c_str(), &st) != 0 || st.st_uid != ::geteuid())
    return fail("setup", "run it as the PostgreSQL OS user, the owner of " + o.pgdata +
                             ": pgBackRest reads the data directory and archive_command runs as that user");
  std::string socket_dir = col("sockets");
  socket_dir = socket_dir.substr(0, socket_dir.find(','));
  while (!socket_dir.empty() && socket_dir.front() == ' ') socket_dir.erase(0, 1);
  while (!socket_dir.empty() && socket_dir.back() == ' ') socket_dir.pop_back();
  if (!safe_path(socket_dir))
    return fail("setup", "pgBackRest connects over a Unix socket, and unix_socket_directories (" + col("sockets") +
                             ") names no usable directory");
  for (const char* c : {"port", "pg_user", "pg_database"})
    if (!config_value_ok(col(c))) return fail("setup", std::string("the server's ") + c + " cannot go into a configuration file");
  if (!col("archive_library").empty())
    return fail("setup", "archive_library is set (" + col("archive_library") +
                             "): another archiver is in use; reset it first (ALTER SYSTEM RESET archive_library)");

  PgBackRestSettings s;
  s.stanza = o.stanza;
  s.repo_path = o.repo;
  s.pg_path = mine.string();
  s.pg_port = col("port");
  s.pg_socket_dir = socket_dir;
  s.pg_user = col("pg_user");
  s.pg_database = col("pg_database");
  s.log_path = o.log_path;
  s.lock_path = o.lock_path;
  s.spool_path = o.spool_path;
  s.process_max = o.process_max;
  const std::string include_dir = include_dir_for(o.config);
  const std::string pass_file = passphrase_file_in(include_dir);
  const std::string config_text = render_config(s, pass_file);
  const std::string include_text = render_passphrase_include(*passphrase);
  const std::string want_archive = archive_command(exe, o.config, include_dir, o.stanza);

  std::cout << "backup setup of node " << node_name << " (stanza " << o.stanza << ", repository " << o.repo << "):\n";
  bool changed = false;
  try {
    make_dir(fs::path(o.config).parent_path().string(), 0750);
    make_dir(include_dir, 0700);
    // pgBackRest makes its lock directory but not these: without the log
    // directory it runs without its log file, saying so on every run.
    make_dir(o.log_path, 0750);
    make_dir(o.spool_path, 0750);
    auto old_config = read_existing(o.config);
    if (old_config && old_config->rfind(kWrittenByMarker, 0) != 0)
      return fail("setup", o.config + " exists and was not written by crawler-ha backup setup: move it away, or "
                                       "give --config another file");
    if (old_config == config_text) {
      std::cout << "  configuration " << o.config << ": unchanged\n";
    } else {
      write_atomically(o.config, config_text, 0640);
      std::cout << "  configuration " << o.config << ": written\n";
      changed = true;
    }
    auto old_include = read_existing(pass_file);
    if (old_include && old_include != include_text)
      // A repository is encrypted with the passphrase it was created with:
      // another one would make every backup in it unreadable.
      return fail("setup", pass_file + " holds another passphrase: the repository's files are encrypted with it. "
                                       "pgBackRest cannot change a repository's passphrase; remove that file "
                                       "yourself only if the repository " + o.repo + " is new");
    if (old_include) {
      std::cout << "  passphrase " << pass_file << " (mode 600): unchanged\n";
    } else {
      write_atomically(pass_file, include_text, 0600);
      std::cout << "  passphrase " << pass_file << " (mode 600): written\n";
      changed = true;
    }
  } catch (const std::runtime_error& e) {
    return fail("setup", e.what());
  }

  const std::string current_archive = col("archive_command");
  if (current_archive == want_archive) {
    std::cout << "  archive_command: unchanged\n";
  } else {
    // Ours from an earlier setup (another path or stanza) is replaced;
    // anyone else's archiver is not taken over silently.
    bool earlier_ours = current_archive.find("pgbackrest ") != std::string::npos &&
                        current_archive.find(" archive-push %p") != std::string::npos;
    if (!current_archive.empty() && !earlier_ours)
      return fail("setup", "archive_command is already set (" + current_archive +
                               "): another archiver? reset it first (ALTER SYSTEM RESET archive_command) for "
                               "pgBackRest to take over");
    DbResult r = db.call(db.with_schema("SELECT @extschema@.ha_alter_system('archive_command', $1)"), {want_archive});
    if (!r.ok) return fail("setup", "ALTER SYSTEM SET archive_command failed: " + r.sqlstate + " " + r.error);
    std::cout << "  archive_command: set to " << want_archive << " (reloaded)\n";
    changed = true;
  }

  const std::string mode = col("archive_mode");
  if (mode != "on" && mode != "always") {
    if (col("archive_mode_in_files") != "on" && col("archive_mode_in_files") != "always") {
      DbResult r = db.call(db.with_schema("SELECT @extschema@.ha_alter_system('archive_mode', 'on')"));
      if (!r.ok) return fail("setup", "ALTER SYSTEM SET archive_mode failed: " + r.sqlstate + " " + r.error);
      std::cout << "  archive_mode: was " << mode << ", set to on: takes effect at the next restart\n";
    } else {
      std::cout << "  archive_mode: on since ALTER SYSTEM, waiting for the restart\n";
    }
    std::cerr << "crawler-ha backup setup: restart PostgreSQL on " << node_name
              << " now (archive_mode changes only at a restart: systemctl restart postgresql@15-main, or pg_ctl "
                 "restart -D "
              << o.pgdata
              << "), then run this command again to create the stanza and check it. On the primary, restart "
                 "within the promotion delay, or switch over first (docs/backup.md).\n";
    return kNotNow;
  }
  std::cout << "  archive_mode: " << mode << "\n";

  PgBackRest br(exe, o.config, include_dir, o.stanza, pgbackrest_environment());
  ChildResult info = br.run("info", {"--output=json"});
  if (!info.ok()) return fail("setup", "pgbackrest info failed: " + said(info));
  int code;
  try {
    code = parse_info(info.out, o.stanza).status_code;
  } catch (const std::runtime_error& e) {
    return fail("setup", e.what());
  }
  // 0: ok, 2: no backups yet; either way the stanza's repository exists.
  if (code == 0 || code == 2) {
    std::cout << "  stanza-create: the stanza exists in the repository\n";
  } else {
    ChildResult created = br.run("stanza-create");
    if (!created.ok()) return fail("setup", "pgbackrest stanza-create failed: " + said(created));
    std::cout << "  stanza-create: created the stanza " << o.stanza << " in " << o.repo << "\n";
    changed = true;
  }
  ChildResult checked = br.run("check");
  if (!checked.ok()) return fail("setup", "pgbackrest check failed: " + said(checked));
  std::cout << "  check: WAL archiving reaches the repository\n"
            << (changed ? "backup setup: done\n" : "backup setup: nothing changed; the stanza is checked\n");
  return 0;
}

}  // namespace crawler::agent::backup_cli
