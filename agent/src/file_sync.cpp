// FileSync: the threads of file sync and the BlobEvents the server calls.
// One database thread records uploads (blob_stored_many, every 200 ms at
// most), answers the server's questions (blob_referenced, the status) and
// refreshes what the node knows of the cluster every second; the follower,
// the replicator, the scrub and the orphan sweep have their own threads and
// sessions. Every answer to the server is posted to its loop.
#include "crawler/agent/file_sync.hpp"

#include <curl/curl.h>

#include <boost/asio/post.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "crawler/agent/follower.hpp"
#include "crawler/agent/inventory.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/agent/node_view.hpp"
#include "crawler/agent/orphan_sweep.hpp"
#include "crawler/agent/replicator.hpp"
#include "crawler/agent/scrub.hpp"
#include "crawler/agent/status_json.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/store_id.hpp"
#include "crawler/agent/sync_stats.hpp"
#include "crawler/agent/token_file.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/store.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kMaxQueuedPuts = 100000;  // ~10 MB; beyond, uploads go unrecorded (logged)
constexpr std::size_t kStoredBatch = 5000;
constexpr std::size_t kReferencedBatch = 10000;  // blob_referenced's limit
// Recording uploads is bookkeeping (the rows and the files are already
// durable): a call every 200 ms costs the node a quarter of one every 50.
constexpr auto kFlushEvery = std::chrono::milliseconds(200);
constexpr auto kFactsEvery = std::chrono::seconds(1);
constexpr auto kStalePartAge = std::chrono::hours(24);

struct Put {
  std::string sha256;
  std::uint64_t size;
};

// Partial fetches nobody resumed for a day in `dir`: the blob is no longer
// wanted (stored by an upload, or its row gone). Returns how many went.
int remove_stale_parts_in(const fs::path& dir, fs::file_time_type now) {
  std::error_code ec;
  int removed = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("fetch-", 0) != 0 || n.size() < 5 || n.compare(n.size() - 5, 5, ".part") != 0) continue;
    std::error_code e2;
    auto t = e.last_write_time(e2);
    if (!e2 && now - t > kStalePartAge && fs::remove(e.path(), e2)) ++removed;
  }
  return removed;
}

// Those of the whole store: .tmp/fetch/<xx>/ (fetch_part_path), and .tmp/
// itself, where earlier versions kept them.
void remove_stale_parts(const fs::path& root) {
  auto now = fs::file_time_type::clock::now();
  int removed = remove_stale_parts_in(root / ".tmp", now);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / ".tmp" / "fetch", ec))
    if (e.is_directory(ec)) removed += remove_stale_parts_in(e.path(), now);
  if (removed) CRAWLER_LOG(info) << "file sync: removed " << removed << " partial fetches older than a day";
}
}  // namespace

struct FileSync::Impl {
  Impl(const AgentConfig& c, FileStore& s, StoreSync& d, boost::asio::io_context& i)
      : config(c), store(s), io(i), token(c.token_file),
        follower(config, store, d, view, token, stop, stats, recent),
        replicator(config, view, token, stop, stats, std::max(4, c.sync_concurrency)) {}

  AgentConfig config;
  FileStore& store;
  boost::asio::io_context& io;
  Stopper stop;
  SyncStats stats;
  NodeView view;
  TokenFile token;
  RecentPuts recent;
  Follower follower;
  Replicator replicator;
  std::string store_id;
  bool started = false, stopped = false;
  std::vector<std::thread> threads;

  // The database thread's work.
  std::mutex m;
  std::condition_variable cv;
  std::vector<Put> puts;
  std::deque<std::function<void(NodeDb&)>> tasks;
  bool drop_logged = false;

  void db_loop();
  bool flush_puts(NodeDb& db);
  void run_tasks(NodeDb& db);
  // Runs `task` on the database thread; when file sync is not running, at
  // once with a session that is not connected (the calls fail: 08006).
  void submit(std::function<void(NodeDb&)> task);
};

void FileSync::Impl::submit(std::function<void(NodeDb&)> task) {
  {
    std::lock_guard<std::mutex> lock(m);
    if (started && !stopped) {
      tasks.push_back(std::move(task));
      cv.notify_one();
      return;
    }
  }
  NodeDb none(config.db, "stopped");
  task(none);
}

