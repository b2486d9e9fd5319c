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

const char* db_role_name(DbRole role) {
  switch (role) {
    case DbRole::agent:
      return "none";
    case DbRole::reader:
      return "crawler_ha_reader";
    case DbRole::writer:
      return "crawler_ha_writer";
    case DbRole::admin:
      return "crawler_ha_admin";
  }
  return "none";
}

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

void NodeSqlPool::call(DbRole role, std::string sql, std::vector<Param> params,
                       std::function<void(DbResult)> done) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (!stopping_ && jobs_.size() < kMaxQueued) {
      jobs_.push_back(Job{role, std::move(sql), std::move(params), std::move(done)});
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
  DbRole role = DbRole::agent;  // the role the session has now
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
    if (!db.connected()) role = DbRole::agent;  // a new session starts as the login role
    if (!db.try_connect()) {
      answer(std::move(job.done), failed("08006", "this node's database does not answer"));
      continue;
    }
    if (job.role != role) {
      // set_config('role') is SET ROLE with the name as a parameter.
      DbResult set = db.call("SELECT pg_catalog.set_config('role', $1, false)", {std::string(db_role_name(job.role))});
      if (!set.ok) {
        if (set.sqlstate != "08006") {
          set.sqlstate = "42501";
          set.error = "the agent's database role cannot take the role " + std::string(db_role_name(job.role)) +
                      " (" + set.error + "): GRANT " + db_role_name(job.role) + " TO the agent's login role";
        }
        answer(std::move(job.done), std::move(set));
        continue;
      }
      role = job.role;
    }
    answer(std::move(job.done), db.call(db.with_schema(job.sql), job.params));
  }
}

}  // namespace crawler::agent
