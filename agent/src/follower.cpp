#include "crawler/agent/follower.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>

#include "crawler/agent/inventory.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/peer_client.hpp"
#include "crawler/agent/store_ops.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/store.hpp"
#include "crawler/store_sync.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kStoredBatch = 1000;  // blob_stored_many takes at most 10000
// A catch-up of thousands of small blobs is paid per batch (two group syncs,
// a blob_stored_many, a blob_wanted): batches of four outcomes per transfer
// thread, with eight per thread handed out so that the threads keep
// fetching while one is recorded.
constexpr int kRecordPerTransfer = 16;
constexpr int kPipelinePerTransfer = 32;
// Handed out and not yet recorded (waiting, in flight, fetched, being put in
// place and recorded), at most: what is handed out waits 60 s to be handed
// out again after a crash. Four times the fetch pipeline, so that the
// transfer threads are fed while two batches are synced and recorded;
// with the fetch pipeline as the bound for everything, each poll waited for
// a record and the threads stood idle between batches.
constexpr int kHandedOutPerTransfer = 4 * kPipelinePerTransfer;
// How long a fetched blob may wait for others to be recorded with it.
constexpr std::chrono::milliseconds kBatchWait(50);
// After a poll that found the queue drained (a crawl's trickle of new rows),
// the next one waits this long: the node then pays for ten polls and ten
// records a second rather than one of each per fetched blob, and a blob
// waits at most this much more (the lag goal is a second).
constexpr std::chrono::milliseconds kTricklePollSpacing(100);
// At most this many small blobs in one bundle request.
constexpr std::size_t kBundleMax = 32;

FetchOutcome failed(const Wanted& w, std::string why) {
  FetchOutcome o;
  o.sha256 = w.sha256;
  o.error = std::move(why);
  return o;
}

// The store already holds the blob when a file of that name hashes right
// (an upload that came first, a fetch whose record was lost); a bad copy is
// moved aside so that the fetch replaces it.
bool already_held(const Wanted& w, const FileStore& store, FetchOutcome* out) {
  auto existing = store.find(w.sha256);
  if (!existing) return false;
  std::string error;
  auto got = sha256_file(*existing, &error);
  if (got && *got == w.sha256) {
    std::error_code ec;
    out->sha256 = w.sha256;
    out->ok = true;
    out->size = fs::file_size(*existing, ec);
    CRAWLER_LOG(info) << "file sync: " << w.sha256 << " is already in the store, verified; recorded";
    return true;
  }
  std::string why;
  fs::path aside = move_aside(store.root(), *existing, &why);
  CRAWLER_LOG(warn) << "file sync: the store's copy " << existing->string() << " of " << w.sha256
                    << (got ? " hashes to " + *got : " cannot be read: " + error) << "; "
                    << (aside.empty() ? why : "moved to " + aside.string()) << "; fetching it";
  return false;
}
}  // namespace

