// One blocking libpq session with this node's own PostgreSQL, for one file
// sync thread. Every thread has its own, so that a slow call (an inventory
// batch, blob_removed() waiting for a writer's lock) holds up only its own
// work. The session writes the per-node blob tables on a read-only standby
// too and never waits for a synchronous standby: they are never replicated.
#pragma once
#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <vector>

#include "crawler/agent/stopper.hpp"
#include "crawler/db_call.hpp"

namespace crawler::agent {

class NodeDb {
 public:
  // `conninfo`: libpq keyword/value string or URI (AgentConfig::db);
  // `name` names this session in the logs, after `part` (the agent's part
  // that uses it). `extra_options` are more `-c name=value` settings for
  // the server, after the session's own (a statement_timeout, say).
  // `connect_timeout_s` bounds each connection attempt.
  NodeDb(std::string conninfo, std::string name, std::string part = "file sync",
         std::string extra_options = "", int connect_timeout_s = 10);
  ~NodeDb();
  NodeDb(const NodeDb&) = delete;
  NodeDb& operator=(const NodeDb&) = delete;

  // Connected and the crawler_ha schema found; otherwise tries again with
  // a back-off (0.5 s doubling to 30 s) until it works or `stop` stops it
  // (false). Logs the first failure of an outage and its end, not every try.
  bool ensure(Stopper& stop);
  // One connection attempt when not connected, without sleeping (a thread
  // that must keep answering while the database is down); true when
  // connected. Logged as ensure() does.
  bool try_connect();
  bool connected() const { return conn_ != nullptr; }
  // Why the last connection attempt failed (one line; "" after a success).
  const std::string& last_error() const { return last_error_; }

  // Runs one statement (autocommit) with text parameters. A failed call
  // comes back with ok false, its SQLSTATE and message; a broken connection
  // is dropped (ensure() reconnects) and answered with SQLSTATE 08006.
  DbResult call(const std::string& sql, const std::vector<Param>& params = {});

  // "schema"."name": the extension's objects, schema-qualified, since the
  // session's search_path is not trusted to find them.
  std::string fn(const char* name) const { return schema_ + "." + name; }
  // `sql` with every "@extschema@" replaced by the extension's schema,
  // quoted (the extension's own SQL files use the same token).
  std::string with_schema(const std::string& sql) const;

 private:
  bool open(std::string* error);
  void drop();
  std::string conninfo_, name_, part_, extra_options_, schema_, last_error_;
  int connect_timeout_s_;
  PGconn* conn_ = nullptr;
  std::chrono::milliseconds backoff_{500};
  bool outage_logged_ = false;
};

}  // namespace crawler::agent
