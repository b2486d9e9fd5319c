#include "crawler/agent/cluster_snapshot.hpp"

namespace crawler::agent {
namespace {

// One round trip per node, with the functions a crawler_ha_reader may call.
const char* kSnapshotSql =
    "SELECT pg_catalog.row_to_json(h)::text, pg_catalog.row_to_json(p)::text, pg_catalog.row_to_json(r)::text,"
    " (SELECT coalesce(pg_catalog.json_agg(s), '[]') FROM @extschema@.ha_status() s)::text,"
    " (SELECT pg_catalog.row_to_json(f) FROM @extschema@.ha_file_sync_status() f)::text"
    " FROM @extschema@.ha_health() h, @extschema@.ha_endpoint_check('primary') p,"
    " @extschema@.ha_endpoint_check('replica') r";

nlohmann::json parse(const Param& text) {
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

}  // namespace

std::vector<NodeSnapshot> read_cluster(const std::vector<NodeTarget>& nodes, int connect_timeout_s) {
  std::vector<NodeSnapshot> out;
  for (auto& a : ask_nodes(nodes, kSnapshotSql, connect_timeout_s)) {
    NodeSnapshot s;
    s.target = a.target;
    s.error = a.error;
    if (a.reached && a.result.ok && a.result.rows.size() == 1) {
      const auto& row = a.result.rows[0];
      s.reached = true;
      s.health = parse(row[0]);
      s.primary = parse(row[1]);
      s.replica = parse(row[2]);
      s.status = parse(row[3]);
      s.file_sync = parse(row[4]);
    } else if (a.reached && s.error.empty()) {
      s.error = "the status query returned " + std::to_string(a.result.rows.size()) + " rows";
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string NodeSnapshot::name(const std::vector<NodeSnapshot>& all) const {
  if (reached && health.is_object() && health.value("node_name", "") != "") return health["node_name"];
  std::string peer;
  nlohmann::json seen = seen_by_peer(all, &peer);
  if (seen.is_object() && seen.value("node_name", "") != "") return seen["node_name"];
  return target.label;
}

nlohmann::json NodeSnapshot::seen_by_peer(const std::vector<NodeSnapshot>& all, std::string* peer_name) const {
  if (reached) return nullptr;
  // Of two data nodes, the reached one's non-local data-node row is this one.
  std::vector<const NodeSnapshot*> others;
  for (const auto& o : all)
    if (&o != this && o.reached) others.push_back(&o);
  if (others.size() != 1 || all.size() != 2) return nullptr;
  for (const auto& row : others[0]->status)
    if (!row.value("is_local", true) && row.value("role", "") != "witness") {
      *peer_name = others[0]->health.value("node_name", others[0]->target.label);
      return row;
    }
  return nullptr;
}

nlohmann::json cluster_json(const std::vector<NodeSnapshot>& nodes) {
  nlohmann::json doc = nlohmann::json::object();
  doc["nodes"] = nlohmann::json::array();
  doc["primary"] = nullptr;
  for (const auto& n : nodes) {
    nlohmann::json j = nlohmann::json::object();
    j["name"] = n.name(nodes);
    j["server"] = n.target.label;
    j["reached"] = n.reached;
    j["error"] = n.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.error);
    j["health"] = n.health;
    j["primary_check"] = n.primary;
    j["replica_check"] = n.replica;
    j["status"] = n.status;
    j["file_sync"] = n.file_sync;
    std::string peer;
    j["seen_by_peer"] = n.seen_by_peer(nodes, &peer);
    doc["nodes"].push_back(std::move(j));
    if (n.reached && n.primary.value("ok", false)) doc["primary"] = n.name(nodes);
  }
  return doc;
}

}  // namespace crawler::agent