namespace {
// What settles a wanted blob without a transfer: a path that is not where
// the store keeps it, a good copy already held, no peer to ask.
std::optional<FetchOutcome> settled_without_transfer(const Wanted& w, const std::string& peer_url,
                                                     const FileStore& store) {
  std::string sha, ext;
  // The row's path comes from the database (replicated from the peer): it
  // is used only when it is exactly where the store keeps this blob.
  if (!parse_blob_path(w.file_path, &sha, &ext) || sha != w.sha256)
    return failed(w, "file_path " + one_line(w.file_path, 200) + " is not ab/cd/<sha256>.<ext> of this blob");
  FetchOutcome out;
  if (already_held(w, store, &out)) return out;
  if (peer_url.empty()) return failed(w, "the peer's agent is not known (ha_status() names no agent_url)");
  return std::nullopt;
}

fs::path part_file(const FileStore& store, const Wanted& w) {
  fs::path part = fetch_part_path(store.root(), w.sha256);
  // Its directory, once (a failure shows when the part file is opened).
  if (::mkdir(part.parent_path().c_str(), 0700) != 0 && errno == ENOENT) {
    std::error_code ec;
    fs::create_directories(part.parent_path(), ec);
  }
  return part;
}

// The outcome of a download of `w` into `part` from `url`: verified by its
// hash, or failed (a useless part file removed, a resumable one kept).
FetchOutcome judge_download(const Wanted& w, const std::string& url, const Download& d, const fs::path& part,
                            const FileStore& store, SyncStats& stats, Clock::time_point started) {
  stats.bytes_fetched += d.received;
  if (d.restarted)
    CRAWLER_LOG(info) << "file sync: " << url << " answered a Range request with the whole body; fetched again from the start";
  std::error_code ec;
  if (!d.ok && d.status != 416) {
    if (d.discard) fs::remove(part, ec);
    return failed(w, "GET " + url + ": " + d.error +
                         (d.discard || d.size == 0 ? "" : " (" + std::to_string(d.size) + " bytes kept to resume)"));
  }
  // 416: nothing follows the bytes we hold; they may be the whole blob
  // (only then is the part file read again to hash it).
  std::string error;
  std::optional<std::string> got = d.sha256;
  if (d.sha256.empty()) got = sha256_file(part, &error);
  if (!got) return failed(w, "cannot hash " + part.string() + ": " + error);
  if (*got != w.sha256) {
    fs::remove(part, ec);
    return failed(w, "GET " + url + ": the " + std::to_string(d.size) + " bytes received hash to " + *got +
                         (d.status == 416 ? " (HTTP 416 to a resume)" : "") + "; discarded");
  }
  if (w.file_size && d.size != w.file_size)
    CRAWLER_LOG(warn) << "file sync: " << w.sha256 << " has " << d.size << " bytes, its row says " << w.file_size
                      << "; the hash is right, so it is kept";
  FetchOutcome out;
  out.sha256 = w.sha256;
  out.ok = true;
  out.size = d.size;
  out.part = part;
  out.file_path = w.file_path;
  stats.blobs_fetched++;
  // Its directory now, on this thread: a failure here is retried, and
  // reported, when the blob is put in place.
  std::string ignored;
  make_blob_directory(store.root(), w.file_path, &ignored);
  CRAWLER_LOG(debug) << "file sync: fetched " << w.sha256 << " (" << d.size << " bytes"
                     << (d.resumed ? ", resumed" : "") << ") from " << url << " in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
                     << " ms";
  return out;
}
}  // namespace

fs::path fetch_part_path(const fs::path& root, const std::string& sha256) {
  return root / ".tmp" / "fetch" / sha256.substr(0, 2) / ("fetch-" + sha256 + ".part");
}

FetchOutcome fetch_verified(const Wanted& w, const std::string& peer_url, PeerClient& client,
                            const FileStore& store, SyncStats& stats) {
  if (auto settled = settled_without_transfer(w, peer_url, store)) return std::move(*settled);
  fs::path part = part_file(store, w);
  std::string url = peer_url + "/api/blobs/" + w.sha256;
  auto started = Clock::now();
  Download d = client.download(url, part, w.file_size);
  return judge_download(w, url, d, part, store, stats, started);
}

bool bundles_well(const Wanted& w) { return w.file_size > 0 && w.file_size <= kBundleBlobBytes; }

std::vector<FetchOutcome> fetch_bundle(const std::vector<Wanted>& wanted, const std::string& peer_url,
                                       PeerClient& client, const FileStore& store, SyncStats& stats) {
  std::vector<FetchOutcome> outcomes(wanted.size());
  std::vector<std::size_t> asked;  // indexes into `wanted` of what goes in the bundle
  std::vector<BundleItem> items;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const Wanted& w = wanted[i];
    if (auto settled = settled_without_transfer(w, peer_url, store)) {
      outcomes[i] = std::move(*settled);
      continue;
    }
    BundleItem item;
    item.name = fs::path(w.file_path).filename().string();  // <sha256>.<ext>, checked above
    item.sha256 = w.sha256;
    item.part = part_file(store, w);
    item.max_bytes = w.file_size;
    items.push_back(std::move(item));
    asked.push_back(i);
  }
  if (items.empty()) return outcomes;
  const std::string url = peer_url + "/api/blobs/bundle";
  auto started = Clock::now();
  BundleDownload got = client.download_bundle(url, items);
  // A peer agent without the route (an older version), or one that finds
  // the bundle too large (rows that understate sizes): one by one.
  if (got.status == 404 || got.status == 405 || got.status == 413) {
    CRAWLER_LOG(debug) << "file sync: " << url << " answered " << got.status << "; fetching " << items.size()
                       << " blobs one at a time";
    for (std::size_t i : asked) outcomes[i] = fetch_verified(wanted[i], peer_url, client, store, stats);
    return outcomes;
  }
  for (std::size_t k = 0; k < asked.size(); ++k)
    outcomes[asked[k]] = judge_download(wanted[asked[k]], url + " (" + items[k].name + ")", got.items[k],
                                        items[k].part, store, stats, started);
  return outcomes;
}

