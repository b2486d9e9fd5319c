#include "crawler/agent/orphan_sweep.hpp"

#include <nlohmann/json.hpp>

#include <set>

#include "crawler/agent/node_db.hpp"
#include "crawler/agent/peer_client.hpp"
#include "crawler/agent/store_ops.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/store.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void RecentPuts::note(const std::string& sha256) {
  std::lock_guard<std::mutex> lock(m_);
  auto now = Clock::now();
  seen_[sha256] = now;
  if (now - pruned_ > window_) {
    for (auto it = seen_.begin(); it != seen_.end();)
      it = now - it->second > window_ ? seen_.erase(it) : std::next(it);
    pruned_ = now;
  }
}

bool RecentPuts::noted_locked(const std::string& sha256) const {
  auto it = seen_.find(sha256);
  return it != seen_.end() && Clock::now() - it->second <= window_;
}

bool RecentPuts::is_recent(const std::string& sha256) {
  std::lock_guard<std::mutex> lock(m_);
  return noted_locked(sha256);
}

void RecentPuts::forget_recorded(const std::vector<std::string>& sha256s, Clock::time_point noted_by) {
  std::lock_guard<std::mutex> lock(m_);
  for (const auto& sha : sha256s) {
    auto it = seen_.find(sha);
    if (it != seen_.end() && it->second <= noted_by) seen_.erase(it);
  }
}

bool RecentPuts::remove_unless_recent(const std::string& sha256, const std::function<void()>& remove) {
  std::lock_guard<std::mutex> lock(m_);
  if (noted_locked(sha256)) return false;
  remove();
  return true;
}

std::string referenced_request(const std::vector<std::string>& sha256s) {
  return nlohmann::json{{"sha256", sha256s}}.dump();
}

std::optional<std::vector<std::string>> parse_referenced_reply(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("referenced") || !j["referenced"].is_array())
    return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : j["referenced"]) {
    if (!e.is_string()) return std::nullopt;
    out.push_back(e.get<std::string>());
  }
  return out;
}

namespace {
constexpr int kBatch = 1000;

// One round; whether to go on at once (a full batch and some removed:
// more are waiting; a full batch of kept ones would come back unchanged).
bool sweep_once(const AgentConfig& config, const FileStore& store, NodeDb& db, PeerClient& client,
               const std::string& peer, RecentPuts& recent, SyncStats& stats) {
  DbResult r = db.call("SELECT sha256 FROM " + db.fn("blob_orphans") + "($1::interval, $2)",
                       {pg_interval_seconds(config.orphan_grace_s), std::to_string(kBatch)});
  if (!r.ok) {
    CRAWLER_LOG(error) << "file sync: blob_orphans failed: " << r.sqlstate << " " << r.error;
    return false;
  }
  std::vector<std::string> candidates;
  for (std::size_t i = 0; i < r.rows.size(); ++i) candidates.push_back(r.at(i, "sha256").value_or(""));
  if (candidates.empty()) return false;
  std::string url = peer + "/api/blobs/referenced";
  Reply reply = client.post_json(url, referenced_request(candidates));
  auto referenced = reply.status == 200 ? parse_referenced_reply(reply.body) : std::nullopt;
  if (!referenced) {
    CRAWLER_LOG(warn) << "file sync: orphan sweep: " << candidates.size()
                      << " candidates kept: the peer's agent did not answer which it references ("
                      << (reply.status ? "POST " + url + ": HTTP " + std::to_string(reply.status) + " " +
                                             one_line(reply.body, 200)
                                       : "POST " + url + ": " + reply.error)
                      << ")";
    return false;
  }
  std::set<std::string> there(referenced->begin(), referenced->end());
  int removed = 0, kept_peer = 0, kept_here = 0;
  for (const auto& sha : candidates) {
    if (there.count(sha)) {
      ++kept_peer;
      continue;
    }
    // Uploaded again and not yet recorded: its row must not go (the
    // queued record would otherwise be the only thing between the file
    // and the next sweep).
    if (recent.is_recent(sha)) {
      ++kept_here;
      continue;
    }
    DbResult d = db.call("SELECT " + db.fn("blob_removed") + "($1)", {sha});
    if (!d.ok) {
      CRAWLER_LOG(error) << "file sync: blob_removed(" << sha << ") failed: " << d.sqlstate << " " << d.error;
      if (d.sqlstate == "08006") break;
      continue;
    }
    if (d.rows.size() != 1 || d.rows[0][0] != Param("t")) {
      ++kept_here;
      continue;
    }
    // ha_blobs no longer lists it: from here on a new row naming it queues
    // it wanted, so the file may go.
    auto file = store.find(sha);
    if (!file) continue;
    std::string error;
    bool ok = true;
    bool gone = recent.remove_unless_recent(sha, [&] { ok = remove_durably(*file, &error); });
    if (!gone) {
      CRAWLER_LOG(info) << "file sync: orphan " << sha << " was uploaded again meanwhile: kept";
      continue;
    }
    if (!ok) {
      CRAWLER_LOG(error) << "file sync: orphan sweep: " << error;
      continue;
    }
    ++removed;
    stats.orphans_removed++;
    CRAWLER_LOG(debug) << "file sync: orphan " << sha << " removed (" << file->string() << ")";
  }
  CRAWLER_LOG(info) << "file sync: orphan sweep: " << candidates.size() << " candidates, " << removed
                    << " removed, " << kept_peer << " kept (the peer's rows reference them), " << kept_here
                    << " kept (referenced or uploaded here meanwhile)";
  return candidates.size() == static_cast<std::size_t>(kBatch) && removed > 0;
}
}  // namespace

void run_orphan_sweep(const AgentConfig& config, const FileStore& store, NodeView& view, TokenFile& token,
                      RecentPuts& recent, Stopper& stop, SyncStats& stats) {
  try {
    NodeDb db(config.db, "orphan sweep");
    PeerSettings ps;
    ps.ca_file = config.ca_file;
    ps.timeout_ms = config.peer_timeout_ms;
    PeerClient client(ps, token, stop);
    auto every = std::chrono::seconds(std::max(1, config.orphan_sweep_s));
    bool no_peer_logged = false;
    while (stop.sleep_for(every)) {
      if (!stats.attached || !db.ensure(stop)) continue;
      std::string peer = view.peer_url();
      if (peer.empty()) {
        if (!no_peer_logged)
          CRAWLER_LOG(info) << "file sync: orphan sweep skipped: no peer agent known to ask (nothing is removed "
                               "without its answer)";
        no_peer_logged = true;
        continue;
      }
      no_peer_logged = false;
      // Full batches mean more are waiting: go on at once.
      while (!stop.stopped() && sweep_once(config, store, db, client, peer, recent, stats)) {
      }
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: the orphan sweep thread ended: " << e.what();
  }
}

}  // namespace crawler::agent
