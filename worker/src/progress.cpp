#include "crawler/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
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

void RecentRates::add(Clock::time_point now, const CrawlStats& mine, const SessionStatus& session) {
  samples_.push_back(Sample{now, static_cast<double>(mine.pages), static_cast<double>(mine.images),
                            static_cast<double>(session.done + session.failed)});
  // Keep one sample older than the window, so that the rate spans all of it.
  while (samples_.size() > 2 && now - samples_[1].at >= window_) samples_.erase(samples_.begin());
}

double RecentRates::per_s(double Sample::*field) const {
  if (samples_.size() < 2) return 0;
  const Sample& a = samples_.front();
  const Sample& b = samples_.back();
  double secs = std::chrono::duration<double>(b.at - a.at).count();
  if (secs <= 0) return 0;
  return std::max(0.0, (b.*field - a.*field) / secs);
}

std::string duration_text(double secs) {
  if (!(secs >= 0) || secs > 100.0 * 24 * 3600) return "";  // no estimate worth showing
  auto whole = static_cast<long long>(secs + 0.5);
  std::ostringstream t;
  if (whole < 60) t << whole << " s";
  else if (whole < 3600) t << whole / 60 << " min " << whole % 60 << " s";
  else t << whole / 3600 << " h " << (whole % 3600) / 60 << " min";
  return t.str();
}

std::string eta_text(const SessionStatus& s, double urls_per_s) {
  const long long left = s.queued + s.leased;
  if (left <= 0 || urls_per_s <= 0) return "";
  return duration_text(static_cast<double>(left) / urls_per_s);
}

std::string progress_line(const SessionStatus& r, const RecentRates& rates, bool db_connected,
                          const std::optional<UploadBacklog>& uploads) {
  std::ostringstream line;
  line << "pages " << r.pages_fetched << " (" << std::fixed << std::setprecision(1) << rates.pages_per_s()
       << "/s)  images " << r.images_stored << " (" << rates.images_per_s() << "/s)  "
       << human_bytes(static_cast<double>(r.bytes_stored)) << "  queue " << r.queued << "  leased " << r.leased
       << "  errors " << r.errors << "  retries " << r.retries;
  if (std::string eta = eta_text(r, rates.session_urls_per_s()); !eta.empty()) line << "  eta " << eta;
  if (uploads)
    if (std::string u = upload_text(*uploads); !u.empty()) line << "  " << u;
  line << (db_connected ? "" : "  [database reconnecting]");
  return line.str();
}