namespace {
// Fails the ok outcomes of `batch` (those with a part file still to put in
// place when `parts_only`) with `why`.
void fail_ok(std::vector<FetchOutcome>& batch, const std::string& why, bool parts_only) {
  for (auto& o : batch) {
    if (!o.ok || (parts_only && o.part.empty())) continue;
    o.ok = false;
    o.error = why;
  }
}

bool has_parts(const std::vector<FetchOutcome>& batch) {
  return std::any_of(batch.begin(), batch.end(), [](const FetchOutcome& o) { return o.ok && !o.part.empty(); });
}
}  // namespace

void put_in_place(std::vector<FetchOutcome>& batch, const FileStore& store) {
  std::string error;
  for (auto& o : batch) {
    if (!o.ok || o.part.empty()) continue;
    if (!install_file(o.part, store.root(), o.file_path, &error)) {
      o.ok = false;
      o.error = error;
    }
    o.part.clear();
  }
}

namespace {
// The first half of install_fetched(): the bytes on disk before any of
// their names (a crash never leaves a name over bytes that were not
// written), then the renames.
void place_fetched(std::vector<FetchOutcome>& batch, const FileStore& store, StoreSync& durability) {
  std::string error;
  if (has_parts(batch) && !durability.wait(&error))
    fail_ok(batch, error + " (before putting the fetched blobs in place)", true);
  put_in_place(batch, store);
}

// The second half: the names on disk before the record. Blobs found already
// in the store are covered too: an upload may have put one there and still
// be waiting for its own sync. A batch of failures has nothing to sync.
void sync_placed_names(std::vector<FetchOutcome>& batch, StoreSync& durability) {
  if (std::none_of(batch.begin(), batch.end(), [](const FetchOutcome& o) { return o.ok; })) return;
  std::string error;
  if (!durability.wait(&error)) fail_ok(batch, error + " (after putting the fetched blobs in place)", false);
}
}  // namespace

void install_fetched(std::vector<FetchOutcome>& batch, const FileStore& store, StoreSync& durability) {
  place_fetched(batch, store, durability);
  sync_placed_names(batch, durability);
}

FetchOutcome fetch_blob(const Wanted& w, const std::string& peer_url, PeerClient& client,
                        const FileStore& store, StoreSync& durability, SyncStats& stats) {
  std::vector<FetchOutcome> one{fetch_verified(w, peer_url, client, store, stats)};
  install_fetched(one, store, durability);
  return std::move(one.front());
}

Follower::Follower(const AgentConfig& config, const FileStore& store, StoreSync& durability, NodeView& view,
                   TokenFile& token, Stopper& stop, SyncStats& stats, RecentPuts& recent)
    : config_(config), store_(store), durability_(durability), view_(view), token_(token), stop_(stop),
      stats_(stats), recent_(recent) {}

Follower::~Follower() { join(); }

void Follower::start() {
  int n = std::max(1, config_.sync_concurrency);
  if (config_.sync_bandwidth_bytes) pacer_ = std::make_unique<SharedPacer>(config_.sync_bandwidth_bytes);
  threads_.emplace_back([this] { poll_loop(); });
  threads_.emplace_back([this] { place_loop(); });
  threads_.emplace_back([this] { record_loop(); });
  for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { transfer_loop(i); });
}

void Follower::wake() { cv_.notify_all(); }

