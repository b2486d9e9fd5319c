#include "crawler/agent/replicator.hpp"

#include "crawler/agent/peer_client.hpp"
#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler::agent {

ReplicateAction replicate_action(const std::optional<NodeFacts>& facts) {
  // Nothing known (the database is down): a sync promise cannot be judged,
  // and refusing is safe (the worker retries; its row cannot commit now
  // anyway).
  if (!facts) return ReplicateAction::answer_fail;
  if (facts->role != "primary") return ReplicateAction::answer_ok;
  if (facts->replication_mode == "sync")
    return facts->peer_agent_url.empty() ? ReplicateAction::answer_fail : ReplicateAction::copy;
  if (facts->replication_mode == "semi_sync")
    return facts->peer_agent_url.empty() ? ReplicateAction::answer_ok : ReplicateAction::copy_or_degrade;
  if (facts->replication_mode == "async") return ReplicateAction::answer_ok;
  return ReplicateAction::answer_fail;  // a mode this agent does not know
}

Replicator::Replicator(const AgentConfig& config, NodeView& view, TokenFile& token, Stopper& stop,
                       SyncStats& stats, int max_in_flight)
    : config_(config), view_(view), token_(token), stop_(stop), stats_(stats),
      max_in_flight_(std::max(1, max_in_flight)) {}

Replicator::~Replicator() { join(); }

void Replicator::start() {
  for (int i = 0; i < max_in_flight_; ++i) threads_.emplace_back([this] { loop(); });
}

void Replicator::degraded(const Job& job, const std::string& why) {
  stats_.replications_degraded++;
  bool first;
  {
    std::lock_guard<std::mutex> lock(m_);
    first = !outage_;
    outage_ = true;
  }
  if (first)
    CRAWLER_LOG(warn) << "file sync: semi_sync: cannot copy " << job.sha256 << " to the peer's agent (" << why
                      << "); uploads are answered without the peer's copy until it answers again "
                         "(its follower fetches them)";
  job.done(true, "");
}

void Replicator::replicate(const std::string& sha256, const std::filesystem::path& file, Done done) {
  auto facts = view_.get();
  switch (replicate_action(facts)) {
    case ReplicateAction::answer_ok:
      if (facts && facts->role == "primary" && facts->replication_mode == "semi_sync")
        degraded(Job{sha256, file, true, done}, "no peer agent is known");
      else
        done(true, "");
      return;
    case ReplicateAction::answer_fail:
      stats_.replication_failures++;
      done(false, !facts ? "the node's database does not answer: the replication mode is unknown"
                  : facts->replication_mode != "sync"
                      ? "unknown replication mode '" + facts->replication_mode + "'"
                      : "replication mode sync and no peer agent is known");
      return;
    case ReplicateAction::copy:
    case ReplicateAction::copy_or_degrade:
      break;
  }
  bool semi = facts->replication_mode == "semi_sync";
  Job job{sha256, file, semi, std::move(done)};
  {
    std::unique_lock<std::mutex> lock(m_);
    // While the peer is away, semi_sync does not wait a timeout per upload;
    // one copy at a time probes whether it is back.
    if (semi && outage_ && !queue_.empty()) {
      lock.unlock();
      stats_.replications_degraded++;
      job.done(true, "");
      return;
    }
    if (queue_.size() < static_cast<std::size_t>(16 * max_in_flight_) && !stop_.stopped()) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  if (semi) return degraded(job, "too many copies waiting");
  stats_.replication_failures++;
  job.done(false, stop_.stopped() ? "the agent is stopping" : "too many copies to the peer waiting");
}

void Replicator::loop() {
  try {
    PeerSettings ps;
    ps.ca_file = config_.ca_file;
    ps.timeout_ms = config_.peer_timeout_ms;
    PeerClient client(ps, token_, stop_);
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(m_);
        while (queue_.empty() && !stop_.stopped()) cv_.wait_for(lock, std::chrono::milliseconds(200));
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      if (stop_.stopped()) {
        if (job.semi) degraded(job, "the agent is stopping");
        else job.done(false, "the agent is stopping");
        continue;
      }
      auto facts = view_.get();
      std::string peer = facts ? facts->peer_agent_url : "";
      if (peer.empty()) {
        if (job.semi) degraded(job, "no peer agent is known");
        else {
          stats_.replication_failures++;
          job.done(false, "no peer agent is known");
        }
        continue;
      }
      std::string ext = job.file.extension().string();  // ".png"
      std::string url = peer + "/api/blobs/" + job.sha256 + ext;
      // semi_sync waits at most the database's sync timeout for the peer;
      // sync as long as the transfer makes progress (peer_timeout_ms).
      long timeout = job.semi ? std::max(1L, facts->sync_timeout_ms) : 0;
      stats_.replications_in_flight++;
      auto started = std::chrono::steady_clock::now();
      Reply r = client.put_file(url, job.file, timeout);
      stats_.replications_in_flight--;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
      if (r.status == 200 || r.status == 201) {
        stats_.blobs_replicated++;
        bool was_out;
        {
          std::lock_guard<std::mutex> lock(m_);
          was_out = outage_;
          outage_ = false;
        }
        if (was_out) CRAWLER_LOG(info) << "file sync: semi_sync: the peer's agent takes copies again";
        CRAWLER_LOG(debug) << "file sync: copied " << job.sha256 << " to " << peer << " in " << ms << " ms";
        job.done(true, "");
        continue;
      }
      std::string why = r.status ? "PUT " + url + ": HTTP " + std::to_string(r.status) +
                                       (r.body.empty() ? "" : ": " + one_line(r.body, 300))
                                 : "PUT " + url + ": " + r.error;
      if (job.semi) {
        degraded(job, why + " after " + std::to_string(ms) + " ms");
      } else {
        stats_.replication_failures++;
        CRAWLER_LOG(warn) << "file sync: sync copy of " << job.sha256 << " failed: " << why;
        job.done(false, why);
      }
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: a replication thread ended: " << e.what();
  }
}

void Replicator::join() {
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  // Left in the queue when every thread ended early: answer them anyway.
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(m_);
    left.swap(queue_);
  }
  for (auto& job : left) {
    if (job.semi) degraded(job, "the agent is stopping");
    else job.done(false, "the agent is stopping");
  }
}

}  // namespace crawler::agent
