// crawler-ha backup run: a backup of this node when it is the writable
// primary, verified, its consistency figures taken at a restore point, its
// blobs copied into the repository, recorded. docs/backup.md.
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

}  // namespace

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

}  // namespace crawler::agent::backup_cli
