#include "crawler/agent/cluster_options.hpp"

#include <sstream>

#include "crawler/config_file.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

po::options_description cluster_options(ClusterOptions& c) {
  po::options_description d{"Nodes"};
  d.add_options()
      ("help,h", "show this help")
      ("db", po::value(&c.dbs)->composing(),
       "a node's libpq connection string; repeat for each node, or give one multi-host string "
       "(host=db1,db2 port=5432,5432 ...) as workers use. None: libpq's defaults (PGHOST, ...)")
      ("connect-timeout", po::value(&c.connect_timeout_s)->default_value(c.connect_timeout_s),
       "seconds to wait for each node's connection (unless its connection string says)")
      ("json", po::bool_switch(&c.json), "JSON instead of text");
  return d;
}

}  // namespace

ClusterOptions parse_cluster_options(const std::vector<std::string>& args, const po::options_description& extra) {
  ClusterOptions c;
  po::options_description all;
  all.add(cluster_options(c)).add(extra);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(e.what());
  }
  c.help = vm.count("help") > 0;
  if (c.connect_timeout_s < 1) throw ConfigError("--connect-timeout must be at least 1");
  return c;
}

std::string cluster_options_help(const std::string& usage, const po::options_description& extra) {
  ClusterOptions defaults;
  po::options_description all;
  all.add(cluster_options(defaults)).add(extra);
  std::ostringstream out;
  out << "Usage: " << usage << "\n\n" << all;
  return out.str();
}

}  // namespace crawler::agent
