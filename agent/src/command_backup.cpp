// crawler-ha backup: database backups with pgBackRest, the tool operators
// already trust, driven from the node it runs on. The extension decides who
// may back up (ha_backup_begin(): the writable primary only, so the standby
// never competes), fixes the moment the backup's consistency figures
// describe (ha_backup_freeze()) and keeps the catalog (ha_backup_record(),
// ha_backups()); pgBackRest copies, compresses, encrypts, verifies and
// expires. This file only sequences them, and copies the blobs the
// backup's rows reference into the repository beside it (blob_backup.hpp:
// pgBackRest never sees the blob store). docs/backup.md.
#include "crawler/agent/command_backup.hpp"

#include "crawler/agent/byte_size_text.hpp"

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
std::string said(const ChildResult& r, std::size_t max) {
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
// the configuration files setup writes

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

// ---------------------------------------------------------------------------
// the blobs' repository settings, shared by run, expire-blobs and verify-blobs


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

}  // namespace crawler::agent::backup_cli

namespace crawler::agent {
namespace {

using namespace backup_cli;

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
  if (sub == "test-restore") return backup_test_restore(rest);
  if (sub == "schedule") return backup_schedule(rest);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << "Usage: crawler-ha backup setup|run|list|expire-blobs|verify-blobs|test-restore|schedule [options] (each with --help)\n"
                 "  setup         this node's pgBackRest configuration, WAL archiving, stanza-create and check\n"
                 "  run           a backup of this node and its blobs when it is the writable primary, verified and recorded\n"
                 "  list          every node's recorded backups\n"
                 "  expire-blobs  remove the blob objects and manifests no kept backup needs\n"
                 "  verify-blobs  decrypt and hash every blob object (or one backup's), report missing or corrupt ones\n"
                 "  test-restore  restore a backup into a scratch cluster, compare it with what it recorded, record that\n"
                 "  schedule      the agent's backup schedule alone, as the PostgreSQL OS user, until SIGTERM\n";
    return 0;
  }
  return bad_options("", sub.empty() ? "a subcommand is needed: setup, run, list, expire-blobs, verify-blobs, test-restore or schedule"
                                     : "unknown subcommand \"" + sub + "\": setup, run, list, expire-blobs, verify-blobs, test-restore or schedule");
}

}  // namespace crawler::agent
