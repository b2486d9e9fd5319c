#include "crawler/agent/status_json.hpp"

#include <nlohmann/json.hpp>

namespace crawler::agent {

std::optional<std::string> status_json(const std::string& db_row, const SyncStats& s,
                                       const std::optional<NodeFacts>& facts, const std::string& store_id,
                                       std::size_t puts_queued) {
  auto j = nlohmann::json::parse(db_row, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  nlohmann::json a;
  a["store_id"] = store_id;
  a["store_attached"] = s.attached.load();
  a["role"] = facts ? nlohmann::json(facts->role) : nlohmann::json();
  a["replication_mode"] = facts ? nlohmann::json(facts->replication_mode) : nlohmann::json();
  a["peer_agent_url"] = facts && !facts->peer_agent_url.empty() ? nlohmann::json(facts->peer_agent_url)
                                                                 : nlohmann::json();
  a["fetches_in_flight"] = s.fetches_in_flight.load();
  a["replications_in_flight"] = s.replications_in_flight.load();
  a["blobs_fetched"] = s.blobs_fetched.load();
  a["bytes_fetched"] = s.bytes_fetched.load();
  a["fetch_failures"] = s.fetch_failures.load();
  a["blobs_replicated"] = s.blobs_replicated.load();
  a["replication_failures"] = s.replication_failures.load();
  a["replications_degraded"] = s.replications_degraded.load();
  a["blobs_scrubbed"] = s.blobs_scrubbed.load();
  a["bytes_scrubbed"] = s.bytes_scrubbed.load();
  a["corrupt_found"] = s.corrupt_found.load();
  a["orphans_removed"] = s.orphans_removed.load();
  a["puts_recorded"] = s.puts_recorded.load();
  a["puts_dropped"] = s.puts_dropped.load();
  a["puts_queued"] = puts_queued;
  j["agent"] = std::move(a);
  return j.dump();
}

}  // namespace crawler::agent
