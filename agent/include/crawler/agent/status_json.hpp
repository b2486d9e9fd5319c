// GET /api/file-sync/status's body: the database's ha_file_sync_status()
// row with the agent's own figures beside it, under "agent" (so that no
// figure of one hides a figure of the other of the same name).
#pragma once
#include <optional>
#include <string>

#include "crawler/agent/node_view.hpp"
#include "crawler/agent/sync_stats.hpp"

namespace crawler::agent {

// `db_row`: row_to_json of ha_file_sync_status(); nullopt when it is not
// a JSON object.
std::optional<std::string> status_json(const std::string& db_row, const SyncStats& stats,
                                       const std::optional<NodeFacts>& facts, const std::string& store_id,
                                       std::size_t puts_queued);

}  // namespace crawler::agent