void Follower::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Follower::transfer_loop(int index) {
  try {
    PeerSettings ps;
    ps.ca_file = config_.ca_file;
    ps.timeout_ms = config_.peer_timeout_ms;
    ps.download_pacer = pacer_.get();  // the bandwidth is for all transfers together
    PeerClient client(ps, token_, stop_);
    for (;;) {
      std::vector<Wanted> work;
      {
        std::unique_lock<std::mutex> lock(m_);
        while (todo_.empty() && !stop_.stopped()) cv_.wait_for(lock, std::chrono::milliseconds(200));
        if (stop_.stopped()) return;
        work.push_back(std::move(todo_.front()));
        todo_.pop_front();
        // Small blobs go together: the other small ones waiting join this
        // one's bundle, a share of them each so that every thread has some.
        if (bundles_well(work.front())) {
          const std::size_t threads = static_cast<std::size_t>(std::max(1, config_.sync_concurrency));
          const std::size_t share = std::clamp<std::size_t>((todo_.size() + threads - 1) / threads + 1, 1, kBundleMax);
          for (auto it = todo_.begin(); it != todo_.end() && work.size() < share;) {
            if (!bundles_well(*it)) {
              ++it;
              continue;
            }
            work.push_back(std::move(*it));
            it = todo_.erase(it);
          }
        }
        busy_ += static_cast<int>(work.size());
      }
      stats_.fetches_in_flight += static_cast<int>(work.size());
      std::vector<FetchOutcome> outcomes;
      try {
        if (work.size() == 1) outcomes.push_back(fetch_verified(work.front(), view_.peer_url(), client, store_, stats_));
        else outcomes = fetch_bundle(work, view_.peer_url(), client, store_, stats_);
      } catch (const std::exception& e) {
        outcomes.clear();
        for (const auto& w : work) outcomes.push_back(failed(w, e.what()));
      }
      stats_.fetches_in_flight -= static_cast<int>(work.size());
      for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i].ok) continue;
        stats_.fetch_failures++;
        // Interrupted by stop(): not the blob's fault; it is handed out
        // again after blob_wanted's 60 s.
        if (stop_.stopped()) {
          std::lock_guard<std::mutex> lock(m_);
          busy_ -= static_cast<int>(work.size());
          return;
        }
        CRAWLER_LOG(warn) << "file sync: fetch of " << work[i].sha256 << " (attempt " << (work[i].attempts + 1)
                          << ") failed: " << outcomes[i].error;
      }
      {
        std::lock_guard<std::mutex> lock(m_);
        busy_ -= static_cast<int>(work.size());
        for (auto& o : outcomes) done_.push_back(std::move(o));
      }
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: transfer thread " << index << " ended: " << e.what();
  }
}

void Follower::place(std::vector<FetchOutcome>& arrived) {
  const auto started = Clock::now();
  place_fetched(arrived, store_, durability_);
  CRAWLER_LOG(debug) << "file sync: " << arrived.size() << " fetches put in place in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
                     << " ms";
}

void Follower::place_loop() {
  const int n = std::max(1, config_.sync_concurrency);
  // A batch: kRecordPerTransfer outcomes per transfer thread, or whatever
  // there is when nothing else is in flight, or kBatchWait after the first
  // (a call per blob costs the node more than the fetch).
  auto nothing_else = [this] { return todo_.empty() && busy_ == 0; };
  auto batch_ready = [&] {
    return stop_.stopped() || static_cast<int>(done_.size()) >= kRecordPerTransfer * n ||
           (!done_.empty() && nothing_else());
  };
  try {
    for (;;) {
      std::vector<FetchOutcome> arrived;
      {
        std::unique_lock<std::mutex> lock(m_);
        if (!batch_ready()) {
          cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return batch_ready() || !done_.empty(); });
          if (!batch_ready() && !done_.empty()) cv_.wait_for(lock, kBatchWait, batch_ready);
        }
        // After the stop, what was fetched before it is still put in place.
        if (done_.empty()) {
          if (stop_.stopped()) break;
          continue;
        }
        arrived.swap(done_);
        recording_ += static_cast<int>(arrived.size());
      }
      place(arrived);
      {
        std::lock_guard<std::mutex> lock(m_);
        for (auto& o : arrived) placed_.push_back(std::move(o));
      }
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: the follower's placing thread ended: " << e.what();
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    placing_ended_ = true;
  }
  cv_.notify_all();
}

