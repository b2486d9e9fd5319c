#include "crawler/agent/inventory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "crawler/agent/node_db.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;

namespace {
bool hex2(std::string_view s) {
  return s.size() == 2 && is_sha256_hex(std::string(s) + std::string(62, '0'));
}
}  // namespace

bool valid_blob_ext(std::string_view ext) {
  if (ext.empty() || ext.size() > 16) return false;
  for (char c : ext)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

bool parse_blob_path(std::string_view rel, std::string* sha256, std::string* ext) {
  // "ab/cd/" + 64 hex + "." + ext
  if (rel.size() < 6 + 64 + 2 || rel[2] != '/' || rel[5] != '/' || rel[70] != '.') return false;
  std::string_view name = rel.substr(6, 64), e = rel.substr(71);
  if (!is_sha256_hex(name) || !valid_blob_ext(e)) return false;
  if (rel.substr(0, 2) != name.substr(0, 2) || rel.substr(3, 2) != name.substr(2, 2)) return false;
  *sha256 = std::string(name);
  *ext = std::string(e);
  return true;
}

bool walk_store(const fs::path& root, std::size_t batch,
                const std::function<bool(std::vector<StoredBlob>&)>& sink, WalkFigures* figures) {
  std::vector<StoredBlob> pending;
  std::error_code ec;
  // Only real directories: a symbolic link could lead the inventory (and
  // later the orphan sweep's deletions) out of the store.
  auto real_dir = [](const fs::directory_entry& e) {
    std::error_code ec2;
    return e.symlink_status(ec2).type() == fs::file_type::directory;
  };
  // Sorted, so that a run is repeatable and its log comparable.
  auto sorted = [&](const fs::path& dir) {
    std::set<fs::path> names;
    for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path());
    if (ec) CRAWLER_LOG(warn) << "file sync: inventory cannot read " << dir.string() << ": " << ec.message();
    return names;
  };
  for (const auto& top : sorted(root)) {
    std::string a = top.filename().string();
    if (!hex2(a) || !real_dir(fs::directory_entry(top))) {
      // The store's own directories (temporary files, quarantine, the
      // thumbnail cache) are not blobs and not strangers either.
      if (a != ".tmp" && a != ".corrupt" && a != ".store-id" && a != ".inventory-pending" && a != ".thumbnails")
        ++figures->ignored;
      continue;
    }
    for (const auto& mid : sorted(top)) {
      std::string b = mid.filename().string();
      if (!hex2(b) || !real_dir(fs::directory_entry(mid))) {
        ++figures->ignored;
        continue;
      }
      std::set<std::string> seen;  // a blob lives in one directory only
      for (const auto& file : sorted(mid)) {
        std::string rel = a + "/" + b + "/" + file.filename().string(), sha, ext;
        fs::directory_entry e(file);
        std::error_code fe;
        if (!parse_blob_path(rel, &sha, &ext) || e.symlink_status(fe).type() != fs::file_type::regular) {
          ++figures->ignored;
          continue;
        }
        if (!seen.insert(sha).second) {
          ++figures->duplicates;
          continue;
        }
        std::uint64_t size = e.file_size(fe);
        if (fe) {
          ++figures->ignored;  // removed meanwhile
          continue;
        }
        ++figures->blobs;
        figures->bytes += size;
        pending.push_back({sha, ext, size});
        if (pending.size() >= batch) {
          if (!sink(pending)) return false;
          pending.clear();
        }
      }
    }
  }
  return pending.empty() || sink(pending);
}

