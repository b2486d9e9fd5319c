#include "crawler/agent/node_view.hpp"

#include "crawler/agent/node_db.hpp"
#include "crawler/log.hpp"

namespace crawler::agent {

std::optional<NodeFacts> read_node_facts(NodeDb& db) {
  // One statement, one call of ha_status(): the local row's role, mode and
  // fence, the peer row's agent URL (the row that is neither local nor the
  // witness), the timeout in ms whatever unit it was written in.
  DbResult r = db.call(
      "WITH s AS MATERIALIZED (SELECT * FROM " + db.fn("ha_status") + "()) "
      "SELECT (SELECT s.role FROM s WHERE s.is_local) AS role, "
      "(SELECT s.replication_mode FROM s WHERE s.is_local) AS mode, "
      "(SELECT s.fenced FROM s WHERE s.is_local) AS fenced, "
      "(SELECT s.agent_url FROM s "
      "  WHERE NOT s.is_local AND s.role IS DISTINCT FROM 'witness' AND s.agent_url IS NOT NULL "
      "  ORDER BY s.node_id LIMIT 1) AS peer, "
      "(SELECT p.setting FROM pg_catalog.pg_settings p WHERE p.name = 'crawler_ha.sync_timeout') AS timeout");
  if (!r.ok || r.rows.size() != 1) {
    CRAWLER_LOG(debug) << "file sync: cannot read ha_status(): " << r.sqlstate << " " << r.error;
    return std::nullopt;
  }
  NodeFacts f;
  f.role = r.at(0, "role").value_or("");
  f.replication_mode = r.at(0, "mode").value_or("");
  f.fenced = r.at(0, "fenced").value_or("f") == "t";
  f.peer_agent_url = r.at(0, "peer").value_or("");
  while (!f.peer_agent_url.empty() && f.peer_agent_url.back() == '/') f.peer_agent_url.pop_back();
  if (auto t = r.at(0, "timeout")) {
    try {
      f.sync_timeout_ms = std::stol(*t);
    } catch (const std::exception&) {
    }
  }
  f.read_at = std::chrono::steady_clock::now();
  return f;
}

std::optional<NodeFacts> NodeView::get(std::chrono::milliseconds max_age) const {
  std::lock_guard<std::mutex> lock(m_);
  if (!facts_ || std::chrono::steady_clock::now() - facts_->read_at > max_age) return std::nullopt;
  return facts_;
}

std::string NodeView::peer_url() const {
  auto f = get();
  return f ? f->peer_agent_url : std::string();
}

void NodeView::set(NodeFacts f) {
  std::lock_guard<std::mutex> lock(m_);
  NodeFacts old = facts_.value_or(NodeFacts{});
  if (old.peer_agent_url != f.peer_agent_url)
    CRAWLER_LOG(info) << "file sync: peer agent "
                      << (f.peer_agent_url.empty() ? std::string("unknown") : f.peer_agent_url)
                      << (old.peer_agent_url.empty() ? "" : " (was " + old.peer_agent_url + ")");
  if (old.role != f.role || old.replication_mode != f.replication_mode)
    CRAWLER_LOG(info) << "file sync: this node is " << (f.role.empty() ? "?" : f.role)
                      << ", replication mode " << (f.replication_mode.empty() ? "?" : f.replication_mode)
                      << ", semi_sync timeout " << f.sync_timeout_ms << " ms";
  facts_ = std::move(f);
}

}  // namespace crawler::agent
