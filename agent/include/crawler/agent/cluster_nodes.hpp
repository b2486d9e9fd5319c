// What the crawler-ha commands that show and steer the cluster (status,
// check, events) share: the nodes they are given, and one SQL call on each
// at once, every node on its own connection and thread, so that they answer
// when one node is down or none is primary.
#pragma once
#include <string>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler::agent {

struct NodeTarget {
  std::string label;     // "host:port" (or the socket directory), for the output
  std::string conninfo;  // one server
};

// One NodeTarget per server named by `dbs` (libpq conninfo strings or
// URIs): a multi-host one (host=a,b port=1,2, as workers use) becomes one
// per host with its other settings kept, target_session_attrs and
// load_balance_hosts dropped. No string gives libpq's default server
// (PGHOST and the rest). Throws std::invalid_argument with libpq's message
// when a string does not parse, or when the port list does not match the
// host list.
std::vector<NodeTarget> split_nodes(const std::vector<std::string>& dbs);

struct NodeAnswer {
  NodeTarget target;
  bool reached = false;  // connected and the extension found
  std::string error;     // why not reached, or why the call failed
  DbResult result;       // the answer when reached (result.ok false: the call failed)
};

// Runs `sql` (every "@extschema@" is the extension's schema, quoted) on
// every node at once and returns their answers in the order of `nodes`.
// Each connection attempt takes at most `connect_timeout_s` unless the
// node's conninfo says otherwise, and the statement at most
// `statement_timeout_ms`.
std::vector<NodeAnswer> ask_nodes(const std::vector<NodeTarget>& nodes, const std::string& sql,
                                  int connect_timeout_s = 3, int statement_timeout_ms = 10000);

}  // namespace crawler::agent
