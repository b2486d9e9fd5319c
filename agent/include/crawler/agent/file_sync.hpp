// File sync: this node's store holds the blob of every images row of this
// node's database. It follows the wanted queue the extension keeps (a
// trigger queues every row's blob the store lacks, replicated rows
// included, so nothing is skipped whatever the id order), fetches each from
// the peer's agent (resumable, verified by sha256, bounded in concurrency
// and bandwidth), re-hashes stored blobs at a bounded rate (scrub), and
// removes blobs no row on either node references after a grace period.
// Every decision is the extension's (blob_* functions); this only moves
// bytes and reports.
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>

#include "crawler/agent/blob_events.hpp"
#include "crawler/agent/config.hpp"

namespace crawler {
class FileStore;
class StoreSync;
}

namespace crawler::agent {

class FileSync final : public BlobEvents {
 public:
  // Nothing runs and nothing connects until start(). `durability` is the
  // store's group syncs, shared with the server's uploads. `io` is the
  // server's loop: every callback of BlobEvents runs there.
  FileSync(const AgentConfig& config, FileStore& store, StoreSync& durability, boost::asio::io_context& io);
  ~FileSync() override;

  // Connects to the node's database (retrying in the background when it is
  // down), attaches the store (an inventory of the disk when the tables
  // describe another store or none), then follows, scrubs and sweeps on its
  // own threads. Throws std::runtime_error for a setting that cannot work.
  void start();
  // Stops the threads; transfers in flight are abandoned (their temporary
  // files removed) after at most `wait`.
  void stop(std::chrono::milliseconds wait);

  void blob_put(const std::string& sha256, std::uint64_t size, bool created) override;
  void replicate(const std::string& sha256, const std::filesystem::path& file,
                 std::function<void(bool ok, std::string error)> done) override;
  void referenced(std::vector<std::string> sha256s,
                  std::function<void(std::optional<std::vector<std::string>>, std::string error)> done) override;
  void status(std::function<void(std::optional<std::string> json, std::string error)> done) override;
  std::optional<std::string> upload_refusal() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crawler::agent
