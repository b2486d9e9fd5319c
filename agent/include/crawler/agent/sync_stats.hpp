// The agent's own file sync figures, merged into GET /api/file-sync/status
// beside the database's: what only the agent knows (transfers in flight,
// bytes moved since it started).
#pragma once
#include <atomic>
#include <cstdint>

namespace crawler::agent {

struct SyncStats {
  std::atomic<bool> db_connected{false};
  std::atomic<bool> attached{false};
  std::atomic<int> fetches_in_flight{0};
  std::atomic<int> replications_in_flight{0};
  std::atomic<std::uint64_t> blobs_fetched{0}, bytes_fetched{0}, fetch_failures{0};
  std::atomic<std::uint64_t> blobs_replicated{0}, replication_failures{0}, replications_degraded{0};
  std::atomic<std::uint64_t> blobs_scrubbed{0}, bytes_scrubbed{0}, corrupt_found{0};
  std::atomic<std::uint64_t> orphans_removed{0};
  std::atomic<std::uint64_t> puts_recorded{0}, puts_dropped{0};
};

}  // namespace crawler::agent