bool Follower::record(NodeDb& db) {
  std::vector<FetchOutcome> outcomes;
  {
    std::lock_guard<std::mutex> lock(m_);
    outcomes.swap(placed_);
  }
  if (outcomes.empty()) return true;
  const auto started = Clock::now();
  sync_placed_names(outcomes, durability_);
  const auto synced = Clock::now();
  std::vector<FetchOutcome> keep;  // not recorded: the connection broke
  std::vector<const FetchOutcome*> ok;
  for (const auto& o : outcomes)
    if (o.ok) ok.push_back(&o);
  for (std::size_t i = 0; i < ok.size(); i += kStoredBatch) {
    PgArrayLiteral shas, sizes;
    std::size_t end = std::min(ok.size(), i + kStoredBatch);
    for (std::size_t j = i; j < end; ++j) {
      shas.add_text(ok[j]->sha256);
      sizes.add_bigint(static_cast<std::int64_t>(ok[j]->size));
    }
    DbResult r = db.call("SELECT " + db.fn("blob_stored_many") + "($1::text[], $2::bigint[])",
                         {shas.str(), sizes.str()});
    if (!r.ok) {
      CRAWLER_LOG(error) << "file sync: blob_stored_many of " << (end - i) << " fetched blobs failed: "
                         << r.sqlstate << " " << r.error;
      for (std::size_t j = i; j < end; ++j) keep.push_back(*ok[j]);
    }
  }
  for (const auto& o : outcomes) {
    if (o.ok) continue;
    DbResult r = db.call("SELECT " + db.fn("blob_fetch_failed") + "($1, $2)",
                         {o.sha256, valid_text(o.error, 1000)});
    if (!r.ok) {
      CRAWLER_LOG(error) << "file sync: blob_fetch_failed(" << o.sha256 << ") failed: " << r.sqlstate << " "
                         << r.error;
      if (r.sqlstate == "08006") keep.push_back(o);
    }
  }
  auto ms = [](Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  CRAWLER_LOG(debug) << "file sync: " << outcomes.size() << " outcomes recorded: sync " << ms(synced - started)
                     << " ms, record " << ms(Clock::now() - synced) << " ms";
  {
    std::lock_guard<std::mutex> lock(m_);
    recording_ -= static_cast<int>(outcomes.size() - keep.size());
    placed_.insert(placed_.begin(), keep.begin(), keep.end());
  }
  cv_.notify_all();  // room for the poller
  return keep.empty();
}

void Follower::record_loop() {
  NodeDb db(config_.db, "recorder");
  // Not placing_ended_: once the placing thread is gone nothing more is
  // placed, and waking on it would turn this loop into a spin.
  auto ready = [this] { return !placed_.empty() || stop_.stopped(); };
  try {
    // Connected before the first batch is placed, not when it is (false
    // only once stopped, which the loop sees).
    db.ensure(stop_);
    while (!stop_.stopped()) {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait_for(lock, std::chrono::milliseconds(200), ready);
        if (stop_.stopped()) break;
        if (placed_.empty()) continue;
      }
      if (!db.ensure(stop_)) break;
      if (!record(db)) stop_.sleep_for(std::chrono::seconds(1));
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: the follower's recording thread ended: " << e.what();
  }
  // What was fetched before the stop is recorded if the database answers,
  // once the placing thread has put it in place.
  try {
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait_for(lock, std::chrono::seconds(10), [this] { return placing_ended_; });
    }
    if (db.ensure(stop_)) record(db);
  } catch (const std::exception&) {
  }
}

int Follower::room_locked(int threads) const {
  // Enough waiting to keep every transfer thread busy while the next poll
  // runs, within the bound on what is handed out and not yet recorded.
  const int unfetched = static_cast<int>(todo_.size()) + busy_;
  const int unrecorded = unfetched + static_cast<int>(done_.size()) + recording_;
  return std::min(kPipelinePerTransfer * threads - unfetched, kHandedOutPerTransfer * threads - unrecorded);
}