void FileSync::Impl::run_tasks(NodeDb& db) {
  for (;;) {
    std::function<void(NodeDb&)> t;
    {
      std::lock_guard<std::mutex> lock(m);
      if (tasks.empty()) return;
      t = std::move(tasks.front());
      tasks.pop_front();
    }
    try {
      t(db);
    } catch (const std::exception& e) {
      CRAWLER_LOG(error) << "file sync: a database task failed: " << e.what();
    }
  }
}

bool FileSync::Impl::flush_puts(NodeDb& db) {
  std::vector<Put> batch;
  {
    std::lock_guard<std::mutex> lock(m);
    if (puts.empty()) return true;
    std::size_t n = std::min(puts.size(), kStoredBatch);
    batch.assign(std::make_move_iterator(puts.begin()), std::make_move_iterator(puts.begin() + n));
    puts.erase(puts.begin(), puts.begin() + n);
  }
  // Every upload in the batch was noted before it was queued, so before now.
  auto noted_by = Clock::now();
  PgArrayLiteral shas, sizes;
  std::vector<std::string> recorded;
  recorded.reserve(batch.size());
  for (const auto& p : batch) {
    shas.add_text(p.sha256);
    sizes.add_bigint(static_cast<std::int64_t>(p.size));
    recorded.push_back(p.sha256);
  }
  DbResult r = db.call("SELECT " + db.fn("blob_stored_many") + "($1::text[], $2::bigint[])",
                       {shas.str(), sizes.str()});
  if (r.ok) {
    recent.forget_recorded(recorded, noted_by);
    stats.puts_recorded += batch.size();
    CRAWLER_LOG(debug) << "file sync: recorded " << batch.size() << " uploads (blob_stored_many)";
    return true;
  }
  CRAWLER_LOG(error) << "file sync: blob_stored_many of " << batch.size() << " uploads failed: " << r.sqlstate
                     << " " << r.error << (r.sqlstate == "08006" ? "; kept to record again" : "; dropped");
  if (r.sqlstate == "08006") {
    std::lock_guard<std::mutex> lock(m);
    puts.insert(puts.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
  } else {
    stats.puts_dropped += batch.size();
  }
  return false;
}

void FileSync::Impl::db_loop() {
  NodeDb db(config.db, "main");
  auto next_connect = Clock::now(), next_facts = Clock::now();
  auto backoff = std::chrono::milliseconds(500);
  while (!stop.stopped()) {
    try {
      if (!db.connected() && Clock::now() >= next_connect) {
        if (db.try_connect()) {
          backoff = std::chrono::milliseconds(500);
        } else {
          next_connect = Clock::now() + backoff;
          backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
        }
      }
      stats.db_connected = db.connected();
      // Questions are answered even while the database is down (with its
      // error): the server must not wait for it.
      run_tasks(db);
      if (db.connected() && Clock::now() >= next_facts) {
        if (auto f = read_node_facts(db)) view.set(std::move(*f));
        next_facts = Clock::now() + kFactsEvery;
      }
      // Uploads are recorded once the store is attached (blob_stored_many
      // needs it), in batches, at most every 200 ms.
      while (db.connected() && stats.attached && flush_puts(db)) {
        std::lock_guard<std::mutex> lock(m);
        if (puts.empty()) break;
      }
      std::unique_lock<std::mutex> lock(m);
      cv.wait_for(lock, kFlushEvery, [this] { return !tasks.empty() || stop.stopped(); });
    } catch (const std::exception& e) {
      CRAWLER_LOG(error) << "file sync: database thread: " << e.what();
      stop.sleep_for(std::chrono::seconds(1));
    }
  }
  // Last chance for what was uploaded; the questions get an error.
  if (db.connected() && stats.attached) flush_puts(db);
  NodeDb none(config.db, "stopped");
  run_tasks(none);
}

FileSync::FileSync(const AgentConfig& config, FileStore& store, StoreSync& durability, boost::asio::io_context& io)
    : impl_(std::make_unique<Impl>(config, store, durability, io)) {}

FileSync::~FileSync() {
  if (impl_->started && !impl_->stopped) stop(std::chrono::milliseconds(0));
}

void FileSync::start() {
  Impl& s = *impl_;
  const AgentConfig& c = s.config;
  if (s.started) throw std::runtime_error("file sync started twice");
  if (c.db.empty()) throw std::runtime_error("file sync needs the node's database (db)");
  if (c.sync_concurrency < 1 || c.sync_concurrency > 256)
    throw std::runtime_error("sync_concurrency must be 1 to 256");
  if (c.peer_timeout_ms < 100) throw std::runtime_error("peer_timeout_ms must be at least 100");
  if (c.sync_poll_ms < 10) throw std::runtime_error("sync_poll_ms must be at least 10");
  if (c.scrub_min_age_s < 0) throw std::runtime_error("scrub_min_age_s must not be negative");
  if (c.orphan_grace_s < 1 || c.orphan_sweep_s < 1)
    throw std::runtime_error("orphan_grace_s and orphan_sweep_s must be positive");
  if (!c.ca_file.empty() && !fs::is_regular_file(c.ca_file))
    throw std::runtime_error("ca_file " + c.ca_file + " is not a file");
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  s.store_id = load_or_create_store_id(s.store.root());
  CRAWLER_LOG(info) << "file sync: store " << s.store_id << " at " << s.store.root().string() << "; "
                    << c.sync_concurrency << " transfers at once"
                    << (c.sync_bandwidth_bytes ? ", " + std::to_string(c.sync_bandwidth_bytes) + " bytes/s" : "")
                    << ", scrub " << c.scrub_bytes_per_second << " bytes/s of blobs hashed over " << c.scrub_min_age_s
                    << " s ago, orphans after " << c.orphan_grace_s
                    << " s, swept every " << c.orphan_sweep_s << " s";
  {
    std::lock_guard<std::mutex> lock(s.m);
    s.started = true;
  }
  s.threads.emplace_back([&s] { s.db_loop(); });
  s.threads.emplace_back([&s] {
    try {
      remove_stale_parts(s.store.root());
      NodeDb db(s.config.db, "attach");
      if (attach_store(db, s.stop, s.store.root(), s.store_id)) {
        s.stats.attached = true;
        s.follower.wake();  // the catch-up starts now, not at its next poll
      }
    } catch (const std::exception& e) {
      CRAWLER_LOG(error) << "file sync: attaching the store failed: " << e.what();
    }
  });
  s.threads.emplace_back([&s] { run_scrub(s.config, s.store, s.stop, s.stats); });
  s.threads.emplace_back(
      [&s] { run_orphan_sweep(s.config, s.store, s.view, s.token, s.recent, s.stop, s.stats); });
  s.follower.start();
  s.replicator.start();
}

void FileSync::stop(std::chrono::milliseconds wait) {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (!s.started || s.stopped) return;
    s.stopped = true;
  }
  auto started = Clock::now();
  CRAWLER_LOG(info) << "file sync: stopping; transfers in flight are abandoned (partial fetches kept to resume)";
  s.stop.stop();
  s.cv.notify_all();
  s.follower.wake();
  // Transfers notice within a second (curl's progress callback); a
  // database call in progress is waited for.
  s.follower.join();
  s.replicator.join();
  for (auto& t : s.threads)
    if (t.joinable()) t.join();
  s.threads.clear();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  if (took > wait)
    CRAWLER_LOG(warn) << "file sync: stopping took " << took.count() << " ms (" << wait.count() << " allowed)";
  CRAWLER_LOG(info) << "file sync: stopped";
}

