// crawler-ha events: the HA history of the whole cluster in one list. Each
// node keeps its own ha_events (never replicated: a standby's detections
// and a fenced primary's refusals are only in theirs), so every node is
// read at once and the rows are merged in time order. --follow keeps
// reading the rows added since, as `tail -f` does.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <tuple>

#include "crawler/agent/cluster_nodes.hpp"
#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_interrupt(int) { g_stop = 1; }

constexpr int kMaxLimit = 10000;
// --follow asks every node again this often: new events are seconds apart
// at their busiest (a failover), so a second is soon enough to see them.
constexpr std::chrono::milliseconds kFollowInterval{1000};

// One statement for both the first read and each poll after it, so that
// the node's newest id and the rows come from one snapshot: no row is
// added between them to be missed. $3 NULL: the newest $2 rows (at or
// after $1 when given); $3 an id: every row after it ($2 NULL, no limit).
// The time is read in UTC at a fixed width, so that the rows of nodes
// whose TimeZone settings differ sort as text in time order.
const char* kEventsSql =
    "WITH newest AS ("
    " SELECT e.id, pg_catalog.to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US\"+00\"') AS at,"
    "  e.term, e.node, e.kind, e.reason, e.duration_ms, e.detail::text AS detail"
    " FROM @extschema@.ha_events e"
    " WHERE CASE WHEN $3::bigint IS NULL THEN ($1::timestamptz IS NULL OR e.at >= $1::timestamptz)"
    "            ELSE e.id > $3::bigint END"
    " ORDER BY e.at DESC, e.id DESC LIMIT $2::integer)"
    " SELECT m.last_id, m.node_name, n.* FROM"
    " (SELECT pg_catalog.max(x.id) AS last_id, (SELECT h.node_name FROM @extschema@.ha_node h) AS node_name"
    "  FROM @extschema@.ha_events x) m"
    " LEFT JOIN newest n ON true";

struct Event {
  std::string at;  // "YYYY-MM-DD HH:MI:SS.uuuuuu+00"
  std::string node;
  std::string source;  // the server whose table held it
  std::int64_t id = 0;
  std::string term, kind, reason;
  Param duration_ms;
  Param detail;
};

bool operator<(const Event& a, const Event& b) {
  return std::tie(a.at, a.node, a.source, a.id) < std::tie(b.at, b.node, b.source, b.id);
}

// What each node's table has given so far.
struct NodeCursor {
  std::string name;                   // its node_name once it answered
  std::optional<std::int64_t> last;   // the newest id seen; none before its first answer
  bool answered = false;              // answered at least once
  bool noted_down = false;            // its outage was written to stderr
};

std::string text_line(const Event& e) {
  // Milliseconds are enough to read; --json keeps the microseconds.
  std::string at = e.at.size() == 29 ? e.at.substr(0, 23) + "+00" : e.at;
  return at + "  " + e.node + "  term " + e.term + "  " + e.kind + "  " + one_line(e.reason);
}

std::string json_line(const Event& e) {
  nlohmann::ordered_json j;
  j["source"] = e.source;
  j["id"] = e.id;
  j["at"] = e.at;
  j["term"] = std::stoll(e.term);
  j["node"] = e.node;
  j["kind"] = e.kind;
  j["reason"] = e.reason;
  j["duration_ms"] = e.duration_ms ? nlohmann::ordered_json(std::stod(*e.duration_ms)) : nlohmann::ordered_json();
  nlohmann::ordered_json detail =
      e.detail ? nlohmann::ordered_json::parse(*e.detail, nullptr, false) : nlohmann::ordered_json();
  j["detail"] = detail.is_discarded() ? nlohmann::ordered_json(*e.detail) : detail;
  return j.dump();
}

// The rows of one node's answer, and its newest id into `cursor`.
std::vector<Event> events_of(const NodeAnswer& a, NodeCursor* cursor) {
  std::vector<Event> out;
  const DbResult& r = a.result;
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    if (i == 0) {
      if (r.at(0, "node_name")) cursor->name = *r.at(0, "node_name");
      cursor->last = r.at(0, "last_id") ? std::stoll(*r.at(0, "last_id")) : 0;
    }
    if (!r.at(i, "id")) continue;  // an empty table, or nothing new: the one row has only last_id
    Event e;
    e.id = std::stoll(*r.at(i, "id"));
    e.at = r.at(i, "at").value_or("");
    e.node = r.at(i, "node").value_or("");
    e.source = a.target.label;
    e.term = r.at(i, "term").value_or("");
    e.kind = r.at(i, "kind").value_or("");
    e.reason = r.at(i, "reason").value_or("");
    e.duration_ms = r.at(i, "duration_ms");
    e.detail = r.at(i, "detail");
    out.push_back(std::move(e));
  }
  return out;
}

