// NodeSql on a few threads, each with its own blocking session with the
// node's database (NodeDb). Each session has a statement_timeout, so a call
// stuck on a lock ends; the queue of waiting calls is bounded, so a
// database that hangs costs answers, not memory.
#pragma once
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "crawler/agent/node_sql.hpp"

namespace crawler::agent {

class NodeSqlPool : public NodeSql {
 public:
  // `sessions` threads (at least 1) connect to `conninfo` when their first
  // call comes and again after a failure; each statement may take at most
  // `statement_timeout_ms`. Answers are posted to `io`.
  NodeSqlPool(std::string conninfo, int sessions, int statement_timeout_ms, boost::asio::io_context& io);
  // Stops the threads; calls still queued are answered 57P01 (shutting down).
  ~NodeSqlPool() override;
  NodeSqlPool(const NodeSqlPool&) = delete;
  NodeSqlPool& operator=(const NodeSqlPool&) = delete;

  void call(DbRole role, std::string sql, std::vector<Param> params, std::function<void(DbResult)> done) override;

  // Calls that may wait for a session before more are refused (53300).
  static constexpr std::size_t kMaxQueued = 64;

 private:
  struct Job {
    DbRole role;
    std::string sql;
    std::vector<Param> params;
    std::function<void(DbResult)> done;
  };
  void run(int index);
  void answer(std::function<void(DbResult)> done, DbResult result);

  std::string conninfo_;
  int statement_timeout_ms_;
  boost::asio::io_context& io_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace crawler::agent
