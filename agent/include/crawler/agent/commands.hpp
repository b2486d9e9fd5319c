// The commands of crawler-ha, one file each; main.cpp dispatches to them.
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crawler/agent/blob_events.hpp"
#include "crawler/agent/config.hpp"
#include "crawler/agent/node_sql.hpp"

namespace crawler {
class FileStore;
class StoreSync;
}

namespace crawler::agent {

// What stands behind the servers' interfaces in a running agent: file sync
// behind BlobEvents, with its own start and stop (the agent command starts
// it after the servers are bound and stops it after they have drained),
// and the HA port's database sessions behind NodeSql.
struct EventsService {
  std::shared_ptr<BlobEvents> events;
  std::shared_ptr<NodeSql> sql;
  std::function<void()> start;                       // may throw std::runtime_error
  std::function<void(std::chrono::milliseconds)> stop;
};
using MakeEvents = std::function<EventsService(const AgentConfig&, FileStore&, StoreSync&, boost::asio::io_context&)>;

// `crawler-ha agent [--config FILE] [--option value ...]`: checks the
// settings, the token file and the store (refusing to start, exit status
// 2, with a message per problem), then serves until SIGTERM or SIGINT
// (exit 0 once requests in flight are answered or shutdown_timeout_ms
// passed). SIGHUP re-reads the token file. Exit status 1 when it cannot
// run (the address cannot be bound, TLS files unusable).
int run_agent_command(const std::vector<std::string>& args, const MakeEvents& make_events);

// `crawler-ha status [--db CONNINFO ...] [--json] [--watch]`: every node's
// role, term, write permission, lag, mode and file sync in one table, read
// from each node at once. Exit 0 when at least one node answered, 1 when
// none did, 2 on bad options.
int run_status_command(const std::vector<std::string>& args);
// `crawler-ha check [--db CONNINFO ...] [--json]`: one line and a Nagios
// exit status: 0 OK, 1 WARNING (a node down, a standby behind), 2 CRITICAL
// (no node or two nodes may write), 3 UNKNOWN (no node answers, bad options).
int run_check_command(const std::vector<std::string>& args);
// `crawler-ha events [--db CONNINFO ...] [--json] [--limit N] [--since T]
// [--follow]`: every node's ha_events merged in time order (at, then node),
// the newest N (default 50) of the whole cluster printed oldest first, one
// line each (--json: one JSON object per line with the columns and
// "source", the server). --follow then prints new rows each second until
// SIGINT or SIGTERM. Exit 0 when at least one node answered, 1 when none
// did, 2 on bad options (a --since PostgreSQL does not read, a --limit
// outside 1..10000).
int run_events_command(const std::vector<std::string>& args);
// `crawler-ha pause` / `crawler-ha resume` [--db CONNINFO ...] [--json]:
// ha_pause() / ha_resume() on every node at once, each node's answer
// printed. Exit 0 when every node answered, 1 when one did not (named on
// stderr), 2 on bad options.
int run_pause_command(const std::vector<std::string>& args);
int run_resume_command(const std::vector<std::string>& args);
// `crawler-ha switchover [--db CONNINFO ...] [--to NODE] [--force]
// [--wait-s S] [--json]`: ha_failover(target, force) on the one node that
// takes writes (ha_endpoint_check('primary')), its answer printed, then
// waits up to S seconds (default 60) for another node to take writes.
// Exit 0 when one does, 1 when no node or two take writes, the extension
// refuses (its SQLSTATE and message printed) or the wait ends, 2 on bad
// options.
int run_switchover_command(const std::vector<std::string>& args);
// `crawler-ha uri [--db CONNINFO ...] [--format conninfo|uri] [--json]`:
// the multi-host string clients should use (client_conninfo(),
// client_uri()), asking no database. Exit 0, or 2 on bad options or
// strings that cannot be joined.
int run_uri_command(const std::vector<std::string>& args);
// `crawler-ha token add --file F --scope read|operate|admin [--name N]`:
// makes a random token, appends "<scope> <sha256> <name>" to F (created
// with mode 600; refused when open to group or others) and prints the token
// once on stdout. Exit 0, 1 when the file cannot be written, 2 on bad options.
int run_token_command(const std::vector<std::string>& args);
// `crawler-ha version`: the version, and the libraries that matter.
int run_version_command(const std::vector<std::string>& args);

}  // namespace crawler::agent
