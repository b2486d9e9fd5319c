// The follower: fetches the blobs this node's rows reference and its store
// lacks (blob_wanted), from the peer's agent, into the store. One thread
// asks the database for work; another records outcomes in batches
// (blob_stored_many, blob_fetch_failed), each with its own session, so that
// a poll never waits for a batch's syncs; sync_concurrency threads transfer, each with its own
// connection to the peer (small blobs several to a request, in bundles),
// and hash as they receive. A placing thread puts each batch of verified
// fetches in place (their bytes on disk, then their names) and the
// recording thread records it once the names are on disk too (group syncs
// shared with the uploads, StoreSync); the two overlap, batch after batch.
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
#include "crawler/agent/orphan_sweep.hpp"
#include "crawler/agent/pacer.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/sync_stats.hpp"
#include "crawler/agent/token_file.hpp"

namespace crawler {
class FileStore;
class StoreSync;
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
  // A verified fetch not yet in place: its part file, and where it goes
  // (install_fetched). Empty once installed, or when it was already held.
  std::filesystem::path part;
  std::string file_path;
};

// Fetches one blob into a part file and checks its sha256 (or finds it
// already in the store, verified): a transfer thread's work. An ok outcome
// with a part still needs install_fetched before it is recorded.
FetchOutcome fetch_verified(const Wanted& w, const std::string& peer_url, PeerClient& client,
                            const FileStore& store, SyncStats& stats);

// Blobs up to this size (by their row) are fetched in bundles: one request
// for many, where a request per blob would cost more than its bytes.
constexpr std::uint64_t kBundleBlobBytes = 256 * 1024;

// Whether `w` is fetched in a bundle rather than alone (resumably).
bool bundles_well(const Wanted& w);

// fetch_verified for several small blobs with one request to the peer's
// bundle route (one by one when the peer has no such route): one outcome
// per wanted blob, in order. A failed fetch leaves no part file.
std::vector<FetchOutcome> fetch_bundle(const std::vector<Wanted>& wanted, const std::string& peer_url,
                                       PeerClient& client, const FileStore& store, SyncStats& stats);

// Renames the part files of a batch's verified fetches into the store (no
// sync: the caller orders bytes, names and record). An outcome that fails
// here is no longer ok and says why.
void put_in_place(std::vector<FetchOutcome>& batch, const FileStore& store);

// Puts a batch of verified fetches in place durably: one group sync for
// their bytes, the renames, one group sync for their names (which also
// covers blobs found already held). An outcome that fails here is no
// longer ok and says why.
void install_fetched(std::vector<FetchOutcome>& batch, const FileStore& store, StoreSync& durability);

// fetch_verified and install_fetched for one blob: what the tests drive
// against a real HTTP server without a database.
FetchOutcome fetch_blob(const Wanted& w, const std::string& peer_url, PeerClient& client,
                        const FileStore& store, StoreSync& durability, SyncStats& stats);

// Where a fetch of `sha256` keeps its bytes until they are verified and
// put in place (kept across restarts, to resume):
// .tmp/fetch/<first two hex digits>/fetch-<sha256>.part. Spread over 256
// directories: sixteen transfer threads creating and renaming files in one
// directory queued on its lock (rwsem_spin_on_owner was 6.8 % of a
// catch-up's samples).
std::filesystem::path fetch_part_path(const std::filesystem::path& root, const std::string& sha256);

class Follower {
 public:
  // Every reference outlives this. `recent` holds this agent's uploads not
  // yet recorded: their wanted entries are left to that record.
  Follower(const AgentConfig& config, const FileStore& store, StoreSync& durability, NodeView& view,
           TokenFile& token, Stopper& stop, SyncStats& stats, RecentPuts& recent);
  ~Follower();
  // Starts the threads; they end after stop.stop() and wake().
  void start();
  // Wakes every thread of the follower (after stop.stop()).
  void wake();
  // Joins the threads.
  void join();

 private:
  void poll_loop();
  void place_loop();
  void record_loop();
  void transfer_loop(int index);
  // Fetched blobs to their names: a group sync (their bytes), then the
  // renames. Failures become failed outcomes.
  void place(std::vector<FetchOutcome>& arrived);
  // Records what place() put in place, after a group sync of the names;
  // false when the database connection broke (kept to record again).
  bool record(class NodeDb& db);
  // How many more blobs the poller may ask blob_wanted for, with m_ held.
  int room_locked(int threads) const;
  const AgentConfig& config_;
  const FileStore& store_;
  StoreSync& durability_;
  NodeView& view_;
  TokenFile& token_;
  Stopper& stop_;
  SyncStats& stats_;
  RecentPuts& recent_;
  std::mutex m_;
  std::condition_variable cv_;  // work for the transfer threads, outcomes for the recorder, room for the poller
  std::deque<Wanted> todo_;
  std::vector<FetchOutcome> done_;
  int busy_ = 0;
  int recording_ = 0;  // outcomes taken from done_ and not yet recorded (placed_ among them)
  // Put in place, their names not yet synced: the recording thread records
  // them after the next sync, while the placing thread puts the next batch
  // in place (two stages: a batch's renames no longer wait for the last
  // batch's record, nor its record for the next batch's renames).
  std::vector<FetchOutcome> placed_;
  bool placing_ended_ = false;
  std::vector<std::thread> threads_;
  std::unique_ptr<SharedPacer> pacer_;  // sync_bandwidth_bytes, when set
};

}  // namespace crawler::agent
