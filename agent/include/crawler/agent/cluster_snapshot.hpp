// Every node's view of itself and of the cluster, read at once: what
// `crawler-ha status` shows and `crawler-ha check` judges. Each part is an
// extension function's answer as JSON (ha_health(), ha_endpoint_check(),
// ha_status(), ha_file_sync_status()), so the commands restate no rule.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crawler/agent/cluster_nodes.hpp"

namespace crawler::agent {

struct NodeSnapshot {
  NodeTarget target;
  bool reached = false;
  std::string error;            // why it was not read
  nlohmann::json health;        // ha_health()
  nlohmann::json primary;       // ha_endpoint_check('primary'): ok, reason, lag_bytes
  nlohmann::json replica;       // ha_endpoint_check('replica')
  nlohmann::json status;        // ha_status(): this node's view of every node
  nlohmann::json file_sync;     // ha_file_sync_status()

  // The name the node gives itself, or as its peer names it when it was
  // not reached, or the target's label.
  std::string name(const std::vector<NodeSnapshot>& all) const;
  // What a reached peer last saw of this unreached node (its ha_status()
  // row), or null.
  nlohmann::json seen_by_peer(const std::vector<NodeSnapshot>& all, std::string* peer_name) const;
};

// Reads every node at once (ask_nodes()).
std::vector<NodeSnapshot> read_cluster(const std::vector<NodeTarget>& nodes, int connect_timeout_s);

// The snapshots as one JSON document: {"nodes": [...], "primary": name or null}.
nlohmann::json cluster_json(const std::vector<NodeSnapshot>& nodes);

}  // namespace crawler::agent
