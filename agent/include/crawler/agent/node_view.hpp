// What file sync needs to know of the cluster, as the node's database sees
// it (ha_status()): this node's role and replication mode, the peer
// agent's URL, the semi_sync timeout. Refreshed every second by one thread,
// read by all; a value older than a few seconds counts as unknown.
#pragma once
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace crawler::agent {

class NodeDb;

struct NodeFacts {
  std::string role;              // this node's: primary, standby, ... ("" unknown)
  std::string replication_mode;  // async | sync | semi_sync ("" unknown)
  bool fenced = false;           // this node fenced itself or was fenced
  std::string peer_agent_url;    // no trailing '/'; "" when unknown
  long sync_timeout_ms = 10000;  // crawler_ha.sync_timeout
  std::chrono::steady_clock::time_point read_at{};
};

// Asks the node's database (ha_status() and the crawler_ha.sync_timeout
// setting); nullopt (logged) when it does not answer.
std::optional<NodeFacts> read_node_facts(NodeDb& db);

class NodeView {
 public:
  // The last facts read, or nullopt when none were read within `max_age`
  // (the database is down: nothing is known).
  std::optional<NodeFacts> get(std::chrono::milliseconds max_age = std::chrono::seconds(5)) const;
  // The peer agent's URL, "" when unknown or too old.
  std::string peer_url() const;
  // Stores new facts and logs what changed (peer URL, role, mode).
  void set(NodeFacts f);

 private:
  mutable std::mutex m_;
  std::optional<NodeFacts> facts_;
};

}  // namespace crawler::agent
