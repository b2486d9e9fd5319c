// crawler-worker run: the service. Serves every running session until
// SIGINT/SIGTERM, reloads on SIGHUP, logs what it has done every minute.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "crawler/commands.hpp"
#include "crawler/crawl_stack.hpp"
#include "crawler/crawler.hpp"
#include "crawler/database.hpp"
#include "crawler/log.hpp"
#include "crawler/progress.hpp"
#include "crawler/write_api.hpp"

namespace crawler {
namespace {

namespace asio = boost::asio;

// How often the service logs what it has done.
constexpr std::chrono::seconds kReportInterval{60};
// The channel crawl_start() notifies when a session begins.
constexpr const char* kWorkChannel = "crawler_ha_work";

class ServiceCommand {
 public:
  ServiceCommand(const Command& cmd, int argc, const char* const argv[], FileStore& store)
      : argc_(argc),
        argv_(argv),
        stack_(cmd.worker, store) {}

  int run() {
    stop_signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) stop(sig);
    });
    wait_for_reload();
    report();
    crawler_.on_fatal([this](const std::string& why) {
      // A misconfiguration no retry cures: stop, and exit with an error so
      // that it shows (systemd logs it and restarts after RestartSec).
      CRAWLER_LOG(error) << why << "; stopping";
      failed_ = true;
      crawler_.stop([this] { io_.stop(); });
      arm_stop_deadline(io_, stop_deadline_, stop_signals_, forced_stop_);
    });
    db_.on_unusable([this](const std::string& why) {
      // Nothing was ever leased: the settings are wrong, and a restart by
      // systemd after RestartSec says so in the journal again.
      CRAWLER_LOG(error) << "cannot use the database: " << why << "; stopping";
      failed_ = true;
      forced_stop_ = true;
      io_.stop();
    });
    // A session started anywhere is claimed at once, not after the idle
    // back-off (up to 500 ms): crawl_start() notifies this channel at commit.
    db_.listen(kWorkChannel, [this] {
      CRAWLER_LOG(debug) << "new work announced: claiming now";
      crawler_.work_announced();
    });
    crawler_.start();
    io_.run();
    db_.stop(forced_stop_ ? std::chrono::seconds(0) : std::chrono::seconds(10));
    if (std::string early = early_fetch_line(crawler_.early_fetches()); !early.empty()) CRAWLER_LOG(info) << early;
    CRAWLER_LOG(info) << "stopped";
    return failed_ ? 1 : 0;
  }

 private:
  // Finishes what is under way and returns the leases; without a database
  // within kStopGrace they expire instead. A second signal ends the
  // process at once.
  void stop(int sig) {
    CRAWLER_LOG(info) << "signal " << sig << ": finishing, returning leases";
    crawler_.stop([this] { io_.stop(); });
    arm_stop_deadline(io_, stop_deadline_, stop_signals_, forced_stop_);
  }

  void wait_for_reload() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      try {
        Command again = parse_command_line(argc_, argv_);
        set_log_level(again.worker.log_level);
        crawler_.reload(again.worker);
      } catch (const std::exception& e) {
        CRAWLER_LOG(error) << "reload refused: " << e.what();
      }
      wait_for_reload();
    });
  }

  void report() {
    report_.expires_after(kReportInterval);
    report_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      CRAWLER_LOG(info) << service_line(crawler_.stats(), crawler_.held(), db_.pending(), crawler_.upload_backlog());
      report();
    });
  }

  int argc_;
  const char* const* argv_;
  CrawlStack stack_;
  asio::io_context& io_ = stack_.io;
  Database& db_ = stack_.db;
  WriteApi& api_ = stack_.api;
  Crawler& crawler_ = stack_.crawler;
  asio::signal_set stop_signals_{io_, SIGINT, SIGTERM}, hup_{io_, SIGHUP};
  asio::steady_timer stop_deadline_{io_}, report_{io_};
  bool forced_stop_ = false, failed_ = false;
};

}  // namespace

int run_service_command(const Command& cmd, int argc, const char* const argv[]) {
  std::unique_ptr<FileStore> store;
  try {
    store = std::make_unique<FileStore>(download_root(cmd.worker));
  } catch (const std::exception& e) {
    report_error(e.what());
    return 2;
  }
  ServiceCommand service(cmd, argc, argv, *store);
  CRAWLER_LOG(info) << "worker " << cmd.worker.worker_id << " serving every running session, "
                    << cmd.worker.concurrency << " transfers at once";
  return service.run();
}

}  // namespace crawler
