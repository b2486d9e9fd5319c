// crawler-worker status: the latest sessions, recent errors and
// ha_status(), as tables that fit 100 columns (--wide: every column,
// --json: one JSON object). Reads only: these go to the database directly,
// not through the write API, on any node: the primary when one answers,
// else a standby, whose replicated data and view of the pair are what an
// operator needs while the primary is down.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "crawler/commands.hpp"
#include "crawler/database.hpp"
#include "crawler/status_view.hpp"

namespace crawler {
namespace {

namespace asio = boost::asio;

// How long the three answers may take together.
constexpr std::chrono::seconds kAnswerTimeout{30};

// Rows as objects, values as PostgreSQL's text; an error as {"error": ...}.
nlohmann::ordered_json rows_json(const DbResult& r) {
  if (!r.ok) return nlohmann::ordered_json{{"error", r.error}, {"sqlstate", r.sqlstate}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : r.rows) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (std::size_t c = 0; c < r.columns.size() && c < row.size(); ++c)
      o[r.columns[c]] = row[c] ? nlohmann::ordered_json(*row[c]) : nlohmann::ordered_json(nullptr);
    rows.push_back(std::move(o));
  }
  return rows;
}

}  // namespace

int run_status_command(const Command& cmd) {
  asio::io_context io;
  Database db(cmd.worker.db, io, 0, DbMode::kReader);
  const StatusRequest& req = cmd.status;
  Param session = req.session ? Param{std::to_string(*req.session)} : Param{};
  int code = 0, left = 3;
  DbResult sessions, errors, ha;
  auto one = [&](DbResult* into) {
    return [&, into](DbResult&& r) {
      *into = std::move(r);
      if (--left == 0) io.stop();
    };
  };
  db.on_unusable([&](const std::string& why) {
    report_error(std::string("cannot use the database: ") + why);
    code = 1;
    io.stop();
  });
  db.call(Stmt::sessions_overview, {session}, one(&sessions));
  db.call(Stmt::recent_errors, {session}, one(&errors));
  db.call(Stmt::ha_status, {}, one(&ha));
  asio::steady_timer give_up(io);
  give_up.expires_after(kAnswerTimeout);
  give_up.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) {
      report_error("no database answered within " + std::to_string(kAnswerTimeout.count()) + " s");
      code = 1;
      io.stop();
    }
  });
  io.run();
  db.stop(std::chrono::milliseconds(0));
  if (code) return code;
  if (req.session && sessions.ok && sessions.rows.empty()) {
    report_error("session " + std::to_string(*req.session) + " does not exist (on " + db.server() + ")");
    return 1;
  }
  const std::string where = db.server() + (db.read_only() ? " (read-only: a standby or a fenced node)" : "");
  if (req.json) {
    nlohmann::ordered_json out = {{"database", {{"server", db.server()}, {"read_only", db.read_only()}}},
                                  {"sessions", rows_json(sessions)},
                                  {"recent_errors", rows_json(errors)},
                                  {"ha_status", rows_json(ha)}};
    std::cout << out.dump(2) << "\n";
    return sessions.ok ? 0 : 1;
  }
  const std::size_t width = req.wide ? 0 : kStatusWidth;
  std::cout << "Database: " << where << "\n\nSessions\n";
  if (sessions.ok) {
    std::cout << render_table(req.wide ? wide_table(sessions) : sessions_table(sessions), width);
  } else {
    std::cout << "  " << sessions.error << "\n\n";
    code = 1;
  }
  std::cout << "Recent errors\n";
  if (errors.ok) std::cout << render_table(req.wide ? wide_table(errors) : errors_table(errors), width);
  else std::cout << "  " << errors.error << "\n\n";
  std::cout << "ha_status()" << (req.wide ? "" : "  (* the node that answered; --wide for every column)") << "\n";
  if (ha.ok && req.wide) std::cout << render_table(wide_table(ha), 0);
  else if (ha.ok) std::cout << render_table(ha_status_table(ha), width) << ha_status_details(ha, width);
  else std::cout << "  unavailable: " << ha.error << "\n";
  return code;
}

}  // namespace crawler
