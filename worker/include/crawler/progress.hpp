// What the crawl and run commands show of a crawl: the live line, the
// summary at the end, the service's periodic line.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crawler/crawler.hpp"
#include "crawler/early_fetch.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

// 1234567 -> "1.2 MB" (powers of 1000).
std::string human_bytes(double bytes);

// Rates over the last few seconds, not since the start (a crawl that slows
// down shows it): this worker's pages and images per second, and the
// session's URLs ended per second (every worker's, done or failed), from
// samples of the counters as the live line is made.
class RecentRates {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RecentRates(Clock::duration window = std::chrono::seconds(10)) : window_(window) {}
  // A sample taken at `now`: this worker's counters and the session's.
  void add(Clock::time_point now, const CrawlStats& mine, const SessionStatus& session);
  // Per second between the oldest sample still in the window and the
  // newest; 0 before two samples.
  double pages_per_s() const { return per_s(&Sample::pages); }
  double images_per_s() const { return per_s(&Sample::images); }
  double session_urls_per_s() const { return per_s(&Sample::ended); }

 private:
  struct Sample {
    Clock::time_point at;
    double pages, images, ended;
  };
  double per_s(double Sample::*field) const;
  Clock::duration window_;
  std::vector<Sample> samples_;  // oldest first, within the window (plus one before it)
};

// `secs` as "12 s", "4 min 10 s" or "2 h 5 min"; "" when negative, not a
// number, or over 100 days (no estimate worth showing).
std::string duration_text(double secs);

// How long the URLs now in the frontier (queued and leased) take at
// `urls_per_s`, as "12 s", "4 min 10 s" or "2 h 5 min"; "" when it cannot
// be estimated (nothing left, or no rate yet). It is a floor while pages
// still add links.
std::string eta_text(const SessionStatus& session, double urls_per_s);

// The live line: the session's counters (every worker's, from the database:
// errors are URLs failed for good, retries the failures that are tried
// again later), this worker's rates over the last seconds, the frontier's
// estimate of the time left; with --storage-agent what waits for the agent
// when anything does.
std::string progress_line(const SessionStatus& session, const RecentRates& rates, bool db_connected,
                          const std::optional<UploadBacklog>& uploads = std::nullopt);

// A URL of the session that failed for good, and why (crawl_frontier's
// last_error).
struct FailedUrl {
  std::string url, error;
};

// What the crawl command's summary is made of.
struct SummaryInput {
  std::int64_t session = 0;
  SessionStatus last;              // the session's counters, every worker's
  SessionTally mine;               // this worker's part of them
  double seconds = 0;
  bool interrupted = false;
  std::vector<FailedUrl> failures;  // the most recent failed URLs (at most 20)
  std::vector<std::string> seeds;   // normalised, to name a seed that failed
  CrawlStats stats;                 // this worker's responses by status, failures by kind
};
// The summary the crawl command prints when it ends: the session's counts,
// why its URLs failed (failure_lines()), this worker's counts and, when they
// differ from the session's, why (counts_explanation()).
std::string crawl_summary(const SummaryInput& in);
// Why URLs failed: "  1 URL failed: REASON" for one, else the reasons of the
// most recent ones, most frequent first, with how many URLs gave each; a
// seed that failed says so, and whether its host could not be reached.
// "" when nothing failed.
std::string failure_lines(long long failed, const std::vector<FailedUrl>& recent,
                          const std::vector<std::string>& seeds);
// Why the session's pages fetched and images stored differ from this
// worker's: other workers or earlier runs of the session added to them, or
// this worker recorded images the images table already held (the session
// counts new rows only). One indented line per difference; "" when equal.
std::string counts_explanation(const SessionStatus& session, const SessionTally& mine);
// This worker's responses by HTTP status and failures by kind, most
// frequent first: "  responses       200: 150, 404: 2, none: 1\n" and
// "  failures        http 2, timeout 1 (retries included)\n"; a line only
// when it has something.
std::string breakdown_lines(const CrawlStats& mine);
// The crawl's statistics as one JSON object (--stats-json): the session's
// counters and success rate, this worker's counts, its responses by status
// and failures by kind, the early fetches, the seconds it took.
std::string stats_json(const SummaryInput& in, const EarlyFetchStats& early);

// The service's line of what it has done so far (and, with
// --storage-agent, the uploads waiting and their bytes in the spool).
std::string service_line(const CrawlStats& mine, std::size_t leases_held, std::size_t writes_pending,
                         const std::optional<UploadBacklog>& uploads = std::nullopt);
// "uploads 3 (1.2 MB spooled)", with "[agent unavailable]" while no agent
// answers; "" when nothing waits and the agent is fine.
std::string upload_text(const UploadBacklog& uploads);

// Shows the live line: on a terminal as the status line of the log
// (log.hpp: log lines are written above it), at most every 500 ms and cut
// to the terminal's width; otherwise logged every 10 s.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool tty) : tty_(tty) {}
  void show(const std::string& line);
  // Ends the line on a terminal; nothing once it has ended.
  void end();

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace crawler
