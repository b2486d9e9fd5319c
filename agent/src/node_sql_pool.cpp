#include "crawler/agent/node_sql_pool.hpp"

#include <boost/asio/post.hpp>

#include "crawler/agent/node_db.hpp"

namespace crawler::agent {

namespace {

DbResult failed(const char* sqlstate, std::string message) {
  DbResult r;
  r.sqlstate = sqlstate;
  r.error = std::move(message);
  return r;
}

}  // namespace

NodeSqlPool::NodeSqlPool(std::string conninfo, int sessions, int statement_timeout_ms,
                         boost::asio::io_context& io)
    : conninfo_(std::move(conninfo)), statement_timeout_ms_(statement_timeout_ms), io_(io) {
  for (int i = 0; i < std::max(1, sessions); ++i) threads_.emplace_back([this, i] { run(i); });
}

NodeSqlPool::~NodeSqlPool() {
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
    left.swap(jobs_);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  for (auto& job : left) answer(std::move(job.done), failed("57P01", "the agent is stopping"));
}

void NodeSqlPool::call(std::string sql, std::vector<Param> params, std::function<void(DbResult)> done) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (!stopping_ && jobs_.size() < kMaxQueued) {
      jobs_.push_back(Job{std::move(sql), std::move(params), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  answer(std::move(done), failed(stopping_ ? "57P01" : "53300",
                                 stopping_ ? "the agent is stopping"
                                           : "too many database calls are waiting; the database is slow"));
}

void NodeSqlPool::answer(std::function<void(DbResult)> done, DbResult result) {
  boost::asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

void NodeSqlPool::run(int index) {
  NodeDb db(conninfo_, "api " + std::to_string(index + 1), "HTTP API",
            "-c statement_timeout=" + std::to_string(statement_timeout_ms_) +
                " -c lock_timeout=" + std::to_string(statement_timeout_ms_));
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // One attempt, no back-off: a caller waits for this answer, and a
    // database that is down must be reported at once.
    DbResult r = db.try_connect() ? db.call(db.with_schema(job.sql), job.params)
                                  : failed("08006", "this node's database does not answer");
    answer(std::move(job.done), std::move(r));
  }
}

}  // namespace crawler::agent
