// Early fetches: the links a page led to, fetched while their enqueue
// commits, before the frontier has leased them. On a site that is deep
// rather than wide each level of links otherwise waits for two database
// transactions (the links queued, the claim) before its first byte is
// asked for; early, the next level's transfers run during them.
//
// The frontier still decides: right behind the links' enqueue the worker
// asks for the leases of what it fetches early (crawl_lease_early(), which
// applies the hosts' politeness); an early result is used only by a lease
// for the same session, kind and URL (the item then takes it as if it had
// fetched it now: its redirects, robots.txt per hop, its outcome and its
// write are the same). What the frontier does not lease to this worker is
// dropped at its answer, and any result no lease took within kKeep (with
// its file). What may be fetched early is the caller's rule
// (Crawler::fetch_early): politeness must allow it.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "crawler/fetch_result.hpp"
#include "crawler/fetcher.hpp"
#include "crawler/store.hpp"

namespace crawler {

struct EarlyFetchStats {
  std::uint64_t started = 0, used = 0, dropped = 0;
};
// "early fetches: N started, N used by leases, N dropped (...)", the line
// both commands log at their end ("" when none was started).
std::string early_fetch_line(const EarlyFetchStats& s);

class EarlyFetches {
 public:
  // A result handed to its item: the transfer's result and, for an image,
  // the file its body went to (null for a page).
  using Taker = std::function<void(FetchResult&&, std::shared_ptr<PendingFile>)>;
  // How long a finished early result waits for its lease.
  static constexpr std::chrono::seconds kKeep{10};

  EarlyFetches(boost::asio::io_context& io, Fetcher& fetcher, std::size_t max_held);
  ~EarlyFetches();
  EarlyFetches(const EarlyFetches&) = delete;
  EarlyFetches& operator=(const EarlyFetches&) = delete;

  // Starts `req` (its url, of `kind`, for `session`), its body into `file`
  // for an image (null for a page). False, and nothing started, when that
  // URL is held already or max_held early fetches are held.
  bool start(std::int64_t session, const std::string& kind, FetchRequest req, std::shared_ptr<PendingFile> file);
  // For an item leased for (session, kind, url): hands it the early fetch
  // of that URL, taking it out of here. `take` runs on the loop, never
  // within this call: when the transfer ends, or soon if it has. False when
  // there is none.
  bool take(std::int64_t session, const std::string& kind, const std::string& url, Taker take);
  // The early fetch of `url` for `session` is not wanted (the frontier did
  // not lease it to this worker): dropped, its transfer's result ignored.
  void drop(std::int64_t session, const std::string& url);
  // Early fetches of `host_key` held here and not yet taken by a lease.
  std::size_t held_on(const std::string& host_key) const;
  std::size_t held() const { return held_.size(); }
  const EarlyFetchStats& stats() const { return stats_; }
  // Every held result is dropped (the transfers ended by the fetcher's
  // cancel_all; a taker already waiting still gets its result).
  void clear();

 private:
  struct Held {
    std::string host;
    std::shared_ptr<PendingFile> file;
    std::optional<FetchResult> result;  // set once the transfer ended
    Taker taker;                        // set once its lease came
    std::chrono::steady_clock::time_point done_at;
  };
  static std::string key(std::int64_t session, const std::string& kind, const std::string& url);
  void finished(const std::string& key, FetchResult&& r);
  void sweep();

  boost::asio::io_context& io_;
  Fetcher& fetcher_;
  std::size_t max_held_;
  std::unordered_map<std::string, Held> held_;
  boost::asio::steady_timer sweep_timer_;
  bool sweeping_ = false;
  EarlyFetchStats stats_;
};

}  // namespace crawler
