// A call to the database and its answer, without libpq: what the write API
// (write_api.hpp) sends and reads, so that it is unit-tested against a
// recorder instead of a server. Database (database.hpp) is the real sender.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace crawler {

using Param = std::optional<std::string>;  // nullopt is SQL NULL

// An answer: ok with its columns and rows (each value text, or NULL), or
// the error with its SQLSTATE.
struct DbResult {
  bool ok = false;
  std::string sqlstate;
  std::string error;  // primary message (+ detail)
  std::vector<std::string> columns;
  std::vector<std::vector<Param>> rows;
  // The value of `column` in `row`; NULL when the row or the column does not
  // exist (has_column() tells a missing column from a NULL).
  const Param& at(std::size_t row, const std::string& column) const;
  // Whether the answer has a column of that name.
  bool has_column(const std::string& column) const;
};

// Prepared statements, one per API call (and the few SELECTs); their SQL is
// in database.cpp.
enum class Stmt {
  crawl_start, crawl_stop, crawl_status, crawl_claim, crawl_renew, crawl_release,
  crawl_complete, crawl_fail, crawl_enqueue, crawl_enqueue_many, crawl_host_set, image_record,
  session_settings, host_robots, redirect_allowed, sessions_overview, recent_errors, ha_status,
  crawl_blob_target, crawl_lease_early, image_unchanged, export_session, image_page, crawl_next_claim_in, count_
};

// What sends calls to the database and delivers their answers on the event
// loop, in the order of each key.
class DbCaller {
 public:
  using Callback = std::function<void(DbResult&&)>;
  virtual ~DbCaller() = default;
  // Queues a call; `done` runs on the loop. `idempotent` calls are sent
  // again after a lost connection; the others then fail with SQLSTATE 08006.
  // Calls with the same `key` are applied in the order they were made.
  // `lock_order` (the session) orders the calls of one transaction so that
  // two transactions take the sessions' row locks in the same order.
  virtual void call(Stmt s, std::vector<Param> params, Callback done, bool idempotent = true,
                    std::uint64_t key = 0, std::int64_t lock_order = 0) = 0;
  // Answers `done` with `r` without asking the database (a call refused
  // before it was sent), on the loop as every answer is: never from inside
  // the caller's own call.
  virtual void answer(Callback done, DbResult&& r) = 0;
  // Calls not yet answered.
  virtual std::size_t pending() const = 0;
};

}  // namespace crawler
