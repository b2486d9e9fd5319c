#include "crawler/log.hpp"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace crawler {
namespace {
std::atomic<int> g_min{static_cast<int>(Level::info)};
// One lock for every write to stderr made here: log lines from several
// threads and the status line never interleave.
std::mutex g_mutex;
std::string g_status;       // the status line being shown
bool g_status_shown = false;

const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warning";
    case Level::error: return "error";
  }
  return "";
}

// syslog(3) priorities, as sd-daemon(3) reads them from a line's "<N>".
int priority(Level l) {
  switch (l) {
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warn: return 4;
    case Level::error: return 3;
  }
  return 6;
}

// The erase sequence: back to the start of the row, erase to its end.
constexpr const char* kEraseLine = "\r\033[K";
}  // namespace

void set_log_level(Level min) { g_min = static_cast<int>(min); }

std::optional<Level> parse_log_level(const std::string& l) {
  if (l == "debug") return Level::debug;
  if (l == "info") return Level::info;
  if (l == "warning" || l == "warn") return Level::warn;
  if (l == "error") return Level::error;
  return std::nullopt;
}

void set_log_level(const std::string& l) { set_log_level(parse_log_level(l).value_or(Level::info)); }

bool log_enabled(Level l) { return static_cast<int>(l) >= g_min; }

bool log_to_journal() {
  static const bool journal = [] {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    unsigned long long dev = 0, ino = 0;
    char extra = 0;
    if (std::sscanf(stream, "%llu:%llu%c", &dev, &ino, &extra) != 2) return false;
    // Only when stderr is still that stream: a program started from the
    // service with its stderr elsewhere inherits the variable.
    struct stat st;
    if (::fstat(2, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
  }();
  return journal;
}

std::string format_log_line(Level l, const std::string& message, bool journal,
                            std::chrono::system_clock::time_point at) {
  std::string out;
  if (journal) {
    // The journal makes one entry per line: each carries the priority.
    const std::string prefix = "<" + std::to_string(priority(l)) + ">";
    out = prefix + name(l) + " ";
    for (char c : message) {
      out.push_back(c);
      if (c == '\n') out += prefix;
    }
    out.push_back('\n');
    return out;
  }
  std::time_t t = std::chrono::system_clock::to_time_t(at);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char head[64];
  std::snprintf(head, sizeof head, "%s.%03dZ %s ", stamp, static_cast<int>(ms), name(l));
  out = head + message;
  out.push_back('\n');
  return out;
}

void log_line(Level l, const std::string& message) {
  std::string text = format_log_line(l, message, log_to_journal(), std::chrono::system_clock::now());
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_status_shown) std::fputs(kEraseLine, stderr);
  std::fputs(text.c_str(), stderr);
  if (g_status_shown) std::fputs(g_status.c_str(), stderr);
  std::fflush(stderr);
}

void show_status_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_status = line;
  g_status_shown = true;
  std::fputs(kEraseLine, stderr);
  std::fputs(g_status.c_str(), stderr);
  std::fflush(stderr);
}

void end_status_line() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_status_shown) return;
  g_status_shown = false;
  g_status.clear();
  std::fputs("\n", stderr);
  std::fflush(stderr);
}

}  // namespace crawler
