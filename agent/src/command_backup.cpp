// crawler-ha backup: database backups with pgBackRest, the tool operators
// already trust, driven from the node it runs on. The extension decides who
// may back up (ha_backup_begin(): the writable primary only, so the standby
// never competes), fixes the moment the backup's consistency figures
// describe (ha_backup_freeze()) and keeps the catalog (ha_backup_record(),
// ha_backups()); pgBackRest copies, compresses, encrypts, verifies and
// expires. This file only sequences them, and copies the blobs the
// backup's rows reference into the repository beside it (blob_backup.hpp:
// pgBackRest never sees the blob store). docs/backup.md.
#include "crawler/agent/byte_size_text.hpp"
#include "crawler/agent/command_backup.hpp"

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

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace crawler::agent {
namespace {

// Exit statuses beyond 0, 1 and 2: "not now", which a script on both nodes
// tells apart from a failure (setup: restart first; run: not the primary).
constexpr int kNotNow = 3;
constexpr const char* kDefaultConfig = "/etc/pgbackrest/pgbackrest.conf";
constexpr int kConnectTimeoutS = 10;

int bad_options(const std::string& sub, const std::string& why) {
  std::cerr << "crawler-ha backup" << (sub.empty() ? "" : " " + sub) << ": " << why
            << " (crawler-ha backup " << (sub.empty() ? "" : sub + " ") << "--help)\n";
  return 2;
}

int fail(const std::string& sub, const std::string& why) {
  std::cerr << "crawler-ha backup " << sub << ": " << why << "\n";
  return 1;
}

// What a pgBackRest run said, on one line at most `max` bytes: its error
// output, else its normal output, else how it ended.
std::string said(const ChildResult& r, std::size_t max = 2000) {
  std::string text = r.err.find_first_not_of(" \n") != std::string::npos ? r.err : r.out;
  text = one_line(text, max);
  auto b = text.find_first_not_of(' ');
  if (b == std::string::npos) return r.how();
  return text.substr(b, text.find_last_not_of(' ') - b + 1) + " (" + r.how() + ")";
}

std::string bytes_text(std::int64_t n) { return byte_size_text(static_cast<double>(n)); }

// The one server `conninfo` names: a multi-host string would let libpq pick
// one, and a backup must be of the server beside this pgBackRest.
std::optional<std::string> one_server(const std::string& conninfo, std::string* error) {
  try {
    auto nodes = split_nodes({conninfo});
    if (nodes.size() != 1) {
      *error = "--node must name one server, not " + std::to_string(nodes.size());
      return std::nullopt;
    }
    return nodes[0].conninfo;
  } catch (const std::invalid_argument& e) {
    *error = std::string("--node: ") + e.what();
    return std::nullopt;
  }
}

std::string pgbackrest_exe(std::string* error) {
  const char* path = std::getenv("PATH");
  auto exe = find_in_path("pgbackrest", path ? path : "/usr/bin:/bin");
  if (!exe) {
    *error = "pgbackrest is not installed or not in PATH (Debian: apt-get install pgbackrest)";
    return "";
  }
  return *exe;
}

// ---------------------------------------------------------------------------
// setup

// The whole text of a file, or nothing when it does not exist; throws
// std::runtime_error when it exists and cannot be read.
std::optional<std::string> read_existing(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw std::runtime_error(path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(path + " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + " cannot be read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to `path` with `mode` (whatever the umask) through a
// temporary file in the same directory renamed over it, so that pgBackRest
// (archive-push runs at any moment) reads the old file or the new one,
// never half of one, and a passphrase never sits in a file open to others.
void write_atomically(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp-crawler-ha";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(e));
  }
}

void make_dir(const std::string& dir, mode_t mode) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(dir + " is not a directory");
    return;
  }
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create the directory " + dir + ": " + std::strerror(errno) +
                             " (create it as root, owned by the PostgreSQL OS user, e.g. install -d -o postgres "
                             "-g postgres -m 750 " + dir + ")");
}

// A value that goes into the configuration file after "key=": one line of
// printable characters.
bool config_value_ok(const std::string& v) {
  if (v.empty() || v.size() > 1024) return false;
  for (char c : v)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

struct SetupOptions {
  std::string node, pgdata, repo, passphrase_file, config = kDefaultConfig, stanza;
  std::string log_path = "/var/log/pgbackrest", lock_path = "/tmp/pgbackrest", spool_path = "/var/spool/pgbackrest";
  int process_max = 2;
};

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

// ---------------------------------------------------------------------------
// the blobs' repository settings, shared by run, expire-blobs and verify-blobs

// What the blob commands take from pgBackRest's configuration (as setup
// wrote it, with its include directory): the repository and its passphrase.
struct BlobSettings {
  std::string repo;        // the directory the blobs go under
  std::string passphrase;  // the repository's (repo1-cipher-pass)
};

// Reads [global] of the configuration file and then of every *.conf of its
// include directory in name order (pgBackRest's own order: a later file
// wins), for repo1-path, repo1-type and repo1-cipher-pass. `blob_repo`,
// when given, is where the blobs go instead of repo1-path: needed when the
// repository is an object store, which this program does not speak.
std::optional<BlobSettings> blob_settings(const std::string& config, const std::string& blob_repo,
                                          std::string* error) {
  std::vector<std::string> files{config};
  const std::string inc = include_dir_for(config);
  std::error_code ec;
  std::vector<std::string> more;
  for (const auto& e : fs::directory_iterator(inc, ec))
    if (e.path().extension() == ".conf") more.push_back(e.path().string());
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  std::map<std::string, std::string> global;
  for (const auto& f : files) {
    std::optional<std::string> text;
    try {
      text = read_existing(f);
    } catch (const std::runtime_error& e) {
      *error = e.what();
      return std::nullopt;
    }
    if (!text) {
      if (f == config) {
        *error = "the configuration " + config + " does not exist (run crawler-ha backup setup first)";
        return std::nullopt;
      }
      continue;
    }
    std::istringstream in(*text);
    std::string line, section;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '[') {
        section = line.substr(1, line.find(']') == std::string::npos ? std::string::npos : line.find(']') - 1);
        continue;
      }
      auto eq = line.find('=');
      if (section == "global" && eq != std::string::npos) global[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  BlobSettings s;
  s.passphrase = global["repo1-cipher-pass"];
  if (s.passphrase.empty()) {
    *error = "no repository passphrase (repo1-cipher-pass) in " + inc + ": run crawler-ha backup setup first";
    return std::nullopt;
  }
  const std::string type = global.count("repo1-type") ? global["repo1-type"] : "posix";
  if (!blob_repo.empty()) {
    s.repo = blob_repo;
  } else if (type != "posix") {
    *error = "the repository is of type " + type +
             ": the blobs need a directory, give --blob-repo DIR (e.g. a mounted file system; docs/backup.md)";
    return std::nullopt;
  } else {
    s.repo = global["repo1-path"];
  }
  if (!safe_path(s.repo)) {
    *error = "the blobs' repository " + s.repo + " is not an absolute path of letters, digits and / _ . - + , @ = :";
    return std::nullopt;
  }
  return s;
}

// The labels each stanza of the repository still holds, by pgBackRest's
// info of every stanza: the truth retention decides on. A stanza whose info
// is not readable (status other than ok or "no valid backups") is left out,
// so that its manifests are all kept.
std::optional<std::map<std::string, std::set<std::string>>> kept_labels(const std::string& exe,
                                                                        const std::string& config,
                                                                        std::string* error) {
  ChildResult info = run_child({exe, "--config=" + config, "--config-include-path=" + include_dir_for(config), "info",
                                "--output=json"},
                               pgbackrest_environment());
  if (!info.ok()) {
    *error = "pgbackrest info failed: " + said(info);
    return std::nullopt;
  }
  auto doc = nlohmann::json::parse(info.out, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) {
    *error = "pgbackrest info answered no JSON array";
    return std::nullopt;
  }
  std::map<std::string, std::set<std::string>> kept;
  for (const auto& st : doc) {
    if (!st.is_object() || !st.contains("name") || !st["name"].is_string()) continue;
    const std::string name = st["name"].get<std::string>();
    try {
      StanzaInfo si = parse_info(info.out, name);
      if (si.status_code != 0 && si.status_code != 2) continue;
      auto& labels = kept[name];
      for (const auto& b : si.backups) labels.insert(b.label);
    } catch (const std::runtime_error&) {
      continue;  // unreadable: all its manifests are kept
    }
  }
  return kept;
}

std::string expiry_text(const ExpiryReport& e) {
  std::ostringstream t;
  t << "removed " << e.plan.objects.size() << " objects (" << e.removed_bytes << " bytes) and "
    << e.plan.manifests.size() << " manifests of expired backups; kept " << e.plan.kept_objects << " objects for "
    << e.plan.kept_manifests << " manifests";
  return t.str();
}

// ---------------------------------------------------------------------------
// run

struct RunOptions {
  std::string node, type = "incr", config = kDefaultConfig, stanza, store, blob_repo;
};

// What the blob step of a run did: its problems (each naming a sha256 or the
// step that failed) and the copy's counts.
struct BlobRun {
  std::vector<std::string> problems;
  CopyReport copy;
};

// The blob step of a run, after the backup is recorded, all under the
// repository's exclusive lock: copy the blobs the repository lacks, write
// the manifest, read back every object written, then retention. Prints a
// line per step; problems are returned, not printed.
// `known_key`: the key read before the backup from an existing key.json
// (which never changes once written), saving a second PBKDF2.
BlobRun backup_blobs(const BlobSettings& bs, std::optional<BlobKey> known_key, const std::string& store,
                     const BlobManifest& m, const std::string& exe, const std::string& config) {
  BlobRun r;
  BlobRepository repo(bs.repo);
  std::string error;
  if (!repo.lock(true, &error)) {
    r.problems.push_back("the blobs' repository: " + error);
    return r;
  }
  auto key = known_key ? known_key : repo.key(bs.passphrase, true, &error);
  if (!key) {
    r.problems.push_back("the blobs' repository: " + error);
    return r;
  }
  repo.remove_temporaries();
  std::uint64_t bytes = 0;
  for (const auto& b : m.blobs) bytes += b.size;
  if (!m.blobs.empty() && store.empty()) {
    r.problems.push_back("the backup's rows reference " + std::to_string(m.blobs.size()) +
                         " blobs and no --store was given: none is backed up (give this node's blob store, the "
                         "agent's --store)");
  } else if (!m.blobs.empty()) {
    r.copy = copy_blobs(repo, *key, store, m.blobs);
    r.problems.insert(r.problems.end(), r.copy.problems.begin(), r.copy.problems.end());
  }
  std::cout << "  blobs: " << m.blobs.size() << " referenced (" << bytes << " bytes), " << r.copy.present
            << " already in the repository, " << r.copy.copied << " copied: " << r.copy.read_bytes
            << " bytes read, " << r.copy.stored_bytes << " bytes written (" << r.copy.compressed
            << " compressed with zstd)\n";
  // Always written, problems or not: it is what keeps the objects copied
  // from the next expiry, and what a restore checks the blobs against.
  if (!write_manifest(repo, *key, m, &error))
    r.problems.push_back("the blob manifest could not be written: " + error);
  else
    std::cout << "  blob manifest: " << BlobRepository::manifest_name(m.stanza, m.label) << "\n";
  // Every object this run wrote, read back from the disk (write_object
  // dropped it from the page cache), decrypted, decompressed and hashed.
  std::size_t bad = 0;
  for (const auto& sha : r.copy.written) {
    ObjectCheck c = check_object(repo, *key, sha);
    if (!c.ok) {
      ++bad;
      r.problems.push_back("blob " + sha + " was written but does not read back: " + c.error);
    }
  }
  std::cout << "  blob verify: " << r.copy.written.size() << " objects written by this run read back and hashed: "
            << (bad ? std::to_string(bad) + " FAILED" : std::string("ok")) << "\n";
  auto kept = kept_labels(exe, config, &error);
  if (!kept) {
    r.problems.push_back("blob retention skipped: " + error);
    return r;
  }
  ExpiryReport e = expire_blobs(repo, *key, *kept);
  std::cout << "  blob retention: " << expiry_text(e) << "\n";
  if (!e.plan.refused.empty()) std::cerr << "crawler-ha backup run: blob retention: " << e.plan.refused << "\n";
  for (const auto& p : e.problems) std::cerr << "crawler-ha backup run: blob retention: " << p << "\n";
  return r;
}

// Records a failure after the backup was allowed: the HA event is where a
// failed schedule shows. A failure to record it is said, not hidden.
void record_failure(NodeDb& db, const std::string& stanza, const std::string& type, const std::string& step,
                    const std::string& message) {
  DbResult r = db.call(db.with_schema("SELECT @extschema@.ha_backup_failed($1, $2, $3, $4)"),
                       {stanza, type, step, valid_text(message, 4000)});
  if (!r.ok)
    std::cerr << "crawler-ha backup run: the failure could not be recorded as an HA event either: " << r.sqlstate
              << " " << r.error << "\n";
}

int backup_run(const std::vector<std::string>& args) {
  RunOptions o;
  po::options_description d{"crawler-ha backup run"};
  d.add_options()("help,h", "show this help")
      ("node", po::value(&o.node), "libpq connection string of this node's PostgreSQL (a role in crawler_ha_admin)")
      ("type", po::value(&o.type)->default_value(o.type),
       "full, diff or incr (pgBackRest makes a full one when there is none to build on)")
      ("config", po::value(&o.config)->default_value(o.config), "the pgBackRest configuration file (backup setup's)")
      ("stanza", po::value(&o.stanza), "the stanza (default: the node's name in ha_node)")
      ("store", po::value(&o.store),
       "this node's blob store (the agent's --store): the blobs the backup's rows reference are copied from it")
      ("blob-repo", po::value(&o.blob_repo),
       "the directory the blobs go under (default: the repository, repo1-path; required with an object store)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return bad_options("run", e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha backup run --node CONNINFO [--type full|diff|incr] [--config FILE] [--stanza NAME]\n\n"
              << d
              << "\nRun on the data node as the PostgreSQL OS user. Exit status: 0 backed up, verified and recorded,\n"
                 "1 failed, 2 bad options, 3 refused: this node may not back up now (not the writable primary).\n";
    return 0;
  }
  if (o.node.empty()) return bad_options("run", "--node is required");
  if (o.type != "full" && o.type != "diff" && o.type != "incr")
    return bad_options("run", "--type must be full, diff or incr");
  if (!safe_path(o.config)) return bad_options("run", "--config must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!o.stanza.empty() && !safe_stanza(o.stanza))
    return bad_options("run", "--stanza must be 1 to 63 letters, digits, \"_\", \".\" or \"-\"");
  if (!o.store.empty() && o.store.front() != '/') return bad_options("run", "--store must be an absolute path");
  if (!o.blob_repo.empty() && !safe_path(o.blob_repo))
    return bad_options("run", "--blob-repo must be an absolute path of letters, digits and / _ . - + , @ = :");
  std::string error;
  auto server = one_server(o.node, &error);
  if (!server) return bad_options("run", error);
  set_log_level("error");
  const std::string exe = pgbackrest_exe(&error);
  if (exe.empty()) return fail("run", error);

  NodeDb db(*server, "--node", "backup run", "", kConnectTimeoutS);
  if (!db.try_connect()) return fail("run", "cannot use the node's database: " + db.last_error());
  DbResult begin = db.call(db.with_schema(
      "SELECT b.node_name, b.term, b.system_identifier FROM @extschema@.ha_backup_begin() b"));
  if (!begin.ok) {
    if (begin.sqlstate == "25006") {
      std::cerr << "crawler-ha backup run: refused: " << begin.error << " (SQLSTATE 25006)\n";
      return kNotNow;
    }
    return fail("run", "refused: " + begin.error + " (SQLSTATE " + begin.sqlstate + ")");
  }
  const std::string node_name = begin.at(0, "node_name").value_or("");
  const std::string term = begin.at(0, "term").value_or("");
  // PostgreSQL shows the 64-bit identifier as a signed bigint, pgBackRest
  // as the unsigned number it is: compare them as the latter.
  std::string system_id;
  try {
    system_id = std::to_string(static_cast<std::uint64_t>(std::stoll(begin.at(0, "system_identifier").value_or(""))));
  } catch (const std::exception&) {
    return fail("run", "ha_backup_begin() answered no system identifier");
  }
  if (o.stanza.empty()) o.stanza = node_name;
  if (!safe_stanza(o.stanza)) return fail("run", "the node's name " + node_name + " cannot be a stanza: give --stanza");
  std::cout << "backup run on node " << node_name << " (term " << term << ", stanza " << o.stanza << "):\n";

  PgBackRest br(exe, o.config, include_dir_for(o.config), o.stanza, pgbackrest_environment());
  auto failed = [&](const std::string& step, const std::string& why) {
    record_failure(db, o.stanza, o.type, step, why);
    return fail("run", why);
  };

  // What the repository held before: the new backup is the label added.
  ChildResult info = br.run("info", {"--output=json"});
  if (!info.ok()) return failed("info", "pgbackrest info failed: " + said(info));
  std::set<std::string> before;
  try {
    StanzaInfo si = parse_info(info.out, o.stanza);
    if (si.status_code != 0 && si.status_code != 2)
      return failed("info", "the stanza " + o.stanza + " is not ready: " + one_line(si.status_message, 1000) +
                                " (run crawler-ha backup setup on this node; a repository that cannot be read may be "
                                "another passphrase's)");
    // pgBackRest checks pg1-path against the stanza; this checks that --node
    // reaches that same cluster, so that the extension's yes is about the
    // server being backed up.
    if (si.system_id != system_id)
      return failed("info", "the stanza " + o.stanza + " is the cluster with system identifier " + si.system_id +
                                ", but --node reaches the cluster " + system_id +
                                ": --node must be the server this machine's pgBackRest backs up");
    for (const auto& b : si.backups) before.insert(b.label);
  } catch (const std::runtime_error& e) {
    return failed("info", e.what());
  }
  // The blobs' repository and key before anything is backed up: a database
  // backup whose blobs then cannot be copied is a backup that cannot be
  // restored whole. A repository without key.json gets one later, under the
  // lock.
  auto bs = blob_settings(o.config, o.blob_repo, &error);
  if (!bs) return failed("blobs", error);
  std::optional<BlobKey> blob_key;
  {
    BlobRepository probe(bs->repo);
    std::error_code ec;
    if (fs::exists(probe.dir() / "key.json", ec) && !(blob_key = probe.key(bs->passphrase, false, &error)))
      return failed("blobs", error);
  }

  const auto t0 = std::chrono::steady_clock::now();
  ChildResult backup = br.run("backup", {"--type=" + o.type, "--annotation=crawler_ha_node=" + node_name,
                                         "--annotation=crawler_ha_term=" + term});
  if (!backup.ok()) return failed("backup", "pgbackrest backup failed: " + said(backup));
  info = br.run("info", {"--output=json"});
  if (!info.ok()) return failed("info", "pgbackrest info failed after the backup: " + said(info));
  BackupInfo made;
  std::vector<std::string> kept;
  try {
    StanzaInfo si = parse_info(info.out, o.stanza);
    for (const auto& b : si.backups) {
      kept.push_back(b.label);
      if (!before.count(b.label)) made = b;
    }
  } catch (const std::runtime_error& e) {
    return failed("info", e.what());
  }
  if (made.label.empty())
    return failed("info", "pgbackrest backup succeeded but info lists no new backup of the stanza " + o.stanza);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "  backup: " << made.type << " " << made.label << ", " << bytes_text(made.size) << " (repository "
            << bytes_text(made.repo_delta) << " added), WAL " << made.start_lsn << ".." << made.stop_lsn << ", "
            << std::fixed << std::setprecision(1) << took << " s\n";

  // The whole stanza's repository, as pgBackRest reads it back.
  // --verbose: without it the text is empty when all is well, and only
  // the text tells well from not (see parse_verify()).
  ChildResult verify = br.run("verify", {"--output=text", "--verbose"});
  VerifyResult vr;
  if (!verify.ok()) {
    vr.detail = "pgbackrest verify failed: " + said(verify);
  } else {
    vr = parse_verify(verify.out);
    if (made.error) {
      vr.ok = false;
      vr.detail = "pgBackRest found page checksum errors while copying this backup\n" + vr.detail;
    }
  }
  vr.detail = valid_text(vr.detail, 10000);
  std::cout << "  verify: " << (vr.ok ? "ok" : "FAILED") << "\n";

  // The figures: a second session takes its snapshot while the first holds
  // writes back at the restore point (ha_backup_freeze() says why each step).
  NodeDb figures(*server, "--node", "backup run", "", kConnectTimeoutS);
  if (!figures.try_connect()) return failed("freeze", "cannot open a second session: " + figures.last_error());
  DbResult fr;
  std::string rp_lsn, freeze_xid;
  if (!(fr = db.call("BEGIN")).ok ||
      !(fr = db.call(db.with_schema("SELECT * FROM @extschema@.ha_backup_freeze($1)"), {made.label})).ok) {
    db.call("ROLLBACK");
    return failed("freeze", "ha_backup_freeze() failed: " + fr.error + " (SQLSTATE " + fr.sqlstate + ")");
  }
  rp_lsn = fr.at(0, "restore_point_lsn").value_or("");
  freeze_xid = fr.at(0, "freeze_xid").value_or("");
  DbResult tick = figures.call("SELECT pg_catalog.pg_current_xact_id()");
  DbResult snap = tick.ok ? figures.call("BEGIN ISOLATION LEVEL REPEATABLE READ") : tick;
  if (snap.ok) snap = figures.call("SELECT 1");
  DbResult ended = db.call("COMMIT");
  if (!snap.ok || !ended.ok) {
    figures.call("ROLLBACK");
    const DbResult& bad = snap.ok ? ended : snap;
    return failed("freeze", "the figures' snapshot could not be taken during the freeze: " + bad.error +
                                " (SQLSTATE " + bad.sqlstate + ")");
  }
  auto kept_array = pg_text_array(kept);
  DbResult rec = figures.call(
      figures.with_schema("SELECT @extschema@.ha_backup_record($1, $2, $3, $4, pg_catalog.to_timestamp($5::bigint),"
                          " pg_catalog.to_timestamp($6::bigint), $7::pg_lsn, $8::pg_lsn, $9, $10, $11::bigint,"
                          " $12::bigint, $13::bigint, $14::bigint, $15::boolean, $16, $17::pg_lsn, $18::xid8,"
                          " $19::text[]) AS id"),
      {o.stanza, made.label, made.type, made.prior.empty() ? Param() : Param(made.prior),
       std::to_string(made.start_time), std::to_string(made.stop_time), made.start_lsn, made.stop_lsn, made.wal_start,
       made.wal_stop, std::to_string(made.size), std::to_string(made.delta), std::to_string(made.repo_size),
       std::to_string(made.repo_delta), vr.ok ? "true" : "false", vr.detail, rp_lsn, freeze_xid,
       kept_array.value_or("{}")});
  // The blobs the rows reference, in the same snapshot as the figures (the
  // record just proved it is the freeze's), and their summary on the row.
  BlobManifest manifest{o.stanza, made.label, node_name, {}};
  const std::string manifest_name = BlobRepository::manifest_name(o.stanza, made.label);
  std::uint64_t blob_bytes = 0;
  if (rec.ok) {
    rec = figures.call(figures.with_schema(
        "SELECT sha256, file_path, file_size FROM @extschema@.ha_backup_blob_manifest()"));
    for (std::size_t i = 0; rec.ok && i < rec.rows.size(); ++i) {
      BlobRef b{rec.at(i, "sha256").value_or(""), rec.at(i, "file_path").value_or(""), 0};
      b.size = std::stoull(rec.at(i, "file_size").value_or("0"));
      blob_bytes += b.size;
      manifest.blobs.push_back(std::move(b));
    }
  }
  if (rec.ok) {
    rec = figures.call(
        figures.with_schema("SELECT blob_count, blob_bytes FROM @extschema@.ha_backup_record_blobs($1, $2, $3)"),
        {o.stanza, made.label, manifest_name});
    if (rec.ok && (rec.at(0, "blob_count").value_or("") != std::to_string(manifest.blobs.size()) ||
                   rec.at(0, "blob_bytes").value_or("") != std::to_string(blob_bytes))) {
      rec.ok = false;
      rec.error = "the blob list read and the summary recorded differ";
      rec.sqlstate = "XX000";
    }
  }
  if (rec.ok) rec = figures.call("COMMIT");
  if (!rec.ok) {
    figures.call("ROLLBACK");
    return failed("record", "ha_backup_record() failed: " + rec.error + " (SQLSTATE " + rec.sqlstate + ")");
  }
  std::cout << "  recorded with the figures at its restore point crawler_ha_" << made.label << " (" << rp_lsn
            << ")\n";

  const BlobRun blob_run = backup_blobs(*bs, blob_key, o.store, manifest, exe, o.config);
  std::vector<std::string> blob_problems = blob_run.problems;
  std::string blob_detail;
  for (const auto& p : blob_problems) blob_detail += p + "\n";
  DbResult done = db.call(db.with_schema("SELECT @extschema@.ha_backup_blobs_done($1, $2, $3::boolean, $4::bigint,"
                                         " $5::bigint, $6)"),
                          {o.stanza, made.label, blob_problems.empty() ? "true" : "false",
                           std::to_string(blob_run.copy.copied), std::to_string(blob_run.copy.stored_bytes),
                           valid_text(blob_detail, 10000)});
  if (!done.ok) blob_problems.push_back("ha_backup_blobs_done() failed: " + done.error + " (SQLSTATE " + done.sqlstate + ")");
  if (!blob_problems.empty()) {
    for (const auto& p : blob_problems) std::cerr << "crawler-ha backup run: " << p << "\n";
    record_failure(db, o.stanza, o.type, "blobs", blob_detail);
  }

  // pgBackRest's check switches WAL and waits until that segment is in the
  // repository; the archiver sends segments in order, so the restore
  // point's segment is there too: the backup can be restored to it now.
  ChildResult check = br.run("check");
  if (!check.ok())
    return failed("check", "the WAL up to the restore point is not archived yet: pgbackrest check: " + said(check));
  std::cout << "  check: the restore point's WAL is archived\n";
  if (!blob_problems.empty()) {
    std::cerr << "crawler-ha backup run: " << blob_problems.size()
              << " blob problem(s): the database backup is recorded, these blobs are not in the repository\n";
    if (vr.ok) return 1;
  }
  if (!vr.ok) {
    std::cerr << "crawler-ha backup run: pgbackrest verify found problems in the repository:\n"
              << vr.detail << (vr.detail.empty() || vr.detail.back() == '\n' ? "" : "\n");
    return 1;
  }
  std::cout << "backup run: done\n";
  return 0;
}

// ---------------------------------------------------------------------------
// expire-blobs and verify-blobs: the blobs' repository on its own, for
// operators (no database connection: the configuration and the repository
// are all they need).

struct BlobOptions {
  std::string config = kDefaultConfig, blob_repo, stanza, label;
};

// Parses the options the two share; 0 to go on, else the exit status.
int parse_blob_options(const std::string& sub, const std::vector<std::string>& args, BlobOptions* o,
                       bool with_label, const std::string& usage, const std::string& what) {
  po::options_description d{"crawler-ha backup " + sub};
  d.add_options()("help,h", "show this help")
      ("config", po::value(&o->config)->default_value(o->config), "the pgBackRest configuration file (backup setup's)")
      ("blob-repo", po::value(&o->blob_repo),
       "the directory the blobs are under (default: the repository, repo1-path)");
  if (with_label)
    d.add_options()("stanza", po::value(&o->stanza), "with --label: the stanza of the backup")
        ("label", po::value(&o->label), "only the objects of this backup's manifest (default: every object)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return bad_options(sub, e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha backup " << sub << " " << usage << "\n\n" << d << "\n" << what;
    return -1;
  }
  if (!safe_path(o->config)) return bad_options(sub, "--config must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!o->blob_repo.empty() && !safe_path(o->blob_repo))
    return bad_options(sub, "--blob-repo must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (with_label && (o->label.empty() != o->stanza.empty()))
    return bad_options(sub, "--label and --stanza go together");
  if (!o->stanza.empty() && !safe_stanza(o->stanza))
    return bad_options(sub, "--stanza must be 1 to 63 letters, digits, \"_\", \".\" or \"-\"");
  if (!o->label.empty() && (o->label.size() > 40 || o->label.find_first_not_of("0123456789-_FDI") != std::string::npos))
    return bad_options(sub, "--label must be a pgBackRest backup label");
  return 0;
}

int backup_expire_blobs(const std::vector<std::string>& args) {
  BlobOptions o;
  if (int rc = parse_blob_options("expire-blobs", args, &o, false, "[--config FILE] [--blob-repo DIR]",
                                  "Removes from the repository every blob object no kept backup's manifest (of any\n"
                                  "stanza) names, and the manifests of the backups pgBackRest expired. backup run does\n"
                                  "it after each backup. Exit status: 0 done, 1 failed, 2 bad options.\n"))
    return rc < 0 ? 0 : rc;
  set_log_level("error");
  std::string error;
  const std::string exe = pgbackrest_exe(&error);
  if (exe.empty()) return fail("expire-blobs", error);
  auto bs = blob_settings(o.config, o.blob_repo, &error);
  if (!bs) return fail("expire-blobs", error);
  BlobRepository repo(bs->repo);
  std::error_code ec;
  if (!fs::exists(repo.dir() / "key.json", ec)) {
    std::cout << "expire-blobs: no blob was ever backed up into " << bs->repo << ": nothing to do\n";
    return 0;
  }
  if (!repo.lock(true, &error)) return fail("expire-blobs", error);
  auto key = repo.key(bs->passphrase, false, &error);
  if (!key) return fail("expire-blobs", error);
  auto kept = kept_labels(exe, o.config, &error);
  if (!kept) return fail("expire-blobs", error);
  const int temps = repo.remove_temporaries();
  ExpiryReport e = expire_blobs(repo, *key, *kept);
  std::cout << "expire-blobs: " << expiry_text(e) << (temps ? ", " + std::to_string(temps) + " temporary files" : "")
            << "\n";
  if (!e.plan.refused.empty()) std::cerr << "crawler-ha backup expire-blobs: " << e.plan.refused << "\n";
  for (const auto& p : e.problems) std::cerr << "crawler-ha backup expire-blobs: " << p << "\n";
  return e.problems.empty() && e.plan.refused.empty() ? 0 : 1;
}

int backup_verify_blobs(const std::vector<std::string>& args) {
  BlobOptions o;
  if (int rc = parse_blob_options("verify-blobs", args, &o, true,
                                  "[--config FILE] [--blob-repo DIR] [--stanza NAME --label LABEL]",
                                  "Reads every blob object of the repository (or of one backup's manifest), decrypts,\n"
                                  "decompresses and hashes it, reads every manifest, and reports objects a manifest names\n"
                                  "that are missing or corrupt. Exit status: 0 all good, 1 a problem, 2 bad options.\n"))
    return rc < 0 ? 0 : rc;
  set_log_level("error");
  std::string error;
  auto bs = blob_settings(o.config, o.blob_repo, &error);
  if (!bs) return fail("verify-blobs", error);
  BlobRepository repo(bs->repo);
  if (!repo.lock(false, &error)) return fail("verify-blobs", error);
  auto key = repo.key(bs->passphrase, false, &error);
  if (!key) return fail("verify-blobs", error);
  std::vector<std::string> problems;
  std::set<std::string> named;  // by a manifest read
  std::vector<std::pair<std::string, std::string>> manifests;
  if (!o.label.empty()) {
    manifests.emplace_back(o.stanza, o.label);
  } else {
    try {
      manifests = repo.manifests();
    } catch (const std::exception& e) {
      return fail("verify-blobs", e.what());
    }
  }
  for (const auto& [stanza, label] : manifests) {
    auto m = read_manifest(repo, *key, stanza, label, &error);
    if (!m) {
      problems.push_back("manifest of backup " + label + " of stanza " + stanza + ": " + error);
      continue;
    }
    for (const auto& b : m->blobs) named.insert(b.sha256);
  }
  std::set<std::string> to_check = named;
  if (o.label.empty()) {
    try {
      for (const auto& sha : repo.objects()) to_check.insert(sha);
    } catch (const std::exception& e) {
      return fail("verify-blobs", e.what());
    }
  }
  std::uint64_t bytes = 0;
  std::size_t bad = 0;
  for (const auto& sha : to_check) {
    ObjectCheck c = check_object(repo, *key, sha);
    bytes += c.plain_bytes;
    if (!c.ok) {
      ++bad;
      problems.push_back("blob " + sha + ": " + (c.missing ? "missing from the repository" : "corrupt: " + c.error) +
                         (named.count(sha) ? "" : " (named by no manifest)"));
    }
  }
  std::cout << "verify-blobs: " << manifests.size() << " manifests, " << to_check.size() << " objects read ("
            << bytes << " bytes decrypted and hashed): " << (problems.empty() ? "ok" : std::to_string(problems.size()) + " problems")
            << "\n";
  for (const auto& p : problems) std::cerr << "crawler-ha backup verify-blobs: " << p << "\n";
  return problems.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------
// list

const char* kListSql =
    "SELECT (SELECT h.node_name FROM @extschema@.ha_node h) AS node_name,"
    " coalesce(pg_catalog.json_agg(b ORDER BY b.stopped_at, b.id), '[]')::text AS backups"
    " FROM @extschema@.ha_backups() b";

// "crawl_sessions 3, crawl_hosts 1, ..." from a backup's figures.
std::string rows_text(const nlohmann::json& figures) {
  std::string out;
  if (!figures.is_object()) return "-";
  for (const auto& [table, f] : figures.items()) {
    std::string name = table.substr(table.find('.') == std::string::npos ? 0 : table.find('.') + 1);
    out += (out.empty() ? "" : " ") + name + "=" + (f.contains("row_count") ? f["row_count"].dump() : "?");
  }
  return out;
}

std::string text_of(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

int backup_list(const std::vector<std::string>& args) {
  po::options_description extra;  // the cluster options are all it takes
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
  } catch (const ConfigError& e) {
    return bad_options("list", e.what());
  }
  if (o.help) {
    std::cout << cluster_options_help("crawler-ha backup list [--db CONNINFO ...] [--json]", extra)
              << "\nEvery node's backups (ha_backups(), granted to crawler_ha_reader), oldest first.\n"
                 "Exit status: 0 when a node answered, 1 when none did, 2 on bad options.\n";
    return 0;
  }
  set_log_level("error");
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    return bad_options("list", e.what());
  }
  auto answers = ask_nodes(nodes, kListSql, o.connect_timeout_s);
  nlohmann::ordered_json doc = {{"nodes", nlohmann::ordered_json::array()}};
  bool any = false;
  std::ostringstream table;
  table << std::left << std::setw(10) << "NODE" << std::setw(10) << "STANZA" << std::setw(36) << "LABEL"
        << std::setw(6) << "TYPE" << std::setw(27) << "STOPPED" << std::setw(10) << "SIZE" << std::setw(10) << "REPO"
        << std::setw(8) << "VERIFY" << std::setw(13) << "RESTORE LSN" << std::setw(9) << "STATE" << "ROWS\n";
  for (const auto& a : answers) {
    nlohmann::ordered_json node = {{"server", a.target.label}};
    if (!a.reached || !a.result.ok || a.result.rows.size() != 1) {
      node["error"] = a.error.empty() ? "no answer" : a.error;
      std::cerr << "crawler-ha backup list: " << a.target.label << " "
                << (a.reached ? "refused: " : "does not answer: ") << one_line(node["error"].get<std::string>())
                << "\n";
      doc["nodes"].push_back(node);
      continue;
    }
    any = true;
    node["node"] = a.result.at(0, "node_name").value_or("");
    nlohmann::json backups = nlohmann::json::parse(a.result.at(0, "backups").value_or("[]"), nullptr, false);
    node["backups"] = backups;
    for (const auto& b : backups) {
      table << std::setw(10) << text_of(b["node"]) << std::setw(10) << text_of(b["stanza"]) << std::setw(36)
            << text_of(b["label"]) << std::setw(6) << text_of(b["type"]) << std::setw(27) << text_of(b["stopped_at"])
            << std::setw(10) << (b["size_bytes"].is_number() ? bytes_text(b["size_bytes"].get<std::int64_t>()) : "-")
            << std::setw(10)
            << (b["repo_size_bytes"].is_number() ? bytes_text(b["repo_size_bytes"].get<std::int64_t>()) : "-")
            << std::setw(8) << (b["verify_ok"] == true ? "ok" : "FAILED") << std::setw(13)
            << text_of(b["restore_point_lsn"]) << std::setw(9) << (b["expired_at"].is_null() ? "kept" : "expired")
            << rows_text(b["figures"]) << "\n";
    }
    doc["nodes"].push_back(node);
  }
  if (o.json)
    std::cout << doc.dump() << "\n";
  else if (any)
    std::cout << table.str();
  return any ? 0 : 1;
}

}  // namespace

int run_backup_command(const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "setup") return backup_setup(rest);
  if (sub == "run") return backup_run(rest);
  if (sub == "list") return backup_list(rest);
  if (sub == "expire-blobs") return backup_expire_blobs(rest);
  if (sub == "verify-blobs") return backup_verify_blobs(rest);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << "Usage: crawler-ha backup setup|run|list|expire-blobs|verify-blobs [options] (each with --help)\n"
                 "  setup         this node's pgBackRest configuration, WAL archiving, stanza-create and check\n"
                 "  run           a backup of this node and its blobs when it is the writable primary, verified and recorded\n"
                 "  list          every node's recorded backups\n"
                 "  expire-blobs  remove the blob objects and manifests no kept backup needs\n"
                 "  verify-blobs  decrypt and hash every blob object (or one backup's), report missing or corrupt ones\n";
    return 0;
  }
  return bad_options("", sub.empty() ? "a subcommand is needed: setup, run, list, expire-blobs or verify-blobs"
                                     : "unknown subcommand \"" + sub + "\": setup, run, list, expire-blobs or verify-blobs");
}

}  // namespace crawler::agent
