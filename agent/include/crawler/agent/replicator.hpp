// Copies a blob to the peer's agent before its upload is answered, in the
// replication modes that promise the peer has it (sync, semi_sync): the
// row that names the blob commits only after the answer, so on failover
// the new primary's node holds the blob of every row it got synchronously.
// async answers at once (the peer's follower fetches). Only a primary
// copies: a standby's agent storing the primary's copy must not send it
// back.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crawler/agent/config.hpp"
#include "crawler/agent/node_view.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/sync_stats.hpp"
#include "crawler/agent/token_file.hpp"

namespace crawler::agent {

// What to do with one upload, from the node's facts (pure: unit-tested).
enum class ReplicateAction {
  answer_ok,    // async, or this node is not the primary: nothing to copy
  answer_fail,  // sync and it cannot be copied now (facts or peer unknown)
  copy,         // PUT it to the peer and answer with the outcome
  copy_or_degrade  // semi_sync: PUT it; on failure or timeout answer ok
};
ReplicateAction replicate_action(const std::optional<NodeFacts>& facts);

class Replicator {
 public:
  using Done = std::function<void(bool ok, std::string error)>;
  // `max_in_flight` copies at once; more wait in a queue of at most
  // 16 x max_in_flight, beyond which an upload is refused (sync) or
  // degraded (semi_sync) instead of waiting.
  Replicator(const AgentConfig& config, NodeView& view, TokenFile& token, Stopper& stop,
             SyncStats& stats, int max_in_flight);
  ~Replicator();
  void start();
  // Decides and, when a copy is needed, queues it; `done` runs on a
  // replication thread or, when answered at once, before this returns: the
  // caller posts it to its loop.
  void replicate(const std::string& sha256, const std::filesystem::path& file, Done done);
  // After stop.stop(): answers what is queued (sync: failed; semi_sync:
  // degraded) and joins the threads.
  void join();

 private:
  struct Job {
    std::string sha256;
    std::filesystem::path file;
    bool semi = false;
    Done done;
  };
  void loop();
  void degraded(const Job& job, const std::string& why);
  const AgentConfig& config_;
  NodeView& view_;
  TokenFile& token_;
  Stopper& stop_;
  SyncStats& stats_;
  int max_in_flight_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool outage_ = false;  // a semi_sync copy failed and none has worked since
  std::vector<std::thread> threads_;
};

}  // namespace crawler::agent
