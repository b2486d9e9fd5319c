// crawler-ha restore: a cluster back from the backup repository (the
// database through pgBackRest, to a point in time or the end of the
// archive, from the stanza of the node that was primary then), then the
// blobs its rows reference, each verified, then the cluster made the
// primary of a new term, alone, ready for a new standby. docs/backup.md,
// "Restore".
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/pgbackrest.hpp"
#include "crawler/agent/restore_plan.hpp"
#include "crawler/agent/scratch_server.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"

#include "backup_cli.hpp"
#include "restore_steps.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace crawler::agent {
namespace {

using namespace backup_cli;

int bad(const std::string& why) {
  std::cerr << "crawler-ha restore: " << why << " (crawler-ha restore --help)\n";
  return 2;
}

int failed(const std::string& why) {
  std::cerr << "crawler-ha restore: " << why << "\n";
  return 1;
}

struct RestoreOptions {
  std::string target, time, set, stanza, config = kDefaultConfig, store, blob_repo, pg_bin, dbname;
  bool latest = false, no_blobs = false;
  int timeout_s = 3600;
};

// What putting the blobs back did.
struct BlobRestore {
  std::size_t referenced = 0, present = 0, restored = 0;
  std::uint64_t bytes = 0;
  std::vector<std::string> missing;   // sha256 the repository does not hold
  std::vector<std::string> problems;  // each naming a sha256
};

// Every blob of `blobs` into `store`: one already there with the right
// hash is kept, every other one is read from the repository, decrypted,
// hashed and installed (restore_object()).
BlobRestore restore_blobs(const BlobRepository& repo, const BlobKey& key, const fs::path& store,
                          const std::vector<BlobRef>& blobs) {
  BlobRestore r;
  r.referenced = blobs.size();
  for (const auto& b : blobs) {
    const fs::path target = store / b.file_path;
    std::error_code ec;
    if (fs::exists(target, ec)) {
      std::string error;
      auto sha = sha256_file(target, &error);
      if (sha && *sha == b.sha256) {
        ++r.present;
        continue;
      }
    }
    ObjectCheck c = restore_object(repo, key, b.sha256, target);
    if (c.ok) {
      ++r.restored;
      r.bytes += c.plain_bytes;
    } else if (c.missing) {
      r.missing.push_back(b.sha256);
    } else {
      r.problems.push_back("blob " + b.sha256 + ": " + c.error);
    }
  }
  return r;
}

// The restored cluster's crawler_ha.database setting (the database its
// worker ran in), read through `conninfo`; "" with *error when it cannot be
// asked. A plain session: NodeDb wants the extension in its database.
std::string crawl_database(const std::string& conninfo, std::string* error) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  std::string db;
  if (PQstatus(c) != CONNECTION_OK) {
    *error = one_line(PQerrorMessage(c), 500);
  } else {
    PGresult* r = PQexec(c, "SELECT pg_catalog.current_setting('crawler_ha.database', true)");
    // Not set at all (the library is not loaded here to define it): the
    // setting's default, "postgres".
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
      db = PQgetisnull(r, 0, 0) ? "postgres" : PQgetvalue(r, 0, 0);
    else if (PQresultStatus(r) != PGRES_TUPLES_OK) *error = one_line(PQresultErrorMessage(r), 500);
    PQclear(r);
  }
  PQfinish(c);
  return db;
}

}  // namespace

