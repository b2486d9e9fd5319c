// The orphan sweep: removes blobs that no row on either node references,
// after a grace period. This node's database names its candidates
// (blob_orphans), the peer's agent says which of them a row there still
// references (POST /api/blobs/referenced), and blob_removed() makes the
// final, locked decision for each. When the peer cannot be asked nothing
// is removed: its rows may need the blob.
#pragma once
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crawler/agent/config.hpp"
#include "crawler/agent/node_view.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/sync_stats.hpp"
#include "crawler/agent/token_file.hpp"

namespace crawler {
class FileStore;
}

namespace crawler::agent {

// Keeps a blob that was just uploaded from being unlinked by a sweep that
// decided before the upload was recorded (blob_stored is batched): uploads
// note the blob here until their record commits, the sweep passes over
// noted blobs before it asks blob_removed(), and it unlinks under the same
// lock only blobs not noted (an upload that lands between the two).
class RecentPuts {
 public:
  explicit RecentPuts(std::chrono::seconds window = std::chrono::minutes(10)) : window_(window) {}
  void note(const std::string& sha256);
  // Whether `sha256` was noted within the window.
  bool is_recent(const std::string& sha256);
  // Drops the notes of uploads that were noted at or before `noted_by` and
  // are now recorded in ha_blobs: from then on the row's last_put_at keeps
  // them through the grace period. An upload noted again later stays.
  void forget_recorded(const std::vector<std::string>& sha256s, std::chrono::steady_clock::time_point noted_by);
  // Runs `remove` (under the lock) unless `sha256` was noted within the
  // window; false when it was kept.
  bool remove_unless_recent(const std::string& sha256, const std::function<void()>& remove);

 private:
  // Noted within the window; m_ held.
  bool noted_locked(const std::string& sha256) const;
  std::chrono::seconds window_;
  std::mutex m_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> seen_;
  std::chrono::steady_clock::time_point pruned_{};
};

// The JSON the peer is asked: {"sha256": [...]}.
std::string referenced_request(const std::vector<std::string>& sha256s);
// The peer's answer {"referenced": [...]}; nullopt when it is not that.
std::optional<std::vector<std::string>> parse_referenced_reply(const std::string& body);

// The sweep thread's whole life: returns when stopped.
void run_orphan_sweep(const AgentConfig& config, const FileStore& store, NodeView& view, TokenFile& token,
                      RecentPuts& recent, Stopper& stop, SyncStats& stats);

}  // namespace crawler::agent
