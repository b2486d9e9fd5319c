// crawler-worker: crawl, run (the service) and status.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "crawler/crawler.hpp"
#include "crawler/database.hpp"
#include "crawler/image_info.hpp"
#include "crawler/log.hpp"
#include "crawler/options.hpp"
#include "crawler/url.hpp"
#include "crawler/write_api.hpp"

namespace asio = boost::asio;
using namespace crawler;
using Clock = std::chrono::steady_clock;

// How long a stop waits for the database to take back leases and results
// (the unit's TimeoutStopSec is 30 s).
constexpr std::chrono::seconds kStopGrace{15};

namespace {

void apply_log_level(const std::string& l) {
  if (l == "debug") set_log_level(Level::debug);
  else if (l == "warning" || l == "warn") set_log_level(Level::warn);
  else if (l == "error") set_log_level(Level::error);
  else set_log_level(Level::info);
}

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

int command_crawl(const Command& cmd) {
  std::vector<std::string> seeds;
  for (const auto& s : cmd.crawl.seeds) {
    auto n = normalize_url(s);
    if (!n) {
      std::cerr << "crawler-worker: invalid seed \"" << s << "\": an absolute http(s) URL is needed\n";
      return 2;
    }
    seeds.push_back(*n);
  }
  asio::io_context io;
  Database db(cmd.worker.db, io, cmd.worker.db_connections);
  std::unique_ptr<FileStore> store;
  try {
    store = std::make_unique<FileStore>(cmd.worker.storage);
  } catch (const std::exception& e) {
    std::cerr << "crawler-worker: " << e.what() << "\n";
    return 2;
  }
  WriteApi api(db, cmd.worker.worker_id, cmd.worker.lease_seconds);
  Crawler crawler(io, cmd.worker, api, *store);
  const bool tty = ::isatty(2);
  long long session = 0;
  int exit_code = 1;
  bool interrupted = false;
  SessionStatus last;
  auto started = Clock::now();
  auto last_progress = started;
  asio::steady_timer tick(io), give_up(io), stop_deadline(io);
  bool forced_stop = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void()> poll_status;

  auto finish = [&](int code) {
    exit_code = code;
    tick.cancel();
    give_up.cancel();
    crawler.stop([&] { io.stop(); });
  };
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    interrupted = true;
    CRAWLER_LOG(info) << "signal " << sig << ": stopping (leases are returned)";
    if (session == 0) io.stop();
    else finish(3);
    stop_deadline.expires_after(kStopGrace);
    stop_deadline.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      CRAWLER_LOG(warn) << "the database did not answer within " << kStopGrace.count()
                        << " s: stopping anyway; unreturned leases expire";
      forced_stop = true;
      io.stop();
    });
    signals.async_wait([&](const boost::system::error_code& e2, int) {
      if (!e2) std::_Exit(130);  // a second signal: now
    });
  });

  bool status_in_flight = false;
  std::function<void()> ask_status;
  poll_status = [&] {
    // Often enough that a short crawl is not rounded up to whole seconds.
    tick.expires_after(std::chrono::milliseconds(200));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) ask_status();
    });
  };
  ask_status = [&] {
      if (status_in_flight) return;
      status_in_flight = true;
      tick.cancel();
      api.crawl_status(session, [&](const CallStatus& st_call, std::optional<SessionStatus> status) {
        status_in_flight = false;
        if (crawler.stopping()) return;
        if (status) {
          const SessionStatus& r = *status;
          last = r;
          double secs = std::chrono::duration<double>(Clock::now() - started).count();
          const auto& st = crawler.stats();
          std::ostringstream line;
          line << "pages " << r.pages_fetched << " (" << std::fixed << std::setprecision(1)
               << st.pages / secs << "/s)  images " << r.images_stored << " ("
               << st.images / secs << "/s)  " << human_bytes(static_cast<double>(r.bytes_stored))
               << "  queue " << r.queued << "  leased " << r.leased << "  errors "
               << r.errors << (db.connected() ? "" : "  [database reconnecting]");
          auto now = Clock::now();
          if (tty && now - last_progress >= std::chrono::milliseconds(500)) {
            std::fprintf(stderr, "\r\033[K%s", line.str().c_str());
            last_progress = now;
          } else if (!tty && now - last_progress >= std::chrono::seconds(10)) {
            CRAWLER_LOG(info) << line.str();
            last_progress = now;
          }
          if (!r.status.empty() && r.status != "running") {
            finish(r.status == "finished" && r.pages_fetched > 0 ? 0 : 1);
            return;
          }
        } else if (!st_call.ok) {
          CRAWLER_LOG(warn) << "crawl_status: " << st_call.error;
        }
        poll_status();
      });
  };
  crawler.on_idle([&] {
    if (session != 0) ask_status();
  });

  give_up.expires_after(std::chrono::seconds(60));
  give_up.async_wait([&](const boost::system::error_code& ec) {
    if (!ec && session == 0) {
      std::cerr << "crawler-worker: no database answered within 60 s\n";
      io.stop();
    }
  });
  api.start_crawl(seeds, cmd.crawl.options_json(), [&](const CallStatus& r, std::int64_t started_session) {
            give_up.cancel();
            if (!r.ok) {
              std::cerr << "crawler-worker: crawl_start failed: " << r.error << " [" << r.sqlstate << "]\n";
              exit_code = 2;
              crawler.stop([&] { io.stop(); });
              return;
            }
            session = started_session;
            CRAWLER_LOG(info) << "session " << session << " started with " << seeds.size()
                              << " seed(s) as worker " << cmd.worker.worker_id;
            started = Clock::now();
            poll_status();
          });
  // The first claim goes right behind crawl_start on the same connection
  // (same round trip) and sees the new session.
  crawler.start();
  io.run();
  if (tty) std::fputs("\n", stderr);
  db.stop(forced_stop ? std::chrono::seconds(0) : std::chrono::seconds(10));
  if (session == 0) return exit_code == 0 ? 1 : exit_code;

  double secs = std::chrono::duration<double>(Clock::now() - started).count();
  const auto& st = crawler.stats();
  std::ostringstream sum;
  sum << "session " << session << ": " << (last.status.empty() ? "?" : last.status) << " in " << std::fixed
      << std::setprecision(2) << secs << " s\n"
      << "  pages fetched   " << last.pages_fetched << "\n"
      << "  images stored   " << last.images_stored << " of " << last.images_found
      << " found\n"
      << "  bytes stored    " << human_bytes(static_cast<double>(last.bytes_stored)) << "\n"
      << "  failed URLs     " << last.failed << " (errors " << last.errors
      << ", retries " << last.retries << ")\n"
      << "  this worker     " << st.pages << " pages, " << st.images << " images, "
      << human_bytes(static_cast<double>(st.bytes)) << ", " << std::setprecision(1)
      << (st.pages + st.images) / std::max(secs, 0.001) << " URLs/s\n";
  if (interrupted)
    sum << "  interrupted: the session is still running; `crawler-worker run` continues it\n";
  std::cout << sum.str() << std::flush;
  return exit_code;
}