namespace {
// Present while an inventory is under way: blob_store_attach() records the
// new id before the walk, so after a crash or a lost connection in the
// middle it would answer true for a store only partly described. The marker
// makes the next attempt (or the next start) walk again; blob_inventory()
// is idempotent.
fs::path marker_path(const fs::path& root) { return root / ".inventory-pending"; }

bool set_marker(const fs::path& root, bool on) {
  fs::path m = marker_path(root);
  if (on) {
    int fd = ::open(m.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return false;
    }
    ::close(fd);
  } else if (::unlink(m.c_str()) != 0 && errno != ENOENT) {
    return false;
  }
  int dfd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool ok = dfd >= 0 && ::fsync(dfd) == 0;
  if (dfd >= 0) ::close(dfd);
  return ok;
}

// One attempt; false when it must be tried again (or stopped).
bool attach_once(NodeDb& db, Stopper& stop, const fs::path& root, const std::string& id,
                 std::size_t batch) {
  DbResult r = db.call("SELECT " + db.fn("blob_store_attach") + "($1)", {id});
  if (!r.ok) {
    CRAWLER_LOG(error) << "file sync: blob_store_attach(" << id << ") failed: " << r.sqlstate << " "
                       << r.error;
    return false;
  }
  std::error_code ec;
  bool pending = fs::exists(marker_path(root), ec);
  if (r.rows.size() == 1 && r.rows[0][0] == Param("t") && !pending) {
    CRAWLER_LOG(info) << "file sync: store " << id << " at " << root.string()
                      << " attached; the node's tables describe it";
    return true;
  }
  CRAWLER_LOG(info) << "file sync: "
                    << (pending ? "an inventory was interrupted"
                                : "the node's tables describe another store or none")
                    << "; taking the inventory of " << root.string() << " (store " << id << ")";
  if (!set_marker(root, true)) {
    CRAWLER_LOG(error) << "file sync: cannot write " << marker_path(root).string() << ": "
                       << std::strerror(errno);
    return false;
  }
  auto started = std::chrono::steady_clock::now();
  WalkFigures fig;
  std::uint64_t recorded = 0;
  bool ok = walk_store(root, batch, [&](std::vector<StoredBlob>& blobs) {
    if (stop.stopped()) return false;
    PgArrayLiteral shas, sizes;
    for (const auto& b : blobs) {
      shas.add_text(b.sha256);
      sizes.add_bigint(static_cast<std::int64_t>(b.size));
    }
    DbResult ir = db.call("SELECT " + db.fn("blob_inventory") + "($1::text[], $2::bigint[])",
                          {shas.str(), sizes.str()});
    if (!ir.ok) {
      CRAWLER_LOG(error) << "file sync: blob_inventory of " << blobs.size() << " blobs failed: "
                         << ir.sqlstate << " " << ir.error;
      return false;
    }
    if (!ir.rows.empty() && ir.rows[0][0]) recorded += std::stoull(*ir.rows[0][0]);
    CRAWLER_LOG(debug) << "file sync: inventory so far: " << fig.blobs << " blobs";
    return true;
  }, &fig);
  if (!ok) return false;
  DbResult rq = db.call("SELECT " + db.fn("blob_requeue_missing") + "()");
  if (!rq.ok) {
    CRAWLER_LOG(error) << "file sync: blob_requeue_missing failed: " << rq.sqlstate << " " << rq.error;
    return false;
  }
  if (!set_marker(root, false))
    CRAWLER_LOG(warn) << "file sync: cannot remove " << marker_path(root).string()
                      << "; the next start takes the inventory again";
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CRAWLER_LOG(info) << "file sync: inventory of store " << id << " done in " << secs << " s: "
                    << fig.blobs << " blobs (" << fig.bytes << " bytes) found, " << recorded
                    << " recorded, " << fig.duplicates << " duplicates and " << fig.ignored
                    << " other entries ignored; "
                    << (rq.rows.empty() || !rq.rows[0][0] ? "?" : *rq.rows[0][0])
                    << " blobs that rows reference and the store lacks newly queued to be fetched";
  return true;
}
}  // namespace

bool attach_store(NodeDb& db, Stopper& stop, const fs::path& root, const std::string& store_id,
                  std::size_t batch) {
  std::chrono::milliseconds backoff(1000);
  while (db.ensure(stop)) {
    if (attach_once(db, stop, root, store_id, batch)) return true;
    if (!stop.sleep_for(backoff)) return false;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
  }
  return false;
}

}  // namespace crawler::agent
