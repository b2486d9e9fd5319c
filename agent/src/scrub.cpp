#include "crawler/agent/scrub.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "crawler/agent/node_db.hpp"
#include "crawler/agent/store_ops.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kPiece = 256 * 1024;
constexpr int kBatch = 100;
// After a whole pass over a store that small, wait before the next: a store
// of a few blobs is not re-hashed in a loop.
constexpr auto kPassPause = std::chrono::seconds(60);
}  // namespace

std::optional<std::string> paced_sha256(const fs::path& file, Pacer& pacer, Stopper& stop, std::string* error,
                                        std::uint64_t* bytes) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  // Tell the kernel not to keep what the scrub reads: it would push the
  // crawl's hot pages out of the cache.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Sha256 md;
  std::vector<char> buf(kPiece);
  off_t done = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    md.update(buf.data(), static_cast<std::size_t>(n));
    *bytes += static_cast<std::uint64_t>(n);
    ::posix_fadvise(fd, done, n, POSIX_FADV_DONTNEED);
    done += n;
    auto wait = pacer.account(static_cast<std::uint64_t>(n), Pacer::Clock::now());
    if (wait.count() > 0 && !stop.sleep_for(wait)) {
      error->clear();
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  return md.hex_digest();
}

std::optional<std::string> check_blob(const FileStore& store, const std::string& sha256, std::uint64_t size,
                                      Pacer& pacer, Stopper& stop, std::uint64_t* bytes) {
  auto file = store.find(sha256);
  if (!file) return std::string("the file is missing from the store");
  std::error_code ec;
  std::uint64_t have = fs::file_size(*file, ec);
  if (ec) return "cannot stat " + file->string() + ": " + ec.message();
  // A wrong size is a wrong hash; no need to read it.
  if (have != size)
    return file->string() + " has " + std::to_string(have) + " bytes, " + std::to_string(size) + " expected";
  std::string error;
  auto got = paced_sha256(*file, pacer, stop, &error, bytes);
  if (!got) {
    if (error.empty()) return std::nullopt;  // stopped
    return "cannot read " + file->string() + ": " + error;
  }
  if (*got != sha256) return file->string() + " hashes to " + *got;
  return std::string();
}

void run_scrub(const AgentConfig& config, const FileStore& store, Stopper& stop, SyncStats& stats) {
  if (config.scrub_bytes_per_second == 0) {
    CRAWLER_LOG(info) << "file sync: scrub disabled (scrub_bytes_per_second = 0)";
    return;
  }
  try {
    NodeDb db(config.db, "scrub");
    Pacer pacer(config.scrub_bytes_per_second);
    std::set<std::string> pass;  // verified in this pass
    auto pass_started = std::chrono::steady_clock::now();
    std::string pass_began;  // the database's time at the pass's start less scrub_min_age_s: what was hashed since is left out
    std::uint64_t pass_bytes = 0;
    while (!stop.stopped()) {
      if (!stats.attached) {
        stop.sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (!db.ensure(stop)) break;
      if (pass_began.empty()) {
        // Less the minimum age: a blob hashed on arrival a moment ago waits
        // for a later pass.
        DbResult t = db.call("SELECT (now() - make_interval(secs => $1))::text",
                             {std::to_string(config.scrub_min_age_s)});
        if (!t.ok || t.rows.empty() || !t.rows[0][0]) {
          CRAWLER_LOG(error) << "file sync: scrub: cannot read the database's time: " << t.sqlstate << " " << t.error;
          stop.sleep_for(std::chrono::seconds(5));
          continue;
        }
        pass_began = *t.rows[0][0];
      }
      DbResult r = db.call("SELECT sha256, size FROM " + db.fn("blob_scrub_next") + "($1, $2::timestamptz)",
                           {std::to_string(kBatch), pass_began});
      if (!r.ok) {
        CRAWLER_LOG(error) << "file sync: blob_scrub_next failed: " << r.sqlstate << " " << r.error;
        stop.sleep_for(std::chrono::seconds(5));
        continue;
      }
      // Nothing verified before the pass began is left (or the next was
      // verified in this pass and its record failed): the pass is over.
      if (r.rows.empty() || pass.count(r.at(0, "sha256").value_or(""))) {
        if (!pass.empty()) {
          double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_started).count();
          CRAWLER_LOG(info) << "file sync: scrub pass done: " << pass.size() << " blobs, " << pass_bytes
                            << " bytes re-hashed in " << secs << " s";
        }
        pass.clear();
        pass_began.clear();
        pass_bytes = 0;
        if (!stop.sleep_for(kPassPause)) break;
        pass_started = std::chrono::steady_clock::now();
        continue;
      }
      for (std::size_t i = 0; i < r.rows.size() && !stop.stopped(); ++i) {
        std::string sha = r.at(i, "sha256").value_or("");
        if (pass.count(sha)) continue;
        std::uint64_t size = std::stoull(r.at(i, "size").value_or("0")), bytes = 0;
        auto verdict = check_blob(store, sha, size, pacer, stop, &bytes);
        pass_bytes += bytes;
        stats.bytes_scrubbed += bytes;
        if (!verdict) break;  // stopped
        pass.insert(sha);
        stats.blobs_scrubbed++;
        if (verdict->empty()) {
          DbResult v = db.call("SELECT " + db.fn("blob_verified") + "($1)", {sha});
          if (!v.ok) CRAWLER_LOG(error) << "file sync: blob_verified(" << sha << ") failed: " << v.error;
          continue;
        }
        stats.corrupt_found++;
        std::string detail = *verdict;
        if (auto file = store.find(sha)) {
          std::string why;
          fs::path aside = move_aside(store.root(), *file, &why);
          detail += aside.empty() ? "; " + why : "; moved to " + aside.string();
        }
        CRAWLER_LOG(error) << "file sync: scrub: blob " << sha << " is bad: " << detail;
        DbResult c = db.call("SELECT " + db.fn("blob_corrupt") + "($1, $2)", {sha, detail});
        if (!c.ok)
          CRAWLER_LOG(error) << "file sync: blob_corrupt(" << sha << ") failed: " << c.sqlstate << " " << c.error;
        else
          CRAWLER_LOG(info) << "file sync: scrub: " << sha
                            << (c.rows.size() == 1 && c.rows[0][0] == Param("t")
                                    ? " is wanted again: the follower fetches it from the peer"
                                    : " is referenced by no row here: not fetched again");
      }
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: the scrub thread ended: " << e.what();
  }
}

}  // namespace crawler::agent