int run_restore_command(const std::vector<std::string>& args) {
  RestoreOptions o;
  po::options_description d{"crawler-ha restore"};
  d.add_options()("help,h", "show this help")
      ("target", po::value(&o.target), "the data directory to restore into (absolute; it must not exist or be empty)")
      ("latest", po::bool_switch(&o.latest), "to the end of the archived WAL (the default)")
      ("time", po::value(&o.time),
       "to this point in time: \"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]\" (no zone: UTC)")
      ("set", po::value(&o.set), "to the restore point of this backup (a label of backup list), exactly")
      ("stanza", po::value(&o.stanza), "restore this node's stanza (default: the one made in the highest term)")
      ("config", po::value(&o.config)->default_value(o.config), "the pgBackRest configuration file (backup setup's)")
      ("store", po::value(&o.store), "the blob store to put the rows' blobs into (the new node's agent --store)")
      ("no-blobs", po::bool_switch(&o.no_blobs), "restore the database only")
      ("blob-repo", po::value(&o.blob_repo),
       "the directory the blobs are under (default: the repository, repo1-path)")
      ("pg-bin", po::value(&o.pg_bin), "PostgreSQL's programs (default: /usr/lib/postgresql/<version>/bin)")
      ("dbname", po::value(&o.dbname), "the crawl's database (default: the restored crawler_ha.database setting)")
      ("timeout", po::value(&o.timeout_s)->default_value(o.timeout_s), "seconds the WAL replay may take");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return bad(e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha restore --target DIR (--store DIR | --no-blobs) [--latest | --time T | --set LABEL]\n"
                 "                          [--stanza NAME] [--config FILE]\n\n"
              << d
              << "\nRun as the PostgreSQL OS user on the machine that is to hold the restored node. The cluster is\n"
                 "restored, started apart (socket only, no preloaded library, no replication, no archiving) until\n"
                 "its recovery ends, its blobs are put back and verified, it is made the primary of a new term\n"
                 "(ha_restored()), and stopped. Then docs/backup.md, \"Making it a pair again\".\n"
                 "Exit status: 0 restored with every blob, 1 failed (or restored with blobs missing: it says\n"
                 "which), 2 bad options.\n";
    return 0;
  }
  if (o.target.empty()) return bad("--target is required");
  if (!safe_path(o.target)) return bad("--target must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (o.store.empty() == !o.no_blobs) return bad("give --store (where the blobs go) or --no-blobs");
  if (!o.store.empty() && !safe_path(o.store)) return bad("--store must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!safe_path(o.config)) return bad("--config must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!o.blob_repo.empty() && !safe_path(o.blob_repo))
    return bad("--blob-repo must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!o.pg_bin.empty() && !safe_path(o.pg_bin)) return bad("--pg-bin must be an absolute path");
  if (!o.stanza.empty() && !safe_stanza(o.stanza))
    return bad("--stanza must be 1 to 63 letters, digits, \"_\", \".\" or \"-\"");
  if (!o.dbname.empty() && !safe_dbname(o.dbname))
    return bad("--dbname must be 1 to 63 letters, digits, \"_\", \".\" or \"-\"");
  if (o.timeout_s < 1 || o.timeout_s > 30 * 86400) return bad("--timeout must be 1 to 2592000 seconds");
  if (int(o.latest) + int(!o.time.empty()) + int(!o.set.empty()) > 1) return bad("give one of --latest, --time and --set");
  RestoreTarget target;
  std::optional<TimePoint> when;
  if (!o.time.empty()) {
    when = parse_time_text(o.time);
    if (!when) return bad("--time must be \"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]\", not \"" + o.time.substr(0, 40) + "\"");
    target.kind = RestoreTarget::Kind::time;
    target.time = when->seconds;
  } else if (!o.set.empty()) {
    target.kind = RestoreTarget::Kind::set;
    target.label = o.set;
  }
  {
    std::error_code ec;
    if (fs::exists(o.target, ec) && !(fs::is_directory(o.target, ec) && fs::is_empty(o.target, ec)))
      return bad("--target " + o.target + " exists and is not an empty directory: nothing is restored over data");
  }
  set_log_level("error");
  std::string error;
  const std::string exe = pgbackrest_exe(&error);
  if (exe.empty()) return failed(error);
  const auto t0 = std::chrono::steady_clock::now();

  // Every stanza of the repository, then the backup to start from.
  PgBackRest all(exe, o.config, include_dir_for(o.config), "", pgbackrest_environment());
  ChildResult info = all.run("info", {"--output=json"});
  if (!info.ok()) return failed("pgbackrest info failed: " + said(info));
  std::map<std::string, StanzaInfo> stanzas;
  try {
    for (const auto& name : stanza_names(info.out)) stanzas[name] = parse_info(info.out, name);
  } catch (const std::runtime_error& e) {
    return failed(e.what());
  }
  auto choice = choose_restore(stanzas, o.stanza, target, &error);
  if (!choice) return failed(error);
  const BackupInfo& b = choice->backup;
  std::string target_text = "the end of the archived WAL";
  std::vector<std::string> target_options;
  if (target.kind == RestoreTarget::Kind::time) {
    target_text = when->target_text();
    target_options = {"--type=time", "--target=" + target_text, "--target-action=promote"};
  } else if (target.kind == RestoreTarget::Kind::set) {
    target_text = "its restore point crawler_ha_" + b.label;
    target_options = {"--type=name", "--target=crawler_ha_" + b.label, "--target-action=promote"};
  }
  std::cout << "restore of stanza " << choice->stanza << ", backup " << b.type << " " << b.label << " (node "
            << (b.node.empty() ? "?" : b.node) << ", ended " << utc_text(b.stop_time) << "): " << choice->why
            << "\n  to " << target_text << ", into " << o.target << "\n";

  // The blobs' key before the long part: a wrong passphrase is said now.
  std::optional<BlobSettings> bs;
  std::optional<BlobKey> key;
  if (!o.no_blobs) {
    bs = blob_settings(o.config, o.blob_repo, &error);
    if (!bs) return failed(error);
    BlobRepository probe(bs->repo);
    key = probe.key(bs->passphrase, false, &error);
    if (!key) return failed("the blobs' repository: " + error);
  }

  PgBackRest br(exe, o.config, include_dir_for(o.config), choice->stanza, pgbackrest_environment());
  ChildResult restored = pgbackrest_restore(br, o.target, b.label, target_options);
  if (!restored.ok()) return failed("pgbackrest restore failed: " + said(restored));
  std::cout << "  database: restored by pgBackRest ("
            << std::fixed << std::setprecision(1)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s)\n";

  const std::string bin = pg_bin_dir_for(o.target, o.pg_bin, &error);
  if (bin.empty()) return failed(error);
  const std::string socket_dir = make_socket_dir(&error);
  if (socket_dir.empty()) return failed(error);
  RemovedAtExit remove_socket_dir{socket_dir};
  const std::string log_file = fs::path(o.target).parent_path() / (fs::path(o.target).filename().string() + ".restore.log");
  ScratchServer server(bin, o.target, socket_dir, log_file);
  const auto replay0 = std::chrono::steady_clock::now();
  if (!server.start(o.timeout_s, &error)) return failed(error);
  std::cout << "  recovery: replayed to " << target_text << " and promoted ("
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - replay0).count()
            << " s; log " << log_file << ")\n";

  std::string dbname = o.dbname;
  if (dbname.empty()) {
    dbname = crawl_database(server.conninfo("postgres"), &error);
    if (!error.empty()) return failed("cannot ask the restored cluster: " + error);
    if (!safe_dbname(dbname))
      return failed("the restored cluster's crawler_ha.database setting names no database (" + dbname.substr(0, 63) +
                    "): give --dbname");
  }
  NodeDb db(server.conninfo(dbname), "restore", "restore", "-c default_transaction_read_only=off", 10);
  if (!db.try_connect()) return failed("cannot use the restored database " + dbname + ": " + db.last_error());

  int status = 0;
  if (!o.no_blobs) {
    auto blobs = referenced_blobs(db, &error);
    if (!blobs) return failed(error);
    BlobRepository repo(bs->repo);
    if (!repo.lock(false, &error)) return failed("the blobs' repository: " + error);
    const auto blobs0 = std::chrono::steady_clock::now();
    BlobRestore br2 = restore_blobs(repo, *key, o.store, *blobs);
    std::cout << "  blobs: " << br2.referenced << " referenced by the rows, " << br2.restored << " restored ("
              << bytes_text(static_cast<std::int64_t>(br2.bytes)) << ", each hashed), " << br2.present
              << " already in " << o.store << ", " << br2.missing.size() << " not in the repository, "
              << br2.problems.size() << " failed ("
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - blobs0).count() << " s)\n";
    for (const auto& p : br2.problems) std::cerr << "crawler-ha restore: " << p << "\n";
    std::size_t shown = 0;
    for (const auto& m : br2.missing)
      if (shown++ < 20) std::cerr << "crawler-ha restore: blob " << m << " is not in the repository\n";
    if (!br2.missing.empty())
      std::cerr << "crawler-ha restore: " << br2.missing.size()
                << " blob(s) not in the repository: rows written after the last backup's blob copy name them;"
                   " a surviving store may still hold them (its agent's file sync brings them back)\n";
    if (!br2.problems.empty() || !br2.missing.empty()) status = 1;
  }

  DbResult made = db.call(db.with_schema("SELECT @extschema@.ha_restored($1, $2, $3) AS term"),
                          {choice->stanza, b.label, target_text});
  if (!made.ok)
    return failed("ha_restored() failed: " + made.error + " (SQLSTATE " + made.sqlstate + ")");
  // A restored standby was read-only by its own ALTER SYSTEM; a primary
  // takes writes. ALTER SYSTEM cannot run in a function.
  DbResult rw = db.call("ALTER SYSTEM RESET default_transaction_read_only");
  if (!rw.ok) return failed("ALTER SYSTEM RESET default_transaction_read_only: " + rw.error);
  std::cout << "  node: the primary of term " << made.at(0, "term").value_or("?")
            << ", alone (the old pair's subscription and slots removed)\n";
  if (!server.stop(true, &error)) return failed(error);
  std::cout << "restore: done in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s; the cluster is stopped. Next (docs/backup.md, \"Making it a pair again\"): set its port and\n"
               "crawler_ha.peer_conninfo, start it, start its agent with --store, run ha_setup('standby') on a new\n"
               "empty node, then crawler-ha backup setup on both (archiving is off in the restored cluster).\n";
  return status;
}

}  // namespace crawler::agent
