// The log's formats (plain and journal) and the status line a terminal
// keeps below the log lines.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "crawler/log.hpp"

using namespace crawler;

TEST(Log, LevelsAreReadStrictly) {
  EXPECT_EQ(parse_log_level("debug"), Level::debug);
  EXPECT_EQ(parse_log_level("info"), Level::info);
  EXPECT_EQ(parse_log_level("warning"), Level::warn);
  EXPECT_EQ(parse_log_level("warn"), Level::warn);
  EXPECT_EQ(parse_log_level("error"), Level::error);
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_FALSE(parse_log_level("INFO"));
  EXPECT_FALSE(parse_log_level(""));
}

TEST(Log, PlainLinesHaveATimestampAndTheLevel) {
  auto at = std::chrono::system_clock::from_time_t(1795000000) + std::chrono::milliseconds(42);
  EXPECT_EQ(format_log_line(Level::warn, "database: waiting", false, at),
            "2026-11-18T11:06:40.042Z warning database: waiting\n");
}

TEST(Log, JournalLinesCarryTheSyslogPriority) {
  auto at = std::chrono::system_clock::now();
  EXPECT_EQ(format_log_line(Level::error, "boom", true, at), "<3>error boom\n");
  EXPECT_EQ(format_log_line(Level::warn, "hm", true, at), "<4>warning hm\n");
  EXPECT_EQ(format_log_line(Level::info, "ok", true, at), "<6>info ok\n");
  EXPECT_EQ(format_log_line(Level::debug, "x", true, at), "<7>debug x\n");
  // The journal makes an entry of each line: each has its priority.
  EXPECT_EQ(format_log_line(Level::error, "a\nb", true, at), "<3>error a\n<3>b\n");
}

namespace {
// Runs `f` with stderr going to a file; returns what was written.
template <typename F>
std::string capture_stderr(F f) {
  char name[] = "/tmp/crawler-log-test-XXXXXX";
  int fd = ::mkstemp(name);
  std::fflush(stderr);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(name);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(name);
  return text.str();
}
}  // namespace

TEST(Log, ALogLineClearsTheStatusLineAndDrawsItAgainBelow) {
  std::string out = capture_stderr([] {
    show_status_line("pages 1");
    show_status_line("pages 2");
    log_line(Level::warn, "retry http://a.test/");
    end_status_line();
    end_status_line();  // once only
    log_line(Level::info, "after");
  });
  // Each status line replaces the last one in place; the log line erases
  // it, ends with its newline, and the status line comes back under it.
  const std::string erase = "\r\033[K";
  std::size_t log = out.find(" warning retry http://a.test/\n");
  ASSERT_NE(log, std::string::npos) << out;
  EXPECT_EQ(out.substr(0, erase.size() * 2 + 14), erase + "pages 1" + erase + "pages 2");
  std::size_t line_start = out.rfind(erase, log);
  ASSERT_NE(line_start, std::string::npos);
  EXPECT_EQ(line_start, erase.size() * 2 + 14) << "the log line starts right after the erase";
  std::size_t after = out.find('\n', log) + 1;
  EXPECT_EQ(out.substr(after, 8), "pages 2\n") << "redrawn below, ended once";
  EXPECT_NE(out.find(" info after\n", after), std::string::npos);
  EXPECT_EQ(out.find(erase, after), std::string::npos) << "no erase once the status line ended";
}
