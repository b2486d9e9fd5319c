// crawler-ha uri: the connection string clients (workers, psql, an
// application) should use for the cluster: every node in one multi-host
// string that libpq walks until it finds the one that takes writes. Built
// from the strings the operator gives the other commands, without asking
// any database, so that it can be written into a configuration before the
// nodes run.
#include <iostream>
#include <nlohmann/json.hpp>

#include "crawler/agent/cluster_nodes.hpp"
#include "crawler/agent/cluster_options.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/config_file.hpp"

namespace po = boost::program_options;

namespace crawler::agent {

int run_uri_command(const std::vector<std::string>& args) {
  std::string format = "conninfo";
  po::options_description extra{"Uri"};
  extra.add_options()
      ("format", po::value(&format)->default_value(format),
       "conninfo (host=h1,h2 port=p1,p2 ...) or uri (postgresql://h1:p1,h2:p2/db?...)");
  ClusterOptions o;
  try {
    o = parse_cluster_options(args, extra);
    if (format != "conninfo" && format != "uri") throw ConfigError("--format must be conninfo or uri");
  } catch (const ConfigError& e) {
    std::cerr << "crawler-ha uri: " << e.what() << "\n";
    return 2;
  }
  if (o.help) {
    std::cout << cluster_options_help("crawler-ha uri [--db CONNINFO ...] [--format conninfo|uri] [--json]", extra)
              << "\nThe nodes' servers in one string, with the strings' other settings (never a password),\n"
                 "target_session_attrs=read-write and connect_timeout=2 unless they say otherwise.\n"
                 "Asks no database. Exit status: 0, or 2 on bad options or strings that differ.\n";
    return 0;
  }
  try {
    auto nodes = split_nodes(o.dbs);
    if (o.json) {
      nlohmann::ordered_json j;
      j["conninfo"] = client_conninfo(nodes);
      j["uri"] = client_uri(nodes);
      std::cout << j.dump() << "\n";
    } else {
      std::cout << (format == "uri" ? client_uri(nodes) : client_conninfo(nodes)) << "\n";
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "crawler-ha uri: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace crawler::agent
