// crawler-worker status: the latest sessions, recent errors and
// ha_status(), as tables. Reads only: these go to the database directly,
// not through the write API.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iomanip>
#include <iostream>

#include "crawler/commands.hpp"
#include "crawler/database.hpp"

namespace crawler {
namespace {

namespace asio = boost::asio;

// How long the three answers may take together.
constexpr std::chrono::seconds kAnswerTimeout{30};
// Values longer than this are cut, so that a row stays a line.
constexpr std::size_t kMaxWidth = 80;

void print_table(const DbResult& r) {
  std::vector<std::size_t> w(r.columns.size());
  for (std::size_t c = 0; c < r.columns.size(); ++c) {
    w[c] = r.columns[c].size();
    for (const auto& row : r.rows) w[c] = std::max(w[c], std::min<std::size_t>(row[c].value_or("").size(), kMaxWidth));
  }
  for (std::size_t c = 0; c < r.columns.size(); ++c)
    std::cout << (c ? " | " : " ") << std::left << std::setw(static_cast<int>(w[c])) << r.columns[c];
  std::cout << "\n";
  for (std::size_t c = 0; c < r.columns.size(); ++c) std::cout << (c ? "-+-" : "-") << std::string(w[c], '-');
  std::cout << "\n";
  for (const auto& row : r.rows) {
    for (std::size_t c = 0; c < r.columns.size(); ++c) {
      std::string v = row[c].value_or("");
      if (v.size() > kMaxWidth) v = v.substr(0, kMaxWidth - 3) + "...";
      std::cout << (c ? " | " : " ") << std::left << std::setw(static_cast<int>(w[c])) << v;
    }
    std::cout << "\n";
  }
  std::cout << "(" << r.rows.size() << " row" << (r.rows.size() == 1 ? "" : "s") << ")\n\n";
}

}  // namespace

int run_status_command(const Command& cmd) {
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
  give_up.expires_after(kAnswerTimeout);
  give_up.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) {
      std::cerr << "crawler-worker: no database answered within " << kAnswerTimeout.count() << " s\n";
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

}  // namespace crawler