namespace {

// A re-crawl's known images: "  known images    3 changed, 40 unchanged, 7
// fresh (not fetched)\n"; "" when the session met none.
std::string known_images_line(const SessionStatus& s) {
  if (s.images_changed == 0 && s.images_unchanged == 0 && s.images_fresh == 0) return "";
  return "  known images    " + std::to_string(s.images_changed) + " changed, " + std::to_string(s.images_unchanged) +
         " unchanged, " + std::to_string(s.images_fresh) + " fresh (not fetched)\n";
}

std::string plural(long long n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// An error that says the host did not answer at all (curl's wording, and
// the robots.txt failure that wraps it).
bool unreachable(const std::string& error) {
  for (const char* s : {"Couldn't connect", "Couldn't resolve", "Timeout was reached", "is unavailable ("})
    if (error.find(s) != std::string::npos) return true;
  return false;
}

std::string seed_note(const FailedUrl& f, const std::vector<std::string>& seeds) {
  if (std::find(seeds.begin(), seeds.end(), f.url) == seeds.end()) return "";
  return unreachable(f.error) ? " (seed host unreachable: " + f.url + ")" : " (the seed " + f.url + ")";
}

}  // namespace

std::string failure_lines(long long failed, const std::vector<FailedUrl>& recent,
                          const std::vector<std::string>& seeds) {
  if (failed <= 0) return "";
  std::ostringstream out;
  if (recent.empty()) {
    out << "  " << plural(failed, "URL", "URLs") << " failed\n";
    return out.str();
  }
  if (failed == 1) {
    out << "  1 URL failed: " << recent.front().error << seed_note(recent.front(), seeds) << "\n";
    return out.str();
  }
  // The same reason for many URLs is said once, with its count; a seed's
  // failure is said on its own, it explains an empty crawl.
  std::vector<std::pair<std::string, long long>> reasons;
  std::map<std::string, std::size_t> at;
  std::vector<std::string> seed_lines;
  for (const auto& f : recent) {
    if (std::string note = seed_note(f, seeds); !note.empty()) {
      seed_lines.push_back(f.error + note);
      continue;
    }
    auto [it, fresh] = at.emplace(f.error, reasons.size());
    if (fresh) reasons.emplace_back(f.error, 0);
    ++reasons[it->second].second;
  }
  std::stable_sort(reasons.begin(), reasons.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  out << "  " << failed << " URLs failed"
      << (static_cast<long long>(recent.size()) < failed
              ? "; the reasons of the last " + std::to_string(recent.size()) + ":\n"
              : ":\n");
  for (const auto& s : seed_lines) out << "    1 URL: " << s << "\n";
  constexpr std::size_t kShown = 5;
  for (std::size_t i = 0; i < reasons.size() && i < kShown; ++i)
    out << "    " << plural(reasons[i].second, "URL", "URLs") << ": " << reasons[i].first << "\n";
  if (reasons.size() > kShown) out << "    (" << reasons.size() - kShown << " more reasons)\n";
  return out.str();
}

std::string counts_explanation(const SessionStatus& s, const SessionTally& mine) {
  std::ostringstream out;
  long long pages = s.pages_fetched - static_cast<long long>(mine.pages);
  if (pages > 0)
    out << "  other workers, or earlier runs of this session, fetched " << plural(pages, "more page", "more pages")
        << "\n";
  else if (pages < 0)
    out << "  the session counts " << plural(-pages, "page", "pages")
        << " fewer than this worker completed (completions the database had already recorded)\n";
  long long images = s.images_stored - static_cast<long long>(mine.images);
  if (images > 0)
    out << "  other workers, or earlier runs of this session, stored "
        << plural(images, "more image", "more images") << "\n";
  else if (images < 0)
    out << "  " << plural(-images, "image", "images") << " this worker recorded " << (images == -1 ? "was" : "were")
        << " already in the images table under the same URL (the session counts new rows only)\n";
  return out.str();
}

std::string crawl_summary(const SummaryInput& in) {
  const SessionStatus& last = in.last;
  std::ostringstream sum;
  sum << "session " << in.session << ": " << (last.status.empty() ? "?" : last.status) << " in " << std::fixed
      << std::setprecision(2) << in.seconds << " s\n"
      << "  pages fetched   " << last.pages_fetched << "\n"
      << "  images stored   " << last.images_stored << " of " << last.images_found << " found\n"
      << known_images_line(last)
      << "  bytes stored    " << human_bytes(static_cast<double>(last.bytes_stored)) << "\n"
      << "  failed URLs     " << last.failed << " (errors " << last.errors << ", retries " << last.retries << ")\n"
      << failure_lines(last.failed, in.failures, in.seeds) << "  this worker     " << in.mine.pages << " pages"
      << (in.stats.sitemaps > 0 ? " (" + std::to_string(in.stats.sitemaps) + " of them sitemaps)" : "") << ", "
      << in.mine.images << " images, " << human_bytes(static_cast<double>(in.mine.bytes)) << ", "
      << std::setprecision(1) << (in.mine.pages + in.mine.images) / std::max(in.seconds, 0.001) << " URLs/s\n"
      << counts_explanation(last, in.mine) << breakdown_lines(in.stats);
  if (last.success_rate)
    sum << "  success rate    " << std::setprecision(1) << *last.success_rate * 100 << " % (session)\n";
  if (in.interrupted) sum << "  interrupted: the session is still running; `crawler-worker run` continues it\n";
  return sum.str();
}

namespace {
// "a: 3, b: 1" from counts, most frequent first (then by key), at most
// `shown` entries and "(N more)".
template <typename Key>
std::string most_frequent(const std::map<Key, std::uint64_t>& counts, const std::function<std::string(const Key&)>& name,
                          const char* separator, std::size_t shown = 8) {
  std::vector<std::pair<Key, std::uint64_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::ostringstream o;
  for (std::size_t i = 0; i < v.size() && i < shown; ++i)
    o << (i ? ", " : "") << name(v[i].first) << separator << v[i].second;
  if (v.size() > shown) o << " (" << v.size() - shown << " more)";
  return o.str();
}

std::string status_name(const long& status) { return status == 0 ? "none" : std::to_string(status); }
std::string kind_name(const std::string& kind) { return kind; }
}  // namespace

std::string breakdown_lines(const CrawlStats& mine) {
  std::ostringstream out;
  if (!mine.statuses.empty())
    out << "  responses       "
        << most_frequent<long>(mine.statuses, status_name, ": ") << "\n";
  if (!mine.error_kinds.empty())
    out << "  failures        " << most_frequent<std::string>(mine.error_kinds, kind_name, " ")
        << " (retries included)\n";
  return out.str();
}

std::string stats_json(const SummaryInput& in, const EarlyFetchStats& early) {
  const SessionStatus& s = in.last;
  nlohmann::json j;
  j["session"] = in.session;
  j["status"] = s.status.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.status);
  j["seconds"] = in.seconds;
  j["interrupted"] = in.interrupted;
  j["session_counts"] = {{"pages_fetched", s.pages_fetched}, {"images_found", s.images_found},
                         {"images_stored", s.images_stored}, {"bytes_stored", s.bytes_stored},
                         {"errors", s.errors},               {"retries", s.retries},
                         {"queued", s.queued},               {"leased", s.leased},
                         {"failed", s.failed},
                         {"images_changed", s.images_changed},
                         {"images_unchanged", s.images_unchanged},
                         {"images_fresh", s.images_fresh}};
  j["success_rate"] = s.success_rate ? nlohmann::json(*s.success_rate) : nlohmann::json(nullptr);
  nlohmann::json statuses = nlohmann::json::object();
  for (const auto& [status, n] : in.stats.statuses) statuses[status_name(status)] = n;
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [kind, n] : in.stats.error_kinds) kinds[kind] = n;
  j["worker"] = {{"pages", in.mine.pages},
                 {"sitemaps", in.stats.sitemaps},
                 {"images", in.mine.images},
                 {"bytes", in.mine.bytes},
                 {"errors", in.stats.errors},
                 {"retries", in.stats.retries},
                 {"skipped", in.stats.skipped},
                 {"unchanged", in.stats.unchanged},
                 {"fresh", in.stats.fresh},
                 {"responses_by_status", statuses},
                 {"failures_by_kind", kinds},
                 {"early_fetches", {{"started", early.started}, {"used", early.used}, {"dropped", early.dropped}}}};
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& f : in.failures) failed.push_back({{"url", f.url}, {"error", f.error}});
  j["recent_failures"] = failed;
  // Bytes that are not UTF-8 (a URL or an error quoting a server) become U+FFFD.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string service_line(const CrawlStats& s, std::size_t leases_held, std::size_t writes_pending,
                         const std::optional<UploadBacklog>& uploads) {
  std::ostringstream line;
  line << "so far: " << s.pages << " pages, " << s.images << " images, " << human_bytes(static_cast<double>(s.bytes))
       << ", " << s.errors << " errors, " << s.retries << " retries, " << leases_held << " leases held, "
       << writes_pending << " writes pending";
  if (uploads)
    line << ", " << uploads->uploads << " uploads pending (" << human_bytes(static_cast<double>(uploads->bytes))
         << " spooled)" << (uploads->agent_down ? ", agent unavailable" : "");
  return line.str();
}

namespace {
// The terminal's width, so that the live line stays one row (a wrapped row
// would not be erased by the next one); 80 when it cannot be asked.
std::size_t terminal_columns() {
  winsize ws{};
  if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}
}  // namespace

void ProgressDisplay::show(const std::string& line) {
  auto now = std::chrono::steady_clock::now();
  if (tty_ && now - last_ >= std::chrono::milliseconds(500)) {
    std::size_t cols = terminal_columns();
    // The last column stays free: a character there wraps on some terminals.
    show_status_line(line.size() < cols ? line : line.substr(0, cols - 1));
    last_ = now;
  } else if (!tty_ && now - last_ >= std::chrono::seconds(10)) {
    CRAWLER_LOG(info) << line;
    last_ = now;
  }
}

void ProgressDisplay::end() {
  if (tty_) end_status_line();
}

}  // namespace crawler
