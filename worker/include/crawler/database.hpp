// The database connection: libpq on a dedicated thread, non-blocking, with
// prepared statements and pipeline mode (every statement its own
// transaction: one failure never aborts its neighbours). It calls only the
// extension's write API and SELECTs the data tables.
//
// Failover: the conninfo may name several hosts; target_session_attrs=
// read-write is added when absent, so libpq finds the primary. On a lost
// connection or SQLSTATE 25006 (read-only node) the calls not yet answered
// are kept and sent again after reconnecting. The write API is idempotent
// (docs/api.md), so a call whose reply was lost is safe to repeat.
#pragma once
#include <boost/asio/io_context.hpp>

struct pg_conn;
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace crawler {

using Param = std::optional<std::string>;  // nullopt is SQL NULL

struct DbResult {
  bool ok = false;
  std::string sqlstate;
  std::string error;  // primary message (+ detail)
  std::vector<std::string> columns;
  std::vector<std::vector<Param>> rows;
  const Param& at(std::size_t row, const std::string& column) const;
};

// Prepared statements, one per API call (and the few SELECTs).
enum class Stmt {
  crawl_start, crawl_stop, crawl_status, crawl_claim, crawl_renew, crawl_release,
  crawl_complete, crawl_fail, crawl_enqueue, crawl_host_set, image_record,
  session_settings, host_robots, sessions_overview, recent_errors, ha_status, count_
};

class Database {
 public:
  using Callback = std::function<void(DbResult&&)>;
  Database(std::string conninfo, boost::asio::io_context& io);
  ~Database();

  // Queues a call; `done` runs on the io_context. `idempotent` calls are sent
  // again after a lost connection; the others then fail with SQLSTATE 08006.
  void call(Stmt s, std::vector<Param> params, Callback done, bool idempotent = true);
  // Calls not yet acknowledged.
  std::size_t pending() const { return pending_; }
  bool connected() const { return connected_; }
  std::string server() const;     // "host:port" of the current connection
  std::uint64_t reconnects() const { return reconnects_; }
  // Stops after the queue is empty or `wait` has passed.
  void stop(std::chrono::milliseconds wait);

 private:
  struct Op {
    Stmt stmt;
    std::vector<Param> params;
    Callback done;
    bool idempotent;
  };
  void run();
  bool connect();
  void disconnect();
  // Sends a batch in one pipeline; returns how many got a final answer.
  std::size_t execute(std::vector<Op>& batch, bool* connection_lost);
  void deliver(Op& op, DbResult&& r);

  std::string conninfo_;
  boost::asio::io_context& io_;
  ::pg_conn* conn_ = nullptr;
  std::string schema_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> reconnects_{0};
  std::string server_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;
  std::thread thread_;
};

}  // namespace crawler
