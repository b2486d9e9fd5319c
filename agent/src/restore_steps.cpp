// Steps shared by restore and test-restore (restore_steps.hpp).
#include "restore_steps.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>

namespace crawler::agent::backup_cli {

ChildResult pgbackrest_restore(const PgBackRest& br, const std::string& data_dir, const std::string& set,
                               const std::vector<std::string>& target_options) {
  std::vector<std::string> options{"--pg1-path=" + data_dir, "--set=" + set, "--archive-mode=off"};
  options.insert(options.end(), target_options.begin(), target_options.end());
  return br.run("restore", options);
}

std::string make_socket_dir(std::string* error) {
  char tmpl[] = "/tmp/crawler-ha-restore.XXXXXX";
  if (!::mkdtemp(tmpl)) {
    *error = std::string("cannot make a socket directory under /tmp: ") + std::strerror(errno);
    return "";
  }
  return tmpl;
}

std::optional<std::vector<BlobRef>> referenced_blobs(NodeDb& db, std::string* error) {
  DbResult r = db.call("BEGIN ISOLATION LEVEL REPEATABLE READ");
  if (r.ok)
    r = db.call(db.with_schema("SELECT sha256, file_path, file_size FROM @extschema@.ha_backup_blob_manifest()"));
  if (!r.ok) {
    db.call("ROLLBACK");
    *error = "ha_backup_blob_manifest(): " + r.error + " (SQLSTATE " + r.sqlstate + ")";
    return std::nullopt;
  }
  db.call("COMMIT");
  std::vector<BlobRef> blobs;
  blobs.reserve(r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    BlobRef b{r.at(i, "sha256").value_or(""), r.at(i, "file_path").value_or(""), 0};
    try {
      b.size = std::stoull(r.at(i, "file_size").value_or("x"));
    } catch (const std::exception&) {
      *error = "ha_backup_blob_manifest() answered a size that is not a number";
      return std::nullopt;
    }
    if (!blob_ref_ok(b)) {
      *error = "ha_backup_blob_manifest() answered a row that names no blob of a store: " + b.sha256.substr(0, 64);
      return std::nullopt;
    }
    blobs.push_back(std::move(b));
  }
  return blobs;
}

RemovedAtExit::~RemovedAtExit() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

bool safe_dbname(const std::string& name) {
  static const std::regex form("^[A-Za-z0-9_.-]{1,63}$");
  return std::regex_match(name, form);
}

}  // namespace crawler::agent::backup_cli