void FileSync::blob_put(const std::string& sha256, std::uint64_t size, bool created) {
  Impl& s = *impl_;
  s.recent.note(sha256);
  std::lock_guard<std::mutex> lock(s.m);
  if (s.puts.size() >= kMaxQueuedPuts) {
    s.stats.puts_dropped++;
    if (!s.drop_logged)
      CRAWLER_LOG(error) << "file sync: " << kMaxQueuedPuts
                         << " uploads wait to be recorded (is the database down?); further ones are not "
                            "recorded until it drains (the next inventory or fetch finds them)";
    s.drop_logged = true;
    return;
  }
  s.drop_logged = false;
  s.puts.push_back({sha256, size});
  CRAWLER_LOG(debug) << "file sync: upload of " << sha256 << " (" << size << " bytes, "
                     << (created ? "new" : "already held") << ") queued to be recorded";
}

void FileSync::replicate(const std::string& sha256, const fs::path& file,
                         std::function<void(bool ok, std::string error)> done) {
  Impl& s = *impl_;
  auto& io = s.io;
  auto on_loop = [&io, done = std::move(done)](bool ok, std::string error) {
    boost::asio::post(io, [done, ok, error = std::move(error)]() mutable { done(ok, std::move(error)); });
  };
  bool running;
  {
    std::lock_guard<std::mutex> lock(s.m);
    running = s.started && !s.stopped;
  }
  if (!running) return on_loop(false, "file sync is not running");
  s.replicator.replicate(sha256, file, std::move(on_loop));
}