void print(const std::vector<Event>& events, bool json) {
  for (const auto& e : events) std::cout << (json ? json_line(e) : text_line(e)) << "\n";
  std::cout.flush();
}

std::string who(const NodeAnswer& a, const NodeCursor& c) {
  return c.name.empty() ? a.target.label : c.name + " (" + a.target.label + ")";
}

bool is_data_exception(const NodeAnswer& a) {
  return a.reached && !a.result.ok && a.result.sqlstate.rfind("22", 0) == 0;
}

}  // namespace

int run_events_command(const std::vector<std::string>& args) {
  int limit = 50;
  bool follow = false;
  std::string since;
  po::options_description extra{"Events"};
  extra.add_options()
      ("limit", po::value(&limit)->default_value(limit), "the newest N events of the whole cluster (1 to 10000)")
      ("since", po::value(&since),
       "only events at or after this time, as PostgreSQL reads a timestamptz ('2026-12-05 12:00', "
       "'today', '2026-12-05T12:00:00Z'; without a zone, in the session's TimeZone: PGTZ or the server's)")
      ("follow,f", po::bool_switch(&follow), "then print new events as they come, until interrupted");
  const std::string usage =
      "crawler-ha events [--db CONNINFO ...] [--json] [--limit N] [--since TIMESTAMP] [--follow]";
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
    if (limit < 1 || limit > kMaxLimit) throw ConfigError("--limit must be between 1 and " + std::to_string(kMaxLimit));
  } catch (const ConfigError& e) {
    std::cerr << "crawler-ha events: " << e.what() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << cluster_options_help(usage, extra)
              << "\nEach node's ha_events (per node, never replicated), merged in time order (UTC), oldest first.\n"
                 "Exit status: 0 when at least one node answered, 1 when none did, 2 on bad options.\n";
    return 0;
  }
  set_log_level("error");  // a node that does not answer is said once on stderr, not logged
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    std::cerr << "crawler-ha events: " << e.what() << "\n";
    return 2;
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);

  NodeSessions sessions(nodes, o.connect_timeout_s, 10000);
  std::vector<NodeCursor> cursors(nodes.size());
  const Param since_param = since.empty() ? Param() : Param(since);
  bool first = true;
  for (;;) {
    std::vector<std::vector<Param>> params;
    for (const auto& c : cursors)
      params.push_back(c.last ? std::vector<Param>{since_param, Param(), std::to_string(*c.last)}
                              : std::vector<Param>{since_param, std::to_string(limit), Param()});
    auto answers = sessions.ask_each(kEventsSql, params);
    std::vector<Event> batch;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      const NodeAnswer& a = answers[i];
      NodeCursor& c = cursors[i];
      if (is_data_exception(a)) {
        // Only --since reaches PostgreSQL as the user wrote it: it judged it.
        std::cerr << "crawler-ha events: --since: " << a.result.error << " (SQLSTATE " << a.result.sqlstate << ")\n";
        return 2;
      }
      if (!a.reached || !a.result.ok) {
        // A session lost in the call (the server stopping) is a node gone
        // away too, as the next attempt to connect will say.
        bool gone = !a.reached || a.result.sqlstate.rfind("08", 0) == 0;
        if (!c.noted_down)
          std::cerr << "crawler-ha events: " << who(a, c) << (gone ? " does not answer: " : ": ") << one_line(a.error)
                    << (follow ? "; trying again every second" : "") << "\n";
        c.noted_down = true;
        continue;
      }
      if (c.noted_down && !first) std::cerr << "crawler-ha events: " << who(a, c) << " answers now\n";
      c.noted_down = false;
      c.answered = true;
      auto some = events_of(a, &c);
      batch.insert(batch.end(), some.begin(), some.end());
    }
    std::sort(batch.begin(), batch.end());
    // Each node gave its newest `limit`; of them all, the newest `limit`.
    if (first && batch.size() > static_cast<std::size_t>(limit))
      batch.erase(batch.begin(), batch.end() - limit);
    print(batch, o.json);
    first = false;
    bool any = std::any_of(cursors.begin(), cursors.end(), [](const NodeCursor& c) { return c.answered; });
    if (!follow) return any ? 0 : 1;
    auto until = std::chrono::steady_clock::now() + kFollowInterval;
    while (!g_stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_stop) return any ? 0 : 1;
  }
}

}  // namespace crawler::agent
