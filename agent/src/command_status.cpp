// crawler-ha status: one table of the nodes, as each node sees itself
// (ha_health(), ha_endpoint_check()) and, for a node that does not answer,
// as its peer last saw it. A node is shown as the primary only when the
// write rule lets it write, so a dead or fenced old primary never appears
// as a second primary.
#include <chrono>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/cluster_snapshot.hpp"
#include "crawler/agent/byte_size_text.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_interrupt(int) { g_stop = 1; }

std::string bytes_text(const nlohmann::json& v) {
  return v.is_number() ? byte_size_text(v.get<double>()) : "-";
}

std::string yes_no(const nlohmann::json& v) { return v.is_boolean() ? (v.get<bool>() ? "yes" : "no") : "-"; }

std::string text_of(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// This node's own row of its ha_status().
nlohmann::json local_row(const NodeSnapshot& n) {
  if (n.status.is_array())
    for (const auto& row : n.status)
      if (row.value("is_local", false)) return row;
  return nlohmann::json::object();
}

std::vector<std::vector<std::string>> rows_of(const std::vector<NodeSnapshot>& nodes) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NODE", "SERVER", "ROLE", "TERM", "WRITABLE", "HA WORKER", "LAG", "MODE", "PAUSED", "FENCED",
                  "FILES MISSING", "NOTE"});
  for (const auto& n : nodes) {
    if (!n.reached) {
      std::string peer, note = "does not answer: " + n.error;
      nlohmann::json seen = n.seen_by_peer(nodes, &peer);
      if (seen.is_object())
        note += "; " + peer + " last saw it as " + text_of(seen["role"]) + " of term " + text_of(seen["term"]) +
                (seen.value("healthy", false) ? "" : " (unhealthy)");
      rows.push_back({n.name(nodes), n.target.label, "unreachable", "-", "-", "-", "-", "-", "-", "-", "-", note});
      continue;
    }
    const auto& h = n.health;
    bool writable = n.primary.value("ok", false);
    std::string role = text_of(h["role"]);
    std::string note;
    // Only the write rule makes a primary; a role that says primary
    // without it is shown as refusing writes.
    if (role == "primary" && !writable) {
      role = "primary (no writes)";
      note = text_of(n.primary["reason"]);
    } else if (role == "standby" && !n.replica.value("ok", false)) {
      note = text_of(n.replica["reason"]);
    }
    nlohmann::json lag = role == "standby" ? n.replica["lag_bytes"] : h["lag_bytes"];
    nlohmann::json local = local_row(n);
    rows.push_back({n.name(nodes), n.target.label, role, text_of(h["term"]), writable ? "yes" : "no",
                    h.value("healthy", false) ? "running" : "stopped", bytes_text(lag),
                    text_of(local.value("replication_mode", nlohmann::json())), yes_no(h["paused"]),
                    yes_no(h["fenced"]),
                    n.file_sync.is_object() ? text_of(n.file_sync["blobs_missing"]) : "-", note});
  }
  return rows;
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

}  // namespace

int run_status_command(const std::vector<std::string>& args) {
  bool watch = false;
  double interval_s = 2;
  po::options_description extra{"Status"};
  extra.add_options()
      ("watch", po::bool_switch(&watch), "show it again every --interval seconds until interrupted")
      ("interval", po::value(&interval_s)->default_value(interval_s), "seconds between two views with --watch");
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
    if (interval_s < 0.1) throw ConfigError("--interval must be at least 0.1");
  } catch (const ConfigError& e) {
    std::cerr << "crawler-ha status: " << e.what() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << cluster_options_help("crawler-ha status [--db CONNINFO ...] [--json] [--watch]", extra);
    return 0;
  }
  set_log_level("error");  // a connection that fails is shown in the table, not logged
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    std::cerr << "crawler-ha status: " << e.what() << "\n";
    return 2;
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  for (;;) {
    auto snapshot = read_cluster(nodes, o.connect_timeout_s);
    if (watch && !o.json) std::cout << "\033[H\033[2J";  // clear the terminal
    if (o.json) std::cout << cluster_json(snapshot).dump() << std::endl;
    else print_table(std::cout, rows_of(snapshot));
    if (!watch) {
      bool any = false;
      for (const auto& n : snapshot) any = any || n.reached;
      return any ? 0 : 1;
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(interval_s);
    while (!g_stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_stop) return 0;
  }
}

}  // namespace crawler::agent
