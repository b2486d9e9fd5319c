// Plain log lines on stderr: "2026-11-25T11:00:00Z level message".
#pragma once
#include <sstream>
#include <string>

namespace crawler {

enum class Level { debug, info, warn, error };

void set_log_level(Level min);
// By name: "debug", "warning" (or "warn"), "error"; anything else is info.
void set_log_level(const std::string& name);
bool log_enabled(Level l);
void log_line(Level l, const std::string& message);

// Streams a message: LOG(info) << "fetched " << url;
class LogStream {
 public:
  explicit LogStream(Level l) : level_(l) {}
  ~LogStream() { log_line(level_, out_.str()); }
  template <typename T>
  LogStream& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream out_;
};

}  // namespace crawler

// A for statement, not an if: safe inside an unbraced if/else.
#define CRAWLER_LOG(lvl)                                                              \
  for (bool crawler_log_once_ = ::crawler::log_enabled(::crawler::Level::lvl); crawler_log_once_; \
       crawler_log_once_ = false)                                                     \
  ::crawler::LogStream(::crawler::Level::lvl)
