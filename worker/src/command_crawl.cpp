// crawler-worker crawl: starts a session with crawl_start(), crawls it with
// this worker until the database says it is over, shows progress, prints a
// summary.
#include <unistd.h>

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
#include "crawler/export_files.hpp"
#include "crawler/log.hpp"
#include "crawler/progress.hpp"
#include "crawler/url.hpp"
#include "crawler/write_api.hpp"

namespace crawler {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// How long the first answer (crawl_start's) may take.
constexpr std::chrono::seconds kStartTimeout{60};
// How often the session's counters are asked for: often enough that a
// short crawl is not rounded up to whole seconds.
constexpr std::chrono::milliseconds kStatusInterval{200};

class CrawlCommand {
 public:
  CrawlCommand(const Command& cmd, std::vector<std::string> seeds, std::vector<std::string> sitemaps, FileStore& store)
      : cmd_(cmd),
        seeds_(std::move(seeds)),
        sitemaps_(std::move(sitemaps)),
        stack_(cmd.worker, store) {}

  int run() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) interrupted(sig);
    });
    crawler_.on_idle([this] {
      if (session_ != 0) ask_status();
    });
    crawler_.on_fatal([this](const std::string& why) {
      report_error(why);
      finish(2);  // a misconfiguration, as a bad option is
      arm_stop_deadline(io_, stop_deadline_, signals_, forced_stop_);
    });
    // A conninfo that cannot work ends the crawl at once; a database that
    // does not answer is waited for (the database layer logs the wait), up
    // to kStartTimeout. Either way nothing was leased: no need to wait for
    // the database to take anything back.
    db_.on_unusable([this](const std::string& why) {
      if (session_ != 0) return;
      report_error(std::string("cannot use the database: ") + why);
      forced_stop_ = true;
      io_.stop();
    });
    give_up_.expires_after(kStartTimeout);
    give_up_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && session_ == 0) {
        report_error("no database answered within " + std::to_string(kStartTimeout.count()) + " s");
        forced_stop_ = true;
        io_.stop();
      }
    });
    api_.start_crawl(seeds_, cmd_.crawl.options_json(),
                     [this](const CallStatus& st, std::int64_t session) { started(st, session); });
    // The settings and the first claim go right behind crawl_start on the
    // same connection, queued while it connects: one transaction (the
    // database groups them), so the claim sees the new session and the
    // seeds are leased with crawl_start's answer.
    crawler_.start();
    io_.run();
    progress_.end();
    db_.stop(forced_stop_ ? std::chrono::seconds(0) : std::chrono::seconds(10));
    if (session_ == 0) return exit_code_ == 0 ? 1 : exit_code_;
    SummaryInput summary;
    summary.session = session_;
    summary.last = last_;
    summary.mine = crawler_.tally(session_);
    summary.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    summary.interrupted = interrupted_;
    summary.failures = std::move(failures_);
    summary.seeds = seeds_;
    summary.stats = crawler_.stats();
    std::cout << crawl_summary(summary) << std::flush;
    if (std::string early = early_fetch_line(crawler_.early_fetches()); !early.empty()) CRAWLER_LOG(info) << early;
    if (!cmd_.crawl.stats_json.empty() && !write_stats(stats_json(summary, crawler_.early_fetches())) &&
        exit_code_ == 0)
      exit_code_ = 1;
    return exit_code_;
  }

  // Whether the crawl ended because its session is over, with nothing left
  // under way: every lease this worker took was reported and acknowledged
  // (its files committed before), the database's queue was empty at its
  // stop. Not after a signal or a forced stop, whose transfers and files
  // were abandoned and are cleaned up by the destructors.
  bool done() const { return over_ && !interrupted_ && !forced_stop_ && crawler_.held() == 0; }

 private:
  // The statistics into --stats-json's file, whole or not at all (an
  // AtomicFile, as export writes its files). A failure is reported (the crawl
  // itself is done; the exit status says the file is missing).
  bool write_stats(const std::string& json) {
    try {
      AtomicFile file(cmd_.crawl.stats_json);
      file.write(json);
      file.commit();
      return true;
    } catch (const std::exception& e) {
      report_error("--stats-json " + cmd_.crawl.stats_json + ": " + e.what());
      return false;
    }
  }

  void started(const CallStatus& st, std::int64_t session) {
    give_up_.cancel();
    if (!st.ok) {
      report_error(std::string("crawl_start failed: ") + st.error + " [" + st.sqlstate + "]");
      exit_code_ = 2;
      crawler_.stop([this] { io_.stop(); });
      return;
    }
    session_ = session;
    CRAWLER_LOG(info) << "session " << session_ << " started with " << seeds_.size() << " seed(s) as worker "
                      << cmd_.worker.worker_id;
    started_ = Clock::now();
    queue_sitemaps();
    poll_status();
  }

  // --sitemap: queued at depth 0 as the seeds are, right behind crawl_start
  // on the claims' connection, while the seeds keep the session open. The
  // frontier holds them to the crawl's domains, as it holds the seeds' links.
  void queue_sitemaps() {
    if (sitemaps_.empty()) return;
    api_.enqueue(session_, sitemaps_, 0, "sitemap", "", [this](const CallStatus& st, std::uint64_t queued) {
      if (!st.ok)
        report_error(std::string("--sitemap: crawl_enqueue failed: ") + st.error + " [" + st.sqlstate + "]");
      else if (queued < sitemaps_.size())
        CRAWLER_LOG(warn) << "--sitemap: " << sitemaps_.size() - queued << " of " << sitemaps_.size()
                          << " not queued (outside the crawl's domains, or a seed already)";
    });
  }

  // SIGINT/SIGTERM: leases are returned, within kStopGrace; a second signal ends the process at once.
  void interrupted(int sig) {
    interrupted_ = true;
    CRAWLER_LOG(info) << "signal " << sig << ": stopping (leases are returned)";
    if (session_ == 0) io_.stop();
    else finish(3);
    arm_stop_deadline(io_, stop_deadline_, signals_, forced_stop_);
  }

  void poll_status() {
    tick_.expires_after(kStatusInterval);
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) ask_status();
    });
  }

  // A status asked while one is out (sent before what may have ended the
  // session) is asked again as soon as that one is answered, not a
  // kStatusInterval later: the end is seen one answer after it happens.
  void ask_status() {
    if (status_in_flight_) {
      status_again_ = true;
      return;
    }
    status_in_flight_ = true;
    status_again_ = false;
    tick_.cancel();
    api_.crawl_status(session_, [this](const CallStatus& st, std::optional<SessionStatus> status) {
      status_in_flight_ = false;
      if (crawler_.stopping()) return;
      if (status) {
        last_ = *status;
        rates_.add(Clock::now(), crawler_.stats(), last_);
        progress_.show(progress_line(last_, rates_, db_.connected(), crawler_.upload_backlog()));
        if (!last_.status.empty() && last_.status != "running") {
          conclude(last_.status == "finished" && last_.pages_fetched > 0 ? 0 : 1);
          return;
        }
      } else if (!st.ok) {
        CRAWLER_LOG(warn) << "crawl_status: " << st.error;
      }
      if (status_again_) ask_status();
      else poll_status();
    });
  }

  // The session is over: why its URLs failed is read for the summary
  // (an empty crawl is explained by its seeds' failures), then the stop.
  void conclude(int code) {
    over_ = true;
    if (last_.failed <= 0) {
      finish(code);
      return;
    }
    db_.call(Stmt::recent_errors, {Param{std::to_string(session_)}}, [this, code](DbResult&& r) {
      if (r.ok)
        for (std::size_t i = 0; i < r.rows.size(); ++i) {
          const Param& url = r.at(i, "url");
          const Param& error = r.at(i, "last_error");
          failures_.push_back(FailedUrl{url.value_or(""), error.value_or("")});
        }
      if (!crawler_.stopping()) finish(code);  // else a signal's stop is under way, with its own code
    });
  }

  void finish(int code) {
    exit_code_ = code;
    tick_.cancel();
    give_up_.cancel();
    crawler_.stop([this] { io_.stop(); });
  }

  const Command& cmd_;
  std::vector<std::string> seeds_, sitemaps_;
  CrawlStack stack_;
  asio::io_context& io_ = stack_.io;
  Database& db_ = stack_.db;
  WriteApi& api_ = stack_.api;
  Crawler& crawler_ = stack_.crawler;
  asio::steady_timer tick_{io_}, give_up_{io_}, stop_deadline_{io_};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  ProgressDisplay progress_{::isatty(2) != 0};
  RecentRates rates_;
  std::int64_t session_ = 0;
  int exit_code_ = 1;
  bool interrupted_ = false, forced_stop_ = false, status_in_flight_ = false, status_again_ = false;
  bool over_ = false;  // conclude() ran: the session is not running any more
  SessionStatus last_;
  std::vector<FailedUrl> failures_;
  Clock::time_point started_ = Clock::now();
};

}  // namespace

int run_crawl_command(const Command& cmd) {
  std::vector<std::string> seeds;
  for (const auto& s : cmd.crawl.seeds) {
    auto n = normalize_url(s);
    if (!n) {
      report_error(std::string("invalid seed \"") + s + "\": an absolute http(s) URL is needed");
      return 2;
    }
    seeds.push_back(*n);
  }
  std::vector<std::string> sitemaps;
  for (const auto& s : cmd.crawl.sitemaps) {
    auto n = normalize_url(s);
    if (!n) {
      report_error(std::string("invalid --sitemap \"") + s + "\": an absolute http(s) URL is needed");
      return 2;
    }
    sitemaps.push_back(*n);
  }
  std::unique_ptr<FileStore> store;
  try {
    store = std::make_unique<FileStore>(download_root(cmd.worker));
  } catch (const std::exception& e) {
    report_error(e.what());
    return 2;
  }
  CrawlCommand crawl(cmd, std::move(seeds), std::move(sitemaps), *store);
  int rc = crawl.run();
  // The summary is out and everything is durable: the process ends as soon
  // as the last result is acknowledged, not after its teardown.
  if (crawl.done()) exit_now_if_done(rc);
  return rc;
}

}  // namespace crawler
