// The database connections: a small pool, each libpq connection on its own
// thread, non-blocking, with prepared statements and pipeline mode (every
// statement its own transaction: one failure never aborts its neighbours).
// Calls without a key (claims, renewals, status, links) share connection 0,
// one call per transaction, in order; calls with a key (a frontier item's
// result) always go to the same results connection, in order, batched into
// one transaction. It calls only the extension's write API and SELECTs the
// data tables.
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
#include <memory>
#include <mutex>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crawler/connect_failure.hpp"
#include "crawler/db_call.hpp"

namespace crawler {

// What the connections are for. kWriter: the write API, on the writable
// node (target_session_attrs=read-write added when absent), connections
// logged at info. kReader (the status command): reads only, so any node
// will do, the primary when one answers (read-write is tried first, then
// any host: a standby answers while no primary does); one connection,
// logged at debug.
enum class DbMode { kWriter, kReader };

class Database final : public DbCaller {
 public:
  // `connections`: results connections besides connection 0 (kWriter only).
  Database(std::string conninfo, boost::asio::io_context& io, int connections = 1, DbMode mode = DbMode::kWriter);
  ~Database() override;

  // DbCaller: answers run on `io`.
  void call(Stmt s, std::vector<Param> params, Callback done, bool idempotent = true,
            std::uint64_t key = 0, std::int64_t lock_order = 0) override;
  void answer(Callback done, DbResult&& r) override;
  std::size_t pending() const override { return pending_; }
  bool connected() const { return connected_; }
  std::string server() const;     // "host:port" of the current connection
  // Whether the server of connection 0 was read-only when it connected
  // (default_transaction_read_only or hot standby, as the server reported).
  bool read_only() const;
  // `f` runs on the loop, once, when no connection was ever made and the
  // last attempt failed for a reason retrying cannot fix (classify_connect_failure:
  // the conninfo, the credentials, a missing database or extension); the
  // connections then stop trying. Once a connection has worked, the same
  // failure is logged as an error and retried: the unanswered calls are
  // kept for the database that is fixed.
  void on_unusable(std::function<void(const std::string&)> f) { on_unusable_ = std::move(f); }
  std::uint64_t reconnects() const { return reconnects_; }
  // Connection 0 LISTENs on `channel` (a plain SQL identifier), again after
  // every reconnect, and `on_notify` runs on the loop when notifications
  // arrive (once for those read together). While no call is queued the
  // connection waits for a call or a notification, so an idle worker hears
  // of new work at once instead of at its next poll. A server that refuses
  // LISTEN (a hot standby) is logged at debug; the worker then only polls.
  void listen(std::string channel, std::function<void()> on_notify);
  // Stops after the queue is empty or `wait` has passed, then closes the
  // connections (their server sessions end at once); no call is sent after.
  void stop(std::chrono::milliseconds wait);

 private:
  using Clock = std::chrono::steady_clock;
  struct Op {
    Stmt stmt;
    std::vector<Param> params;
    Callback done;
    bool idempotent;
    std::int64_t lock_order = 0;
  };
  struct Shard {
    int index = 0;
    ::pg_conn* conn = nullptr;
    std::string schema, server;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Op> queue;
    std::thread thread;
    bool connected = false;
    bool read_only = false;
    std::uint64_t connects = 0;
    bool listening = false, listen_refused = false;  // this connection's LISTEN
  };
  void run(Shard& sh);
  // Connects, finds the extension's schema and prepares every statement;
  // the failure (and no connection) when any of it fails. Its steps: the
  // connection itself (in kReader mode the writable node first, then any),
  // one attempt, where crawler_ha is installed, every statement in one
  // round trip.
  std::optional<ConnectFailure> connect(Shard& sh);
  std::optional<ConnectFailure> open(Shard& sh);
  std::optional<ConnectFailure> open_with(Shard& sh, const char* session_attrs);
  std::optional<ConnectFailure> read_schema(Shard& sh);
  std::optional<ConnectFailure> prepare_statements(Shard& sh);
  void disconnect(Shard& sh);
  // A failed attempt: the first one and then every 10 s for a minute, every
  // minute after (and at once when the reason changes) are logged with how
  // long the database has been missing; a permanent one before any connection worked makes the
  // database unusable (on_unusable).
  void failed_attempt(const ConnectFailure& f);
  // A connection that worked: ends the wait, logged with its length.
  void connected_after_wait(const Shard& sh);
  // Sends a batch in one pipeline, each call its own transaction; returns
  // how many got a final answer.
  std::size_t execute(Shard& sh, std::vector<Op>& batch, bool* connection_lost);
  // execute()'s halves: the answers of a pipeline of calls each followed by
  // a sync (how many came, within kReplyTimeout), and their delivery (how
  // many were final: a deadlock's call goes back to the queue, a refusal a
  // reconnect cures stops the delivery and sets *lost).
  std::size_t read_answers(Shard& sh, std::vector<std::optional<DbResult>>& results, bool* lost);
  std::size_t deliver_answers(Shard& sh, std::vector<Op>& batch, std::vector<std::optional<DbResult>>& results,
                              std::size_t answered, bool* lost);
  // run()'s steps. The next batch from the queue (false: stop); a connection
  // for it (false: the batch is queued again after a back-off); the batch
  // sent, as one transaction or call by call (false: the connection was
  // lost after *done calls were answered); and after a loss the idempotent
  // rest queued again, the others answered 08006.
  bool take_batch(Shard& sh, std::vector<Op>& batch);
  // take_batch()'s wait on a listening connection 0: LISTEN once per
  // connection, then up to 200 ms for a call (wake_fd_) or a notification,
  // which is delivered. False when the connection does not listen (the
  // caller waits on the queue's condition variable instead).
  bool wait_listening(Shard& sh);
  void deliver_notifications(Shard& sh);
  void wake_listener();
  bool ensure_connected(Shard& sh, std::vector<Op>& batch, std::chrono::milliseconds& backoff);
  bool send_batch(Shard& sh, std::vector<Op>& batch, std::size_t* done);
  void requeue_after_loss(Shard& sh, std::vector<Op>& batch, std::size_t done);
  // Sends a batch as one transaction; on `committed` every call is answered.
  enum class BatchOutcome { committed, statement_failed, lost };
  BatchOutcome execute_transaction(Shard& sh, std::vector<Op>& batch);
  void deliver(Op& op, DbResult&& r);
  bool stop_now() const;

  std::string conninfo_;
  DbMode mode_;
  boost::asio::io_context& io_;
  std::function<void(const std::string&)> on_unusable_;  // the loop's
  std::atomic<bool> ever_connected_{false}, unusable_{false};
  // The wait for a database that does not answer, shared by the
  // connections so that it is logged once, not once per connection.
  std::mutex wait_mu_;
  bool waiting_ = false;
  Clock::time_point wait_since_, wait_logged_;
  std::string wait_reason_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<bool> stopping_{false}, stopped_{false};
  std::atomic<std::int64_t> stop_deadline_ns_{0};
  std::mutex listen_mu_;
  std::string listen_channel_;
  std::function<void()> on_notify_;
  std::atomic<bool> listen_wanted_{false};
  int wake_fd_ = -1;  // an eventfd: a call queued on connection 0, or the stop
};

}  // namespace crawler