void Follower::poll_loop() {
  NodeDb db(config_.db, "follower");
  const int n = std::max(1, config_.sync_concurrency);
  auto poll = std::chrono::milliseconds(std::max(10, config_.sync_poll_ms));
  bool waiting_for_peer_logged = false;
  auto last_summary = Clock::now();
  std::uint64_t last_fetched = 0, last_failures = 0, last_bytes = 0;
  try {
    while (!stop_.stopped()) {
      // Connected while the store is being attached: the first poll of a
      // catch-up then follows the attach at once.
      if (!db.ensure(stop_)) break;
      if (!stats_.attached) {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait_for(lock, poll, [this] { return stats_.attached || stop_.stopped(); });
        continue;
      }
      if (Clock::now() - last_summary >= std::chrono::seconds(10)) {
        std::uint64_t f = stats_.blobs_fetched, e = stats_.fetch_failures, b = stats_.bytes_fetched;
        if (f != last_fetched || e != last_failures)
          CRAWLER_LOG(info) << "file sync: fetched " << (f - last_fetched) << " blobs (" << (b - last_bytes)
                            << " bytes) and " << (e - last_failures) << " failures in the last "
                            << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - last_summary).count()
                            << " s; " << stats_.fetches_in_flight << " in flight";
        last_summary = Clock::now();
        last_fetched = f, last_failures = e, last_bytes = b;
      }
      std::string peer = view_.peer_url();
      if (peer.empty()) {
        // blob_wanted() hands rows out for 60 s: ask only when they can be
        // fetched.
        if (!waiting_for_peer_logged)
          CRAWLER_LOG(info) << "file sync: no peer agent known; fetching waits for ha_status() to name one";
        waiting_for_peer_logged = true;
        stop_.sleep_for(poll);
        continue;
      }
      waiting_for_peer_logged = false;
      int room;
      {
        std::lock_guard<std::mutex> lock(m_);
        room = room_locked(n);
      }
      std::size_t got = 0;
      const auto polled_at = Clock::now();
      if (room > 0) {
        DbResult r = db.call("SELECT sha256, file_path, file_size, attempts FROM " + db.fn("blob_wanted") + "($1)",
                             {std::to_string(room)});
        if (!r.ok) {
          CRAWLER_LOG(error) << "file sync: blob_wanted failed: " << r.sqlstate << " " << r.error;
          stop_.sleep_for(std::chrono::seconds(1));
          continue;
        }
        std::lock_guard<std::mutex> lock(m_);
        for (std::size_t i = 0; i < r.rows.size(); ++i) {
          Wanted w;
          w.sha256 = r.at(i, "sha256").value_or("");
          // Uploaded here and waiting to be recorded (uploads are recorded
          // in batches): the row came before the record, and the record
          // ends the entry. Verifying the file again and recording it a
          // second time was most of the primary's file sync work during a
          // crawl. Should that record never come, the entry is handed out
          // again in 60 s, and verified once the upload is no longer recent.
          if (recent_.is_recent(w.sha256)) {
            CRAWLER_LOG(debug) << "file sync: " << w.sha256 << " was uploaded here; its upload's record ends it";
            continue;
          }
          w.file_path = r.at(i, "file_path").value_or("");
          w.file_size = std::stoull(r.at(i, "file_size").value_or("0"));
          w.attempts = std::stoi(r.at(i, "attempts").value_or("0"));
          todo_.push_back(std::move(w));
        }
        got = r.rows.size();
      }
      if (got) {
        CRAWLER_LOG(debug) << "file sync: " << got << " wanted blobs to fetch from " << peer;
        cv_.notify_all();
      }
      // While the queue gives all that is asked (a catch-up), asked again
      // once there is room for a quarter of the pipeline: asked at once
      // instead, with room for a blob or two as each fetch ends, a
      // catch-up of 2,200 blobs made 59 polls, each a transaction of the
      // node's costing about a millisecond whatever it hands out. After
      // kTricklePollSpacing when it gave less than asked (a crawl's
      // trickle: ten polls a second rather than one per fetched blob);
      // after the poll interval when it gave nothing.
      std::unique_lock<std::mutex> lock(m_);
      if (room <= 0 || static_cast<int>(got) == room) {
        cv_.wait_for(lock, poll, [&] { return stop_.stopped() || room_locked(n) >= kPipelinePerTransfer * n / 4; });
      } else {
        cv_.wait_until(lock, polled_at + (got ? kTricklePollSpacing : poll), [this] { return stop_.stopped(); });
      }
    }
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "file sync: the follower's polling thread ended: " << e.what();
  }
}

}  // namespace crawler::agent
