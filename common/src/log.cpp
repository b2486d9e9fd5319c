#include "crawler/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace crawler {
namespace {
std::atomic<int> g_min{static_cast<int>(Level::info)};
std::mutex g_mutex;
const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warning";
    case Level::error: return "error";
  }
  return "";
}
}  // namespace

void set_log_level(Level min) { g_min = static_cast<int>(min); }

void set_log_level(const std::string& l) {
  if (l == "debug") set_log_level(Level::debug);
  else if (l == "warning" || l == "warn") set_log_level(Level::warn);
  else if (l == "error") set_log_level(Level::error);
  else set_log_level(Level::info);
}
bool log_enabled(Level l) { return static_cast<int>(l) >= g_min; }

void log_line(Level l, const std::string& message) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s.%03dZ %s %s\n", stamp, static_cast<int>(ms), name(l), message.c_str());
}

}  // namespace crawler
