// What the blob routes tell the rest of the agent, and ask of it: the seam
// between the HTTP server (which stores bytes) and file sync (which records
// them in the node's database and copies them to the peer). The server
// depends only on this interface.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace crawler::agent {

// The header the peer agent's copies carry (PUT by the replicator), so that
// a standby takes them while it refuses workers' uploads. It grants no
// right: the bearer token does that; it only says which kind of PUT this is.
inline constexpr const char* kPeerCopyHeader = "X-Crawler-HA-Peer-Copy";

class BlobEvents {
 public:
  virtual ~BlobEvents() = default;

  // A PUT stored `sha256` durably (`created`) or found it already stored
  // (not `created`: a retry, or another worker's same bytes). Records it in
  // the node's database (blob_stored, batched) so that the orphan sweep sees
  // the new use. Called on the server's event loop; never blocks.
  virtual void blob_put(const std::string& sha256, std::uint64_t size, bool created) = 0;

  // Called before a PUT is answered. In replication mode `sync` the blob is
  // copied to the peer's agent first and `done(true, "")` runs once the peer
  // holds it durably, `done(false, why)` when it could not (the PUT then
  // fails with 503: the row must not commit). In `semi_sync` the same, but
  // after the database's sync timeout without the peer it answers
  // done(true, "") and logs the degradation. In `async`, done(true, "") at
  // once: the standby's agent fetches the blob itself. `done` runs on the
  // server's event loop.
  virtual void replicate(const std::string& sha256, const std::filesystem::path& file,
                         std::function<void(bool ok, std::string error)> done) = 0;

  // Why a worker's PUT must go elsewhere: this node is known not to be the
  // primary (a standby, a fenced or demoted node); nullopt when it may take
  // uploads (the primary, or nothing known yet: the PUT then fails later if
  // the database cannot judge it). A worker that stored an image on a node
  // that is no longer the primary would commit its row on the new primary
  // while the file is only on the other node. Copies from the peer agent
  // are not asked. Called on the loop; never blocks.
  virtual std::optional<std::string> upload_refusal() const = 0;

  // For the peer's orphan sweep (POST /api/blobs/referenced): which of these
  // blobs a row of this node's database references (blob_referenced()).
  // `done(nullopt, why)` when the database did not answer. On the loop.
  virtual void referenced(std::vector<std::string> sha256s,
                          std::function<void(std::optional<std::vector<std::string>>, std::string error)> done) = 0;

  // For GET /api/file-sync/status: ha_file_sync_status() as a JSON object
  // (column name to value), or nullopt and why. On the loop.
  virtual void status(std::function<void(std::optional<std::string> json, std::string error)> done) = 0;
};

}  // namespace crawler::agent
