// The options every cluster command takes: the nodes (--db, repeated, or one
// multi-host connection string) and the connection timeout.
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace crawler::agent {

struct ClusterOptions {
  std::vector<std::string> dbs;  // libpq connection strings; none: libpq's defaults (PGHOST, ...)
  int connect_timeout_s = 3;
  bool json = false;
  bool help = false;
};

// Parses `args` against the cluster options plus `extra` (bound by the
// caller). Throws crawler::ConfigError with a message for the user.
ClusterOptions parse_cluster_options(const std::vector<std::string>& args,
                                     const boost::program_options::options_description& extra);

// The usage text of a cluster command: `usage` line, then the options.
std::string cluster_options_help(const std::string& usage, const boost::program_options::options_description& extra);

}  // namespace crawler::agent
