// The commands of crawler-worker, one file each: crawl (one session to its
// end, with live progress), run (the service: every running session) and
// status (sessions, recent errors, ha_status()). Each returns the process's
// exit status.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "crawler/options.hpp"

namespace crawler {

// How long a stop waits for the database to take back leases and results
// (the unit's TimeoutStopSec is 30 s).
constexpr std::chrono::seconds kStopGrace{15};

// Once a stop has begun: when the database has not answered within
// kStopGrace, the loop stops anyway (unreturned leases expire) and `forced`
// is set; a second signal on `signals` ends the process at once (exit 130).
void arm_stop_deadline(boost::asio::io_context& io, boost::asio::steady_timer& deadline,
                       boost::asio::signal_set& signals, bool& forced);

// Ends the process with `code` now, without destructors or exit handlers,
// stdout and stderr flushed: for a command whose work is done and durable
// (every result acknowledged, files committed, the connections closed), so
// that the wait for its idle threads and the libraries' cleanup are not
// part of its wall time. Returns, doing nothing, in a sanitizer build, whose
// leak check runs at exit: the caller then ends as usual.
void exit_now_if_done(int code);

// 0: the session finished with a page fetched; 1: it ended otherwise or no
// database answered; 2: a bad seed, store or crawl_start(); 3: interrupted.
int run_crawl_command(const Command& cmd);
// Serves every running session until SIGINT/SIGTERM; SIGHUP re-reads the
// command line and config file (argc, argv) and reloads.
int run_service_command(const Command& cmd, int argc, const char* const argv[]);
// Prints sessions, recent errors and ha_status() from any node; 1 when
// the database cannot be used, no node answered or --session names a
// session that does not exist.
int run_status_command(const Command& cmd);

// Writes a session's images as JSON lines, CSV or webdataset shards, from
// any node; 0 when every image was exported, 1 when the database cannot be
// used, the session does not exist, the output could not be written or
// images were skipped, 2 when the agent refused the token, 3 when
// interrupted (the files under way removed).
int run_export_command(const Command& cmd);

// Writes "crawler-worker: MESSAGE" on stderr: below the live line when one
// is shown (which it ends), and under systemd as an error line of the
// journal ("<3>"), as log lines are.
void report_error(const std::string& message);

}  // namespace crawler