std::optional<std::string> FileSync::upload_refusal() const {
  auto facts = impl_->view.get();
  // Nothing read yet, or the database has stopped answering: the role is
  // unknown, and a sync promise could not be kept anyway.
  if (!facts)
    return std::string("this agent has no recent ha_status() from its database: upload to the agent "
                       "crawl_blob_target() names");
  if (facts->role.empty() || facts->role == "unknown")
    return std::string("this node's role is not known yet (ha_status()): upload to the agent "
                       "crawl_blob_target() names");
  if (facts->role != "primary")
    return "this node is the " + facts->role + ", not the primary: upload to the agent crawl_blob_target() names";
  if (facts->fenced) return "this node is fenced: upload to the agent crawl_blob_target() names";
  return std::nullopt;
}

void FileSync::referenced(std::vector<std::string> sha256s,
                          std::function<void(std::optional<std::vector<std::string>>, std::string error)> done) {
  Impl& s = *impl_;
  s.submit([&io = s.io, list = std::move(sha256s), done = std::move(done)](NodeDb& db) {
    std::vector<std::string> out;
    std::string error;
    for (std::size_t i = 0; i < list.size() && error.empty(); i += kReferencedBatch) {
      PgArrayLiteral arr;
      for (std::size_t j = i; j < std::min(list.size(), i + kReferencedBatch); ++j)
        if (!arr.add_text(list[j])) error = "a sha256 holds a NUL byte";
      if (!error.empty()) break;
      DbResult r = db.call("SELECT h FROM " + db.fn("blob_referenced") + "($1::text[]) AS h", {arr.str()});
      if (!r.ok) {
        error = "blob_referenced: " + r.sqlstate + " " + r.error;
        break;
      }
      for (const auto& row : r.rows)
        if (row[0]) out.push_back(*row[0]);
    }
    std::optional<std::vector<std::string>> answer;
    if (error.empty()) answer = std::move(out);
    else CRAWLER_LOG(warn) << "file sync: the peer's orphan question is not answered: " << error;
    boost::asio::post(io, [done, answer = std::move(answer), error]() mutable { done(std::move(answer), error); });
  });
}

void FileSync::status(std::function<void(std::optional<std::string> json, std::string error)> done) {
  Impl& s = *impl_;
  s.submit([&s, done = std::move(done)](NodeDb& db) {
    std::optional<std::string> json;
    std::string error;
    DbResult r = db.call("SELECT pg_catalog.row_to_json(s)::text FROM " + db.fn("ha_file_sync_status") + "() s");
    if (!r.ok) {
      error = "ha_file_sync_status: " + r.sqlstate + " " + r.error;
    } else if (r.rows.size() != 1 || !r.rows[0][0]) {
      error = "ha_file_sync_status returned no row";
    } else {
      std::size_t queued;
      {
        std::lock_guard<std::mutex> lock(s.m);
        queued = s.puts.size();
      }
      json = status_json(*r.rows[0][0], s.stats, s.view.get(), s.store_id, queued);
      if (!json) error = "ha_file_sync_status returned no JSON object";
    }
    boost::asio::post(s.io, [done, json = std::move(json), error]() mutable { done(std::move(json), error); });
  });
}

}  // namespace crawler::agent
