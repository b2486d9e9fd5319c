// The replication lag of the last hour, as this node saw it: what the
// dashboard's lag graph draws (GET /api/lag-history). The database keeps
// only the lag of now (ha_status()), so the agent samples it every few
// seconds and keeps the samples in memory; a restart starts a new history,
// which is all a graph of the last hour needs.
#pragma once
#include <utility>  // asio/awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace crawler::agent {

struct ServerState;

// One reading of this node's row of ha_status(). The lag is measured on
// the primary only: on a standby (or a node without a peer) both are
// unset, and the graph shows a gap there.
struct LagSample {
  std::int64_t at = 0;  // Unix time, seconds
  std::optional<double> lag_seconds;
  std::optional<std::int64_t> lag_bytes;
};

// The samples of a sliding window, oldest first. Thread-safe: the sampler
// adds on the loop while any connection reads.
class LagHistory {
 public:
  // An hour of samples taken every kSampleInterval.
  static constexpr std::chrono::seconds kSampleInterval{5};
  static constexpr std::int64_t kWindowSeconds = 3600;
  static constexpr std::size_t kMaxSamples = kWindowSeconds / 5;

  // Keeps at most `max_samples` samples of the last `window_seconds`
  // (both at least 1).
  explicit LagHistory(std::size_t max_samples = kMaxSamples, std::int64_t window_seconds = kWindowSeconds);

  // Appends `sample`, then drops what fell out of the window measured from
  // its time and, beyond max_samples, the oldest. A sample older than the
  // newest kept means the wall clock was set back: the kept samples later
  // than it are dropped, so that the history stays in time order.
  void add(const LagSample& sample);

  // The samples no older than the window measured from `now` (Unix
  // seconds), oldest first.
  std::vector<LagSample> samples(std::int64_t now) const;

  // {"samples": [{"at", "lag_seconds", "lag_bytes"}...]} of samples(now),
  // an unset lag as null.
  nlohmann::json to_json(std::int64_t now) const;

 private:
  const std::size_t max_samples_;
  const std::int64_t window_seconds_;
  mutable std::mutex mutex_;
  std::deque<LagSample> samples_;
};

// Feeds `state->lag_history` until the server stops: every
// LagHistory::kSampleInterval one SQL call as the reader role reads this
// node's lag from ha_status(). A failed call (the database down) records
// nothing. Ends when state->stopping is set and `timer` is cancelled (the
// server's stop() does both); runs on `timer`'s executor.
boost::asio::awaitable<void> run_lag_sampler(std::shared_ptr<ServerState> state,
                                             std::shared_ptr<boost::asio::steady_timer> timer);

}  // namespace crawler::agent