int command_run(const Command& cmd, int argc, const char* const argv[]) {
  asio::io_context io;
  Database db(cmd.worker.db, io, cmd.worker.db_connections);
  std::unique_ptr<FileStore> store;
  try {
    store = std::make_unique<FileStore>(cmd.worker.storage);
  } catch (const std::exception& e) {
    std::cerr << "crawler-worker: " << e.what() << "\n";
    return 2;
  }
  WriteApi api(db, cmd.worker.worker_id, cmd.worker.lease_seconds);
  Crawler crawler(io, cmd.worker, api, *store);
  CRAWLER_LOG(info) << "worker " << cmd.worker.worker_id << " serving every running session, "
                    << cmd.worker.concurrency << " transfers at once";
  asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  asio::signal_set hup(io, SIGHUP);
  asio::steady_timer stop_deadline(io);
  bool forced_stop = false;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    CRAWLER_LOG(info) << "signal " << sig << ": finishing, returning leases";
    crawler.stop([&] { io.stop(); });
    // Without a database the leases cannot be returned: they expire instead.
    stop_deadline.expires_after(kStopGrace);
    stop_deadline.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      CRAWLER_LOG(warn) << "the database did not answer within " << kStopGrace.count()
                        << " s: stopping anyway; unreturned leases expire";
      forced_stop = true;
      io.stop();
    });
    stop_signals.async_wait([](const boost::system::error_code& e2, int) {
      if (!e2) std::_Exit(130);
    });
  });
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      try {
        Command again = parse_command_line(argc, argv);
        apply_log_level(again.worker.log_level);
        crawler.reload(again.worker);
      } catch (const std::exception& e) {
        CRAWLER_LOG(error) << "reload refused: " << e.what();
      }
      wait_hup();
    });
  };
  wait_hup();
  asio::steady_timer report(io);
  std::function<void()> periodic = [&] {
    report.expires_after(std::chrono::seconds(60));
    report.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto& s = crawler.stats();
      CRAWLER_LOG(info) << "so far: " << s.pages << " pages, " << s.images << " images, "
                        << human_bytes(static_cast<double>(s.bytes)) << ", " << s.errors << " errors, "
                        << crawler.held() << " leases held, " << db.pending() << " writes pending";
      periodic();
    });
  };
  periodic();
  crawler.start();
  io.run();
  db.stop(forced_stop ? std::chrono::seconds(0) : std::chrono::seconds(10));
  CRAWLER_LOG(info) << "stopped";
  return 0;
}

