// What the crawler-ha commands that show and steer the cluster (status,
// check, events, pause, switchover, uri) share: the nodes they are given,
// and one SQL call on each at once, every node on its own connection and
// thread, so that they answer when one node is down or none is primary.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler::agent {

class NodeDb;

struct NodeTarget {
  std::string label;     // "host:port" (or the socket directory), for the output
  std::string conninfo;  // one server
  // This server as the string named it ("" when it did not), and every
  // other setting of the string it came from (dbname, user, sslmode,
  // target_session_attrs, password...), so that the servers can be joined
  // again into one string for clients (client_conninfo()).
  std::string host, hostaddr, port;
  std::map<std::string, std::string> settings;
};

// One NodeTarget per server named by `dbs` (libpq conninfo strings or
// URIs): a multi-host one (host=a,b port=1,2, as workers use) becomes one
// per host with its other settings kept, target_session_attrs and
// load_balance_hosts dropped from its conninfo (each node is asked,
// writable or not). No string gives libpq's default server (PGHOST and the
// rest). Throws std::invalid_argument with libpq's message when a string
// does not parse, or when the port list does not match the host list.
std::vector<NodeTarget> split_nodes(const std::vector<std::string>& dbs);

// The one multi-host connection string that clients should use to reach
// whichever of `nodes` may write: host=h1,h2 port=p1,p2 (hostaddr= when
// given) and the nodes' other settings except the passwords, with
// target_session_attrs=read-write and connect_timeout=2 unless the
// settings name their own. Values are quoted so that libpq reads them back
// unchanged. Throws std::invalid_argument when the nodes' settings differ
// (two databases, two users): one string cannot say both.
std::string client_conninfo(const std::vector<NodeTarget>& nodes);
// The same as a URI: postgresql://[user@]h1:p1,h2:p2[/dbname]?k=v&...,
// every host, port, name and value percent-encoded (all but A-Z a-z 0-9
// - . _ ~), which libpq decodes. Throws as client_conninfo() does.
std::string client_uri(const std::vector<NodeTarget>& nodes);
// `s` with every byte but A-Z a-z 0-9 - . _ ~ written %XX (RFC 3986's
// unreserved characters are the only ones safe in every part of a URI).
std::string percent_encode(const std::string& s);

struct NodeAnswer {
  NodeTarget target;
  bool reached = false;  // connected and the extension found
  std::string error;     // why not reached, or why the call failed
  DbResult result;       // the answer when reached (result.ok false: the call failed)
};

// One session with each node, kept from one call to the next (a command
// that polls), each opened again on the next call when it was lost or could
// not be opened. Each connection attempt takes at most `connect_timeout_s`
// unless the node's conninfo says otherwise, and each statement at most
// `statement_timeout_ms`.
class NodeSessions {
 public:
  NodeSessions(std::vector<NodeTarget> nodes, int connect_timeout_s, int statement_timeout_ms);
  ~NodeSessions();
  NodeSessions(const NodeSessions&) = delete;
  NodeSessions& operator=(const NodeSessions&) = delete;

  const std::vector<NodeTarget>& nodes() const { return nodes_; }
  // Runs `sql` (every "@extschema@" is the extension's schema, quoted) with
  // `params` on every node at once and returns their answers in the order
  // of nodes().
  std::vector<NodeAnswer> ask(const std::string& sql, const std::vector<Param>& params = {});
  // The same with parameters of each node's own: node i gets params[i].
  std::vector<NodeAnswer> ask_each(const std::string& sql, const std::vector<std::vector<Param>>& params);

 private:
  std::vector<NodeTarget> nodes_;
  std::vector<std::unique_ptr<NodeDb>> dbs_;
};

// One call of `sql` on every node at once, on sessions of its own
// (NodeSessions::ask()), for a command that asks once.
std::vector<NodeAnswer> ask_nodes(const std::vector<NodeTarget>& nodes, const std::string& sql,
                                  int connect_timeout_s = 3, int statement_timeout_ms = 10000,
                                  const std::vector<Param>& params = {});

}  // namespace crawler::agent
