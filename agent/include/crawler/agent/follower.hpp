// The follower: fetches the blobs this node's rows reference and its store
// lacks (blob_wanted), from the peer's agent, into the store. One thread
// asks the database and records outcomes in batches (blob_stored_many,
// blob_fetch_failed); sync_concurrency threads transfer, each with its own
// connection to the peer. A blob is in the store only once its bytes hash
// to its name, fsynced, renamed into place and the directory fsynced.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crawler/agent/config.hpp"
#include "crawler/agent/node_view.hpp"
#include "crawler/agent/pacer.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/sync_stats.hpp"
#include "crawler/agent/token_file.hpp"

namespace crawler {
class FileStore;
}

namespace crawler::agent {

class PeerClient;

struct Wanted {
  std::string sha256, file_path;
  std::uint64_t file_size = 0;
  int attempts = 0;
};

// What became of one wanted blob.
struct FetchOutcome {
  std::string sha256;
  bool ok = false;
  std::uint64_t size = 0;
  std::string error;
};

// Fetches one blob into the store (or finds it already there, verified):
// the whole procedure of a transfer thread, outside the class so that it is
// tested against a real HTTP server without a database.
FetchOutcome fetch_blob(const Wanted& w, const std::string& peer_url, PeerClient& client,
                        const FileStore& store, SyncStats& stats);

class Follower {
 public:
  // Every reference outlives this.
  Follower(const AgentConfig& config, const FileStore& store, NodeView& view, TokenFile& token,
           Stopper& stop, SyncStats& stats);
  ~Follower();
  // Starts the threads; they end after stop.stop() and wake().
  void start();
  // Wakes every thread of the follower (after stop.stop()).
  void wake();
  // Joins the threads.
  void join();

 private:
  void poll_loop();
  void transfer_loop(int index);
  bool flush(class NodeDb& db);
  const AgentConfig& config_;
  const FileStore& store_;
  NodeView& view_;
  TokenFile& token_;
  Stopper& stop_;
  SyncStats& stats_;
  std::mutex m_;
  std::condition_variable cv_;  // work for the transfer threads, outcomes for the poller
  std::deque<Wanted> todo_;
  std::vector<FetchOutcome> done_;
  int busy_ = 0;
  std::vector<std::thread> threads_;
  std::unique_ptr<SharedPacer> pacer_;  // sync_bandwidth_bytes, when set
};

}  // namespace crawler::agent
