// Plain log lines on stderr: "2026-11-25T11:00:00.000Z level message".
// Under systemd (stderr is the journal's stream, JOURNAL_STREAM) a line is
// "<N>level message" instead: N is its syslog priority, so `journalctl -p`
// filters by level, and the journal adds its own timestamp.
// On a terminal one status line (a live progress line) can stay at the
// bottom: log lines are written above it.
#pragma once
#include <chrono>
#include <optional>
#include <sstream>
#include <string>

namespace crawler {

enum class Level { debug, info, warn, error };

void set_log_level(Level min);
// By name: "debug", "warning" (or "warn"), "error"; anything else is info.
// Callers that take the name from a user check it with parse_log_level().
void set_log_level(const std::string& name);
// The level a name means: "debug", "info", "warning" (or "warn"),
// "error"; nullopt for any other name.
std::optional<Level> parse_log_level(const std::string& name);
bool log_enabled(Level l);
// Writes one log line (above the status line when one is shown).
void log_line(Level l, const std::string& message);

// The line log_line() writes for `message` at `at`, with its newline:
// with `journal`, each line of the message starts with the level's syslog
// priority ("<3>" error, "<4>" warning, "<6>" info, "<7>" debug) and no
// timestamp; otherwise "YYYY-MM-DDTHH:MM:SS.mmmZ level message".
std::string format_log_line(Level l, const std::string& message, bool journal,
                            std::chrono::system_clock::time_point at);
// Whether stderr is the systemd journal's stream: JOURNAL_STREAM holds
// "device:inode" of stderr (systemd sets it for a service's output).
// Read once, at the first call.
bool log_to_journal();

// Shows `line` as the status line at the bottom of the terminal, replacing
// the previous one ("\r", erase line, the text, no newline). Only for a
// terminal stderr: the caller decides. Until end_status_line(), every log
// line first erases it and then draws it again below itself.
void show_status_line(const std::string& line);
// Leaves the status line where it is, ended by a newline, and stops
// redrawing it; nothing when none is shown.
void end_status_line();

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
