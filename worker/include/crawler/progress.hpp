// What the crawl and run commands show of a crawl: the live line, the
// summary at the end, the service's periodic line.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "crawler/crawler.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

// 1234567 -> "1.2 MB" (powers of 1000).
std::string human_bytes(double bytes);
// The live line: the session's counters (every worker's, from the database)
// and this worker's rates over `seconds`; with --storage-agent what waits
// for the agent when anything does.
std::string progress_line(const SessionStatus& session, const CrawlStats& mine, double seconds, bool db_connected,
                          const std::optional<UploadBacklog>& uploads = std::nullopt);
// The summary the crawl command prints when it ends.
std::string crawl_summary(std::int64_t session, const SessionStatus& last, const CrawlStats& mine, double seconds,
                          bool interrupted);
// The service's line of what it has done so far (and, with
// --storage-agent, the uploads waiting and their bytes in the spool).
std::string service_line(const CrawlStats& mine, std::size_t leases_held, std::size_t writes_pending,
                         const std::optional<UploadBacklog>& uploads = std::nullopt);
// "uploads 3 (1.2 MB spooled)", with "[agent unavailable]" while no agent
// answers; "" when nothing waits and the agent is fine.
std::string upload_text(const UploadBacklog& uploads);

// Shows the live line: on a terminal in place, at most every 500 ms;
// otherwise logged every 10 s.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool tty) : tty_(tty) {}
  void show(const std::string& line);
  // Ends the line on a terminal.
  void end();

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace crawler
