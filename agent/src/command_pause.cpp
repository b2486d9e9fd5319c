// crawler-ha pause and crawler-ha resume: maintenance mode for the whole
// cluster. Each node's HA worker decides on its own whether to fail over or
// rejoin, and ha_pause() stops only the worker of the node it runs on, so
// the command calls it on every node at once and succeeds only when every
// node said so.
#include <iostream>
#include <nlohmann/json.hpp>

#include "crawler/agent/cluster_nodes.hpp"
#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

struct Action {
  const char* command;   // "pause"
  const char* function;  // "ha_pause"
  const char* done;      // "paused": the extension's answer, for the help
  const char* left;      // what a node that missed the call still does
};

const Action kPause{"pause", "ha_pause", "paused",
                    "until then it may still fail over or rejoin on its own"};
const Action kResume{"resume", "ha_resume", "resumed",
                     "until then it stays paused: no automatic failover or rejoin there"};

int run(const Action& act, const std::vector<std::string>& args) {
  po::options_description extra{act.command};
  const std::string command = std::string("crawler-ha ") + act.command;
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
  } catch (const ConfigError& e) {
    std::cerr << command << ": " << e.what() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << cluster_options_help(command + " [--db CONNINFO ...] [--json]", extra) << "\nCalls "
              << act.function << "() (granted to crawler_ha_admin) on every node at once; each prints its answer.\n"
              << "Exit status: 0 when every node answered \"" << act.done
              << "\", 1 when one did not, 2 on bad options.\n";
    return 0;
  }
  set_log_level("error");  // a node that does not answer is in the output, not the log
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    std::cerr << command << ": " << e.what() << "\n";
    return 2;
  }
  // The name in the same statement: a node that refuses the call is named
  // by its server, one that answers by its own name.
  const std::string sql = std::string("SELECT h.node_name, @extschema@.") + act.function +
                          "() AS answer FROM @extschema@.ha_node h";
  auto answers = ask_nodes(nodes, sql, o.connect_timeout_s);

  nlohmann::ordered_json doc;
  doc["action"] = act.command;
  doc["nodes"] = nlohmann::ordered_json::array();
  std::vector<std::string> missed, down;
  for (const auto& a : answers) {
    bool ok = a.reached && a.result.ok && a.result.rows.size() == 1;
    std::string name = ok && a.result.at(0, "node_name") ? *a.result.at(0, "node_name") : a.target.label;
    std::string answer = ok ? a.result.at(0, "answer").value_or("") : "";
    nlohmann::ordered_json j;
    j["server"] = a.target.label;
    j["name"] = ok ? nlohmann::ordered_json(name) : nlohmann::ordered_json();
    j["reached"] = a.reached;
    j["ok"] = ok;
    j["answer"] = ok ? nlohmann::ordered_json(answer) : nlohmann::ordered_json();
    j["sqlstate"] = a.reached && !a.result.ok ? nlohmann::ordered_json(a.result.sqlstate) : nlohmann::ordered_json();
    j["error"] = ok ? nlohmann::ordered_json() : nlohmann::ordered_json(a.error);
    doc["nodes"].push_back(j);
    if (!o.json) {
      if (ok) std::cout << name << ": " << answer << "\n";
      else if (a.reached) std::cout << name << ": ERROR " << one_line(a.error) << "\n";
      else std::cout << name << ": does not answer: " << one_line(a.error) << "\n";
    }
    if (!ok) missed.push_back(name);
    if (!a.reached) down.push_back(name);
  }
  doc["ok"] = missed.empty();
  if (o.json) std::cout << doc.dump() << "\n";
  if (missed.empty()) return 0;
  std::string list;
  for (std::size_t i = 0; i < missed.size(); ++i) list += (i ? ", " : "") + missed[i];
  std::cerr << command << ": not " << act.done << " on " << list << " (" << missed.size() << " of " << answers.size()
            << " nodes): the cluster is not " << act.done << ".";
  if (!down.empty())
    std::cerr << " A node that was down must be " << act.done << " when it returns (" << command << " again); "
              << act.left << ".";
  std::cerr << "\n";
  return 1;
}

}  // namespace

int run_pause_command(const std::vector<std::string>& args) { return run(kPause, args); }

int run_resume_command(const std::vector<std::string>& args) { return run(kResume, args); }

}  // namespace crawler::agent
