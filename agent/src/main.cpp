// crawler-ha: the node program. The first argument names a command; each
// command is a function of its own file (commands.hpp).
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "crawler/agent/command_backup.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/agent/file_sync.hpp"
#include "crawler/agent/node_sql_pool.hpp"

using namespace crawler::agent;

namespace {

// How long one SQL call of the HTTP API may run: a load balancer's check
// must get an answer while it still means something.
constexpr int kApiStatementTimeoutMs = 5000;

// File sync is what stands behind the blob routes' events in the real
// program (tests put a recorder there), and a pool of sessions behind the
// HA port's SQL calls.
EventsService make_file_sync(const AgentConfig& config, crawler::FileStore& store,
                             crawler::StoreSync& durability, boost::asio::io_context& io) {
  auto sync = std::make_shared<FileSync>(config, store, durability, io);
  auto sql = std::make_shared<NodeSqlPool>(config.db, config.api_db_sessions, kApiStatementTimeoutMs, io);
  return {sync, sql, [sync] { sync->start(); }, [sync](std::chrono::milliseconds wait) { sync->stop(wait); }};
}

int help(const std::vector<std::string>&);

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const Command kCommands[] = {
    {"agent", "run the node agent: blob store routes, file sync and the HA port, until SIGTERM",
     [](const std::vector<std::string>& args) { return run_agent_command(args, make_file_sync); }},
    {"status", "the nodes in one table: role, term, writable, lag, mode, file sync (--watch, --json)",
     run_status_command},
    {"check", "the cluster's health in one line, Nagios exit status 0/1/2/3", run_check_command},
    {"events", "every node's HA events merged in time order (--follow, --since, --limit, --json)",
     run_events_command},
    {"pause", "maintenance mode on every node: no automatic failover or rejoin (ha_pause())", run_pause_command},
    {"resume", "end maintenance mode on every node (ha_resume())", run_resume_command},
    {"switchover", "planned zero-loss switchover from the primary (--to NODE, --force), waits for the new one",
     run_switchover_command},
    {"uri", "the multi-host connection string clients should use (--format conninfo|uri)", run_uri_command},
    {"backup", "pgBackRest backups of this node: setup (configuration, WAL archiving), run (on the primary), list",
     run_backup_command},
    {"restore", "a node back from the backups: the database to a time or the latest, its blobs, a new term",
     run_restore_command},
    {"token", "token add: a scoped API token, its hash appended to the api_tokens_file", run_token_command},
    {"version", "print the version", run_version_command},
    {"help", "this help (crawler-ha agent --help: the agent's settings)", help},
};

int help(const std::vector<std::string>&) {
  std::cout << "crawler-ha " << CRAWLER_VERSION << ": the node program of crawler_ha\n\nUsage:\n";
  for (const Command& c : kCommands) std::cout << "  crawler-ha " << c.name << "\n      " << c.summary << "\n";
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  std::string name = argc > 1 ? argv[1] : "help";
  if (name == "--help" || name == "-h") name = "help";
  if (name == "--version") name = "version";
  std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  for (const Command& c : kCommands)
    if (name == c.name) return c.run(args);
  std::cerr << "crawler-ha: unknown command \"" << name << "\" (see crawler-ha help)\n";
  return 2;
}
