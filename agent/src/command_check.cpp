// crawler-ha check: the cluster's health for Nagios, Icinga or any
// monitoring that runs a command: one line, and the exit status 0 OK,
// 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The judgement uses the extension's own
// checks (ha_endpoint_check('primary') and ('replica')) on every node.
#include <iostream>

#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/cluster_snapshot.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

enum Verdict { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
const char* kVerdictNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

struct Judgement {
  Verdict verdict = kOk;
  std::string text;
};

void worsen(Verdict* v, Verdict to) {
  if (to > *v) *v = to;
}

// The verdict on a cluster, from its nodes' snapshots: CRITICAL without
// exactly one node that may write; WARNING when a node does not answer or
// a standby fails its replica check; UNKNOWN when no node answers.
Judgement judge_cluster(const std::vector<NodeSnapshot>& nodes) {
  Judgement j;
  std::vector<std::string> writable, parts;
  int reached = 0;
  for (const auto& n : nodes) {
    const std::string name = n.name(nodes);
    if (!n.reached) {
      worsen(&j.verdict, kWarning);
      parts.push_back(name + " does not answer (" + n.error + ")");
      continue;
    }
    ++reached;
    if (n.primary.value("ok", false)) {
      writable.push_back(name);
      parts.push_back("primary " + name + " (term " + n.health["term"].dump() + ") writable");
    } else if (n.health.value("role", "") == "standby") {
      if (n.replica.value("ok", false)) {
        parts.push_back("standby " + name + " " + n.replica["lag_bytes"].dump() + " bytes behind");
      } else {
        worsen(&j.verdict, kWarning);
        parts.push_back("standby " + name + ": " + n.replica.value("reason", "not a healthy replica"));
      }
    } else if (n.health.value("role", "") != "witness") {
      parts.push_back(name + ": " + n.primary.value("reason", "refuses writes"));
    }
  }
  if (reached == 0) {
    j.verdict = kUnknown;
    parts.insert(parts.begin(), "no node answers");
  } else if (writable.empty()) {
    worsen(&j.verdict, kCritical);
    parts.insert(parts.begin(), "no node may write");
  } else if (writable.size() > 1) {
    worsen(&j.verdict, kCritical);
    parts.insert(parts.begin(), std::to_string(writable.size()) + " nodes may write");
  }
  for (std::size_t i = 0; i < parts.size(); ++i) j.text += (i ? "; " : "") + parts[i];
  return j;
}

}  // namespace

int run_check_command(const std::vector<std::string>& args) {
  po::options_description extra{"Check"};
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
  } catch (const ConfigError& e) {
    std::cout << "CRAWLER_HA UNKNOWN - " << e.what() << "\n";
    return kUnknown;
  }
  if (o.help) {
    std::cout << cluster_options_help("crawler-ha check [--db CONNINFO ...] [--json]", extra)
              << "\nExit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios plugin conventions).\n";
    return 0;
  }
  set_log_level("error");
  std::vector<NodeTarget> nodes;
  try {
    nodes = split_nodes(o.dbs);
  } catch (const std::invalid_argument& e) {
    std::cout << "CRAWLER_HA UNKNOWN - " << e.what() << "\n";
    return kUnknown;
  }
  auto snapshot = read_cluster(nodes, o.connect_timeout_s);
  Judgement j = judge_cluster(snapshot);
  if (o.json) {
    nlohmann::json doc = cluster_json(snapshot);
    doc["verdict"] = kVerdictNames[j.verdict];
    doc["exit_status"] = static_cast<int>(j.verdict);
    doc["summary"] = j.text;
    std::cout << doc.dump() << "\n";
  } else {
    std::cout << "CRAWLER_HA " << kVerdictNames[j.verdict] << " - " << j.text << "\n";
  }
  return j.verdict;
}

}  // namespace crawler::agent
