// crawler-ha backup test-restore: the proof that a backup restores. One of
// this node's recorded backups is restored to its restore point into a
// scratch cluster, started apart, and compared with what the backup
// recorded: the three consistency figures of every data table, the list of
// the blobs its rows reference, and a sample of those blobs read back from
// the repository and hashed. The scratch cluster is thrown away; the
// outcome goes on the backup's row and is a 'restore' HA event.
// docs/backup.md, "The restore test".
#include <stdlib.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/pgbackrest.hpp"
#include "crawler/agent/scratch_server.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

#include "backup_cli.hpp"
#include "restore_steps.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace crawler::agent::backup_cli {
namespace {

struct TestOptions {
  std::string node, config = kDefaultConfig, label, scratch_dir = "/var/tmp", blob_repo, pg_bin;
  int sample = 32, timeout_s = 3600;
};

// What the test found, as recorded (the detail of the event and the row).
struct TestOutcome {
  nlohmann::json detail = nlohmann::json::object();
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// The figures compared table by table, so that a difference says where.
void compare_figures(const nlohmann::json& recorded, const nlohmann::json& restored, TestOutcome* out) {
  if (recorded == restored) {
    out->detail["figures_equal"] = true;
    out->detail["tables"] = recorded.is_object() ? recorded.size() : 0;
    return;
  }
  out->detail["figures_equal"] = false;
  std::vector<std::string> differ;
  if (recorded.is_object() && restored.is_object()) {
    for (const auto& [table, fig] : recorded.items())
      if (!restored.contains(table) || restored[table] != fig) differ.push_back(table);
    for (const auto& [table, fig] : restored.items())
      if (!recorded.contains(table)) differ.push_back(table);
  }
  out->detail["tables_differing"] = differ;
  std::string names;
  for (const auto& t : differ) names += (names.empty() ? "" : ", ") + t;
  out->problems.push_back("the restored data's figures differ from those recorded" +
                          (names.empty() ? std::string() : " (" + names + ")"));
}

}  // namespace

int backup_test_restore(const std::vector<std::string>& args) {
  TestOptions o;
  po::options_description d{"crawler-ha backup test-restore"};
  d.add_options()("help,h", "show this help")
      ("node", po::value(&o.node), "libpq connection string of this node's PostgreSQL (a role in crawler_ha_admin)")
      ("config", po::value(&o.config)->default_value(o.config), "the pgBackRest configuration file (backup setup's)")
      ("label", po::value(&o.label), "the backup to test (default: this node's newest kept backup)")
      ("scratch-dir", po::value(&o.scratch_dir)->default_value(o.scratch_dir),
       "where the scratch cluster is restored (it needs the database's size; removed afterwards)")
      ("sample", po::value(&o.sample)->default_value(o.sample), "how many of the backup's blobs to read back and hash")
      ("blob-repo", po::value(&o.blob_repo), "the directory the blobs are under (default: the repository, repo1-path)")
      ("pg-bin", po::value(&o.pg_bin), "PostgreSQL's programs (default: /usr/lib/postgresql/<version>/bin)")
      ("timeout", po::value(&o.timeout_s)->default_value(o.timeout_s), "seconds the WAL replay may take");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return bad_options("test-restore", e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha backup test-restore --node CONNINFO [--label LABEL] [--scratch-dir DIR]\n\n"
              << d
              << "\nRun on the data node as the PostgreSQL OS user. Exit status: 0 the backup restored and matched\n"
                 "what it recorded, 1 it did not (or the test could not run), 2 bad options.\n";
    return 0;
  }
  if (o.node.empty()) return bad_options("test-restore", "--node is required");
  if (!safe_path(o.config)) return bad_options("test-restore", "--config must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!safe_path(o.scratch_dir)) return bad_options("test-restore", "--scratch-dir must be an absolute path of letters, digits and / _ . - + , @ = :");
  if (!o.blob_repo.empty() && !safe_path(o.blob_repo)) return bad_options("test-restore", "--blob-repo must be an absolute path");
  if (!o.pg_bin.empty() && !safe_path(o.pg_bin)) return bad_options("test-restore", "--pg-bin must be an absolute path");
  if (o.sample < 0 || o.sample > 1000000) return bad_options("test-restore", "--sample must be 0 to 1000000");
  if (o.timeout_s < 1 || o.timeout_s > 30 * 86400) return bad_options("test-restore", "--timeout must be 1 to 2592000 seconds");
  std::string error;
  auto server_conninfo = one_server(o.node, &error);
  if (!server_conninfo) return bad_options("test-restore", error);
  set_log_level("error");
  const std::string exe = pgbackrest_exe(&error);
  if (exe.empty()) return fail("test-restore", error);

  NodeDb db(*server_conninfo, "--node", "test-restore", "", kConnectTimeoutS);
  if (!db.try_connect()) return fail("test-restore", "cannot use the node's database: " + db.last_error());
  DbResult row = db.call(db.with_schema(
      "SELECT pg_catalog.current_database() AS db, b.stanza, b.label, b.type, b.restore_point, b.figures::text AS figures,"
      " b.blob_count, b.blob_bytes, b.blob_manifest FROM @extschema@.ha_backups() b"
      " WHERE b.expired_at IS NULL AND b.verify_ok AND ($1::text IS NULL OR b.label = $1)"
      " ORDER BY b.stopped_at DESC, b.id DESC LIMIT 1"),
      {o.label.empty() ? Param() : Param(o.label)});
  if (!row.ok) return fail("test-restore", "ha_backups(): " + row.error + " (SQLSTATE " + row.sqlstate + ")");
  if (row.rows.empty())
    return fail("test-restore", o.label.empty() ? "this node has recorded no kept, verified backup to test"
                                                : "this node has recorded no kept, verified backup " + o.label);
  const std::string dbname = row.at(0, "db").value_or("");
  const std::string stanza = row.at(0, "stanza").value_or("");
  const std::string label = row.at(0, "label").value_or("");
  const std::string restore_point = row.at(0, "restore_point").value_or("");
  if (!safe_dbname(dbname)) return fail("test-restore", "the node's database name cannot be used in a connection string here");
  nlohmann::json recorded;
  try {
    recorded = nlohmann::json::parse(row.at(0, "figures").value_or("null"));
  } catch (const nlohmann::json::exception& e) {
    return fail("test-restore", std::string("the recorded figures are not JSON: ") + e.what());
  }
  std::cout << "restore test of " << row.at(0, "type").value_or("") << " backup " << label << " of stanza " << stanza
            << " (to " << restore_point << "):\n";

  const auto t0 = std::chrono::steady_clock::now();
  TestOutcome out;
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  auto record = [&]() {
    out.detail["seconds"] = seconds_since(t0);
    if (!out.ok()) {
      std::string all;
      for (const auto& p : out.problems) all += (all.empty() ? "" : "; ") + p;
      out.detail["problem"] = valid_text(all, 4000);
    }
    DbResult r = db.call(db.with_schema("SELECT @extschema@.ha_backup_restore_tested($1, $2, $3::boolean, $4::jsonb)"),
                         {stanza, label, out.ok() ? "true" : "false", out.detail.dump()});
    if (!r.ok) {
      std::cerr << "crawler-ha backup test-restore: the outcome could not be recorded: " << r.error << " (SQLSTATE "
                << r.sqlstate << ")\n";
      return 1;
    }
    for (const auto& p : out.problems) std::cerr << "crawler-ha backup test-restore: " << p << "\n";
    std::cout << "test-restore: " << (out.ok() ? "passed" : "FAILED") << " in " << std::fixed
              << std::setprecision(1) << seconds_since(t0) << " s, recorded\n";
    return out.ok() ? 0 : 1;
  };

  // The scratch directory: its own, under --scratch-dir, removed whatever happens.
  std::string tmpl = (fs::path(o.scratch_dir) / "crawler-ha-restore-test.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail("test-restore", "cannot make a directory under " + o.scratch_dir);
  RemovedAtExit remove_scratch{tmpl};
  const std::string data_dir = tmpl + "/data";
  const std::string socket_dir = make_socket_dir(&error);
  if (socket_dir.empty()) return fail("test-restore", error);
  RemovedAtExit remove_socket{socket_dir};

  PgBackRest br(exe, o.config, include_dir_for(o.config), stanza, pgbackrest_environment());
  ChildResult restored = pgbackrest_restore(br, data_dir, label,
                                            {"--type=name", "--target=" + restore_point, "--target-action=promote"});
  if (!restored.ok()) {
    out.problems.push_back("pgbackrest restore failed: " + said(restored, 1000));
    return record();
  }
  out.detail["restore_seconds"] = seconds_since(t0);
  std::cout << "  restored by pgBackRest into " << data_dir << " (" << std::fixed << std::setprecision(1)
            << seconds_since(t0) << " s)\n";
  const std::string bin = pg_bin_dir_for(data_dir, o.pg_bin, &error);
  if (bin.empty()) {
    out.problems.push_back(error);
    return record();
  }
  {
    ScratchServer server(bin, data_dir, socket_dir, tmpl + "/server.log");
    const auto replay0 = std::chrono::steady_clock::now();
    if (!server.start(o.timeout_s, &error)) {
      out.problems.push_back(one_line(error, 3000));
      return record();
    }
    out.detail["replay_seconds"] = seconds_since(replay0);
    std::cout << "  started, recovered to its restore point and promoted (" << seconds_since(replay0) << " s)\n";
    NodeDb scratch(server.conninfo(dbname), "restored", "test-restore", "", 10);
    if (!scratch.try_connect()) {
      out.problems.push_back("cannot use the restored database: " + scratch.last_error());
      return record();
    }
    DbResult fig = scratch.call(scratch.with_schema("SELECT @extschema@.ha_backup_figures()::text AS f"));
    if (!fig.ok) {
      out.problems.push_back("ha_backup_figures() on the restored data: " + fig.error);
    } else {
      try {
        compare_figures(recorded, nlohmann::json::parse(fig.at(0, "f").value_or("null")), &out);
      } catch (const nlohmann::json::exception& e) {
        out.problems.push_back(std::string("the restored figures are not JSON: ") + e.what());
      }
    }
    std::cout << "  figures: " << (out.detail.value("figures_equal", false) ? "as recorded" : "DIFFERENT") << "\n";

    auto blobs = referenced_blobs(scratch, &error);
    if (!blobs) {
      out.problems.push_back(error);
    } else {
      std::uint64_t bytes = 0;
      for (const auto& b : *blobs) bytes += b.size;
      out.detail["blob_count"] = blobs->size();
      out.detail["blob_bytes"] = bytes;
      const std::string rc = row.at(0, "blob_count").value_or(""), rb = row.at(0, "blob_bytes").value_or("");
      if (!rc.empty() && (rc != std::to_string(blobs->size()) || rb != std::to_string(bytes)))
        out.problems.push_back("the restored rows reference " + std::to_string(blobs->size()) + " blobs (" +
                               std::to_string(bytes) + " bytes), the backup recorded " + rc + " (" + rb + " bytes)");
      std::vector<BlobRef> sample = *blobs;
      std::shuffle(sample.begin(), sample.end(), std::mt19937_64(std::random_device{}()));
      if (sample.size() > static_cast<std::size_t>(o.sample)) sample.resize(static_cast<std::size_t>(o.sample));
      std::size_t good = 0;
      if (!sample.empty()) {
        auto bs = blob_settings(o.config, o.blob_repo, &error);
        std::optional<BlobKey> key;
        BlobRepository repo(bs ? bs->repo : "/nonexistent");
        if (!bs || !repo.lock(false, &error) || !(key = repo.key(bs->passphrase, false, &error))) {
          out.problems.push_back("the blobs' repository: " + error);
        } else {
          for (const auto& b : sample) {
            ObjectCheck c = check_object(repo, *key, b.sha256);
            if (c.ok && c.plain_bytes == b.size) ++good;
            else if (c.ok) out.problems.push_back("blob " + b.sha256 + " has " + std::to_string(c.plain_bytes) +
                                                  " bytes in the repository, its rows say " + std::to_string(b.size));
            else out.problems.push_back("blob " + b.sha256 + ": " + c.error);
          }
        }
      }
      out.detail["blobs_sampled"] = sample.size();
      out.detail["blobs_sampled_ok"] = good;
      std::cout << "  blobs: " << blobs->size() << " referenced (" << bytes << " bytes), " << sample.size()
                << " read back from the repository and hashed: " << good << " ok\n";
    }
    if (!server.stop(false, &error)) out.problems.push_back(error);
  }
  return record();
}

}  // namespace crawler::agent::backup_cli
