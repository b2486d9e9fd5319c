#include "crawler/progress.hpp"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "crawler/log.hpp"

namespace crawler {

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u ? 1 : 0) << b << " " << units[u];
  return o.str();
}

std::string upload_text(const UploadBacklog& u) {
  if (u.uploads == 0 && !u.agent_down) return "";
  std::string text = "uploads " + std::to_string(u.uploads) + " (" + human_bytes(static_cast<double>(u.bytes)) +
                     " spooled)";
  if (u.agent_down) text += " [agent unavailable]";
  return text;
}

std::string progress_line(const SessionStatus& r, const CrawlStats& st, double secs, bool db_connected,
                          const std::optional<UploadBacklog>& uploads) {
  std::ostringstream line;
  line << "pages " << r.pages_fetched << " (" << std::fixed << std::setprecision(1) << st.pages / secs
       << "/s)  images " << r.images_stored << " (" << st.images / secs << "/s)  "
       << human_bytes(static_cast<double>(r.bytes_stored)) << "  queue " << r.queued << "  leased " << r.leased
       << "  errors " << r.errors;
  if (uploads)
    if (std::string u = upload_text(*uploads); !u.empty()) line << "  " << u;
  line << (db_connected ? "" : "  [database reconnecting]");
  return line.str();
}

std::string crawl_summary(std::int64_t session, const SessionStatus& last, const CrawlStats& st, double secs,
                          bool interrupted) {
  std::ostringstream sum;
  sum << "session " << session << ": " << (last.status.empty() ? "?" : last.status) << " in " << std::fixed
      << std::setprecision(2) << secs << " s\n"
      << "  pages fetched   " << last.pages_fetched << "\n"
      << "  images stored   " << last.images_stored << " of " << last.images_found << " found\n"
      << "  bytes stored    " << human_bytes(static_cast<double>(last.bytes_stored)) << "\n"
      << "  failed URLs     " << last.failed << " (errors " << last.errors << ", retries " << last.retries << ")\n"
      << "  this worker     " << st.pages << " pages, " << st.images << " images, "
      << human_bytes(static_cast<double>(st.bytes)) << ", " << std::setprecision(1)
      << (st.pages + st.images) / std::max(secs, 0.001) << " URLs/s\n";
  if (interrupted) sum << "  interrupted: the session is still running; `crawler-worker run` continues it\n";
  return sum.str();
}

std::string service_line(const CrawlStats& s, std::size_t leases_held, std::size_t writes_pending,
                         const std::optional<UploadBacklog>& uploads) {
  std::ostringstream line;
  line << "so far: " << s.pages << " pages, " << s.images << " images, " << human_bytes(static_cast<double>(s.bytes))
       << ", " << s.errors << " errors, " << leases_held << " leases held, " << writes_pending << " writes pending";
  if (uploads)
    line << ", " << uploads->uploads << " uploads pending (" << human_bytes(static_cast<double>(uploads->bytes))
         << " spooled)" << (uploads->agent_down ? ", agent unavailable" : "");
  return line.str();
}

void ProgressDisplay::show(const std::string& line) {
  auto now = std::chrono::steady_clock::now();
  if (tty_ && now - last_ >= std::chrono::milliseconds(500)) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    last_ = now;
  } else if (!tty_ && now - last_ >= std::chrono::seconds(10)) {
    CRAWLER_LOG(info) << line;
    last_ = now;
  }
}

void ProgressDisplay::end() {
  if (tty_) std::fputs("\n", stderr);
}

}  // namespace crawler