void print_table(const DbResult& r) {
  std::vector<std::size_t> w(r.columns.size());
  for (std::size_t c = 0; c < r.columns.size(); ++c) {
    w[c] = r.columns[c].size();
    for (const auto& row : r.rows) w[c] = std::max(w[c], std::min<std::size_t>(row[c].value_or("").size(), 80));
  }
  for (std::size_t c = 0; c < r.columns.size(); ++c) std::cout << (c ? " | " : " ") << std::left << std::setw(static_cast<int>(w[c])) << r.columns[c];
  std::cout << "\n";
  for (std::size_t c = 0; c < r.columns.size(); ++c) std::cout << (c ? "-+-" : "-") << std::string(w[c], '-');
  std::cout << "\n";
  for (const auto& row : r.rows) {
    for (std::size_t c = 0; c < r.columns.size(); ++c) {
      std::string v = row[c].value_or("");
      if (v.size() > 80) v = v.substr(0, 77) + "...";
      std::cout << (c ? " | " : " ") << std::left << std::setw(static_cast<int>(w[c])) << v;
    }
    std::cout << "\n";
  }
  std::cout << "(" << r.rows.size() << " row" << (r.rows.size() == 1 ? "" : "s") << ")\n\n";
}

int command_status(const Command& cmd) {
  asio::io_context io;
  Database db(cmd.worker.db, io);
  Param session = cmd.session ? Param{std::to_string(*cmd.session)} : Param{};
  int code = 0, left = 3;
  DbResult sessions, errors, ha;
  auto one = [&](DbResult* into) {
    return [&, into](DbResult&& r) {
      *into = std::move(r);
      if (--left == 0) io.stop();
    };
  };
  db.call(Stmt::sessions_overview, {session}, one(&sessions));
  db.call(Stmt::recent_errors, {session}, one(&errors));
  db.call(Stmt::ha_status, {}, one(&ha));
  asio::steady_timer give_up(io);
  give_up.expires_after(std::chrono::seconds(30));
  give_up.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) {
      std::cerr << "crawler-worker: no database answered within 30 s\n";
      code = 1;
      io.stop();
    }
  });
  io.run();
  db.stop(std::chrono::milliseconds(0));
  if (code) return code;
  std::cout << "Database: " << db.server() << "\n\nSessions\n";
  if (sessions.ok) print_table(sessions);
  else { std::cout << "  " << sessions.error << "\n\n"; code = 1; }
  std::cout << "Recent errors\n";
  if (errors.ok) print_table(errors);
  else std::cout << "  " << errors.error << "\n\n";
  std::cout << "ha_status()\n";
  if (ha.ok) print_table(ha);
  else std::cout << "  unavailable: " << ha.error << "\n";
  return code;
}

}  // namespace

int main(int argc, char* argv[]) {
  std::setlocale(LC_CTYPE, "C.UTF-8");  // libidn2 (punycode) needs UTF-8
  Command cmd;
  try {
    cmd = parse_command_line(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "crawler-worker: " << e.what() << "\n";
    return 2;
  }
  if (cmd.name == "help") {
    std::cout << cmd.help_text;
    return 0;
  }
  if (cmd.name == "version") {
    std::cout << "crawler-worker " << CRAWLER_VERSION << " (" << curl_version() << ")\n";
    return 0;
  }
  apply_log_level(cmd.worker.log_level);
  // kSkipVipsModules: libvips opens every dynamic module it has at start
  // (ImageMagick, poppler, OpenSlide, JPEG XL, HEIF): 20-30 ms of CPU for
  // loaders the crawler never uses. With VIPSHOME elsewhere it finds none;
  // the HEIF one is opened when the first AVIF or HEIC image comes. Set
  // here, before any thread starts.
  if (!std::getenv("VIPSHOME")) ::setenv("VIPSHOME", "/nonexistent/crawler-worker", 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);  // libvips starts on a file thread (Crawler)
  int rc = 0;
  if (cmd.name == "crawl") rc = command_crawl(cmd);
  else if (cmd.name == "run") rc = command_run(cmd, argc, argv);
  else rc = command_status(cmd);
  curl_global_cleanup();
  return rc;
}
