// crawler-ha switchover: a planned change of primary without loss. The
// extension does the switchover (ha_failover(): fence, wait for the standby
// to confirm the last write, promote it, follow it) and judges whether the
// target may take over; this command only finds the node that takes writes
// now, asks it, and waits until clients can write on another node.
#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "crawler/agent/cluster_nodes.hpp"
#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

using Clock = std::chrono::steady_clock;

// The extension bounds each step of a switchover by its own timeouts
// (crawler_ha.response_timeout_ms); this only keeps a hung server from
// holding the command for ever.
constexpr int kSwitchoverCallTimeoutMs = 300000;
// How often the nodes are asked whether the new primary takes writes: the
// write rule turns true within a few of the HA worker's own steps.
constexpr std::chrono::milliseconds kPollInterval{200};

// Whether each node takes writes now: the load balancers' own rule.
const char* kWritableSql =
    "SELECT h.node_name, p.ok, p.reason FROM @extschema@.ha_node h, @extschema@.ha_endpoint_check('primary') p";

struct NodeWrites {
  std::string name;    // its node_name, or the server when it did not answer
  bool answered = false;
  bool writable = false;
  std::string reason;  // why not writable, or why it did not answer
};

std::vector<NodeWrites> who_writes(const std::vector<NodeTarget>& nodes, int connect_timeout_s) {
  std::vector<NodeWrites> out;
  for (const auto& a : ask_nodes(nodes, kWritableSql, connect_timeout_s)) {
    NodeWrites w;
    w.name = a.target.label;
    if (a.reached && a.result.ok && a.result.rows.size() == 1) {
      w.answered = true;
      w.name = a.result.at(0, "node_name").value_or(a.target.label);
      w.writable = a.result.at(0, "ok").value_or("f") == "t";
      w.reason = a.result.at(0, "reason").value_or("");
    } else {
      w.reason = a.error.empty() ? "no answer" : a.error;
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::string seconds(Clock::duration d) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << std::chrono::duration<double>(d).count() << " s";
  return s.str();
}

// The outcome, as text on stdout/stderr or as one JSON object on stdout.
struct Report {
  bool json = false;
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();

  int fail(const std::string& why, int status = 1) {
    if (json) {
      doc["ok"] = false;
      doc["error"] = why;
      std::cout << doc.dump() << "\n";
    } else {
      std::cerr << "crawler-ha switchover: " << why << "\n";
    }
    return status;
  }
};

}  // namespace

int run_switchover_command(const std::vector<std::string>& args) {
  std::string to;
  bool force = false;
  double wait_s = 60;
  po::options_description extra{"Switchover"};
  extra.add_options()
      ("to", po::value(&to), "the node to hand over to (its node_name); default: the primary's standby")
      ("force", po::bool_switch(&force), "hand over to a standby that lags or does not stream (writes it has not "
                                         "confirmed are not waited for)")
      ("wait-s", po::value(&wait_s)->default_value(wait_s),
       "seconds to wait, after the switchover's answer, for another node to take writes");
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
    if (wait_s < 0 || wait_s > 3600) throw ConfigError("--wait-s must be between 0 and 3600");
  } catch (const ConfigError& e) {
    std::cerr << "crawler-ha switchover: " << e.what() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << cluster_options_help("crawler-ha switchover [--db CONNINFO ...] [--to NODE] [--force] [--wait-s S]",
                                      extra)
              << "\nCalls ha_failover(target, force) (granted to crawler_ha_admin) on the node that takes writes\n"
                 "(ha_endpoint_check('primary')), then waits until another node takes them.\n"
                 "Exit status: 0 when another node takes writes, 1 when refused, failed or not within --wait-s,\n"
                 "2 on bad options.\n";
    return 0;
  }
  set_log_level("error");
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    std::cerr << "crawler-ha switchover: " << e.what() << "\n";
    return 2;
  }
  Report report;
  report.json = o.json;
  report.doc["to"] = to.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(to);
  report.doc["force"] = force;

  // The one node that takes writes is the one that can hand them over; with
  // none or two, a switchover would only add to what is wrong.
  auto before = who_writes(nodes, o.connect_timeout_s);
  std::vector<std::size_t> writable;
  std::string states;
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (before[i].writable) writable.push_back(i);
    states += (i ? "; " : "") + before[i].name + ": " +
              (before[i].writable ? "takes writes"
                                  : (before[i].answered ? "" : "does not answer: ") + one_line(before[i].reason));
  }
  if (writable.empty()) return report.fail("no node takes writes, so none can hand over (" + states + ")");
  if (writable.size() > 1)
    return report.fail(std::to_string(writable.size()) + " nodes take writes; refusing to add a switchover to that (" +
                       states + ")");
  const std::size_t from = writable[0];
  const std::string old_primary = before[from].name;
  report.doc["from"] = old_primary;

  const auto t0 = Clock::now();
  auto called = ask_nodes({nodes[from]}, "SELECT @extschema@.ha_failover(target => $1::text, force => $2::boolean) AS answer",
                          o.connect_timeout_s, kSwitchoverCallTimeoutMs,
                          {to.empty() ? Param() : Param(to), Param(force ? "true" : "false")})[0];
  if (!called.reached) return report.fail(old_primary + " does not answer: " + one_line(called.error));
  if (!called.result.ok) {
    report.doc["sqlstate"] = called.result.sqlstate;
    return report.fail(old_primary + " refused the switchover: SQLSTATE " + called.result.sqlstate + ": " +
                       one_line(called.result.error));
  }
  const std::string answer = called.result.rows.empty() ? "" : called.result.at(0, "answer").value_or("");
  report.doc["answer"] = answer;
  if (!o.json) std::cout << old_primary << ": " << answer << std::endl;

  const auto answered = Clock::now();
  const auto deadline = answered + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
  for (;;) {
    for (const auto& n : who_writes(nodes, o.connect_timeout_s)) {
      if (!n.writable || n.name == old_primary) continue;
      auto took = Clock::now() - t0;
      report.doc["new_primary"] = n.name;
      report.doc["seconds"] = std::chrono::duration<double>(took).count();
      report.doc["ok"] = true;
      if (o.json) std::cout << report.doc.dump() << "\n";
      else std::cout << n.name << " takes writes, " << seconds(took) << " after the switchover began\n";
      return 0;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return report.fail("no node but " + old_primary + " takes writes " + seconds(Clock::now() - answered) +
                     " after the switchover's answer; see crawler-ha status and crawler-ha events");
}

}  // namespace crawler::agent
