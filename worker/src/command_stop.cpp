// What the commands share: the stop of crawl and run (a bounded wait for
// the database, and a second signal that ends the process at once), the
// end of a command whose work is done, and how an error that ends a
// command is said.
#include <cstdio>
#include <cstdlib>

#include "crawler/commands.hpp"
#include "crawler/log.hpp"

namespace crawler {

void arm_stop_deadline(boost::asio::io_context& io, boost::asio::steady_timer& deadline,
                       boost::asio::signal_set& signals, bool& forced) {
  deadline.expires_after(kStopGrace);
  deadline.async_wait([&io, &forced](const boost::system::error_code& ec) {
    if (ec) return;
    CRAWLER_LOG(warn) << "the database did not answer within " << kStopGrace.count()
                      << " s: stopping anyway; unreturned leases expire";
    forced = true;
    io.stop();
  });
  signals.async_wait([](const boost::system::error_code& ec, int) {
    if (!ec) std::_Exit(130);  // a second signal: now
  });
}

// Sanitizer builds check for leaks (and every destructor's path) at exit.
#if defined(__SANITIZE_ADDRESS__)
#define CRAWLER_CHECKS_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define CRAWLER_CHECKS_AT_EXIT 1
#endif
#endif

void exit_now_if_done(int code) {
#ifndef CRAWLER_CHECKS_AT_EXIT
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
#else
  (void)code;
#endif
}

void report_error(const std::string& message) {
  end_status_line();
  std::fprintf(stderr, "%scrawler-worker: %s\n", log_to_journal() ? "<3>" : "", message.c_str());
  std::fflush(stderr);
}

}  // namespace crawler
