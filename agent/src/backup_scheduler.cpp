#include "crawler/agent/backup_scheduler.hpp"

#include <algorithm>
#include <vector>

#include "crawler/agent/child_process.hpp"
#include "crawler/agent/node_db.hpp"
#include "crawler/log.hpp"

extern char** environ;

namespace crawler::agent {
namespace {

using Clock = std::chrono::system_clock;

// Whether this node may back up now and, if so, when the newest usable
// backup of each type of its stanza started, in the database's clock (the
// one the backups were recorded in: no skew between this host and it).
// ha_backup_begin() raises 25006 on anything but the writable primary and
// 55000 without WAL archiving, so a standby never gets to the question.
// The stanza is the node's name, as `backup run` chooses it by default.
// Usable: verified, and not yet expired by retention (an expired backup is
// nothing an incremental could build on).
constexpr const char* kDueSql =
    "SELECT g.node_name, extract(epoch FROM pg_catalog.clock_timestamp())::text, "
    "(SELECT extract(epoch FROM max(k.started_at))::text FROM @extschema@.ha_backups() k "
    "  WHERE k.stanza = g.node_name AND k.type = 'full' AND k.verify_ok AND k.expired_at IS NULL), "
    "(SELECT extract(epoch FROM max(k.started_at))::text FROM @extschema@.ha_backups() k "
    "  WHERE k.stanza = g.node_name AND k.type = 'diff' AND k.verify_ok AND k.expired_at IS NULL), "
    "(SELECT extract(epoch FROM max(k.started_at))::text FROM @extschema@.ha_backups() k "
    "  WHERE k.stanza = g.node_name AND k.type = 'incr' AND k.verify_ok AND k.expired_at IS NULL) "
    "FROM @extschema@.ha_backup_begin() g";

// A failed backup is tried again after this, not at the next look: a
// failure that repeats (a full disk, a broken repository) would otherwise
// start pgBackRest every minute and fill the event log.
constexpr std::chrono::seconds kFailureBackoff{300};

std::optional<Clock::time_point> epoch_time(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  try {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::stod(*text))));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Whether the newest backup counted by a type's clock is older than its
// interval; a clock in the future (the database's time stepped back) is
// not.
bool older_than(Clock::time_point now, Clock::time_point t, std::chrono::seconds interval) {
  return now - t >= interval;
}

// The last line of `text` that starts with `prefix` (after leading
// spaces), without them; "" when none.
std::string line_starting(const std::string& text, const std::string& prefix) {
  std::string found;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    line.erase(0, line.find_first_not_of(' '));
    if (line.rfind(prefix, 0) == 0) found = line;
    start = end + 1;
  }
  return found;
}

// The end of a child's stderr for the log: the reason is in its last
// lines, and a log line must stay readable.
std::string tail(const std::string& text, std::size_t max = 2000) {
  std::string t = text.size() > max ? "..." + text.substr(text.size() - max) : text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

std::optional<std::string> due_backup_type(Clock::time_point now, std::optional<Clock::time_point> newest_full,
                                           std::optional<Clock::time_point> newest_diff,
                                           std::optional<Clock::time_point> newest_incr,
                                           const BackupIntervals& iv) {
  using std::chrono::seconds;
  if (iv.full <= seconds(0) && iv.diff <= seconds(0) && iv.incr <= seconds(0)) return std::nullopt;
  if (!newest_full) return "full";
  if (iv.full > seconds(0) && older_than(now, *newest_full, iv.full)) return "full";
  Clock::time_point diff_clock = std::max(*newest_full, newest_diff.value_or(*newest_full));
  if (iv.diff > seconds(0) && older_than(now, diff_clock, iv.diff)) return "diff";
  Clock::time_point incr_clock = std::max(diff_clock, newest_incr.value_or(diff_clock));
  if (iv.incr > seconds(0) && older_than(now, incr_clock, iv.incr)) return "incr";
  return std::nullopt;
}

std::chrono::seconds backup_check_period(const BackupIntervals& iv) {
  std::chrono::seconds period{60};
  for (auto i : {iv.full, iv.diff, iv.incr})
    if (i > std::chrono::seconds(0)) period = std::min(period, i);
  return std::max(period, std::chrono::seconds(1));
}

BackupScheduler::BackupScheduler(const AgentConfig& config, std::string program, std::string store_root)
    : config_(config), program_(std::move(program)), store_root_(std::move(store_root)) {}

BackupScheduler::~BackupScheduler() { stop(); }

void BackupScheduler::start() {
  if (config_.backup_config.empty()) {
    CRAWLER_LOG(info) << "backups: not scheduled (no backup_config)";
    return;
  }
  if (config_.backup_full_interval_s <= 0 && config_.backup_diff_interval_s <= 0 && config_.backup_incr_interval_s <= 0) {
    CRAWLER_LOG(info) << "backups: not scheduled (every backup_*_interval_s is 0)";
    return;
  }
  thread_ = std::thread([this] { run(); });
}

void BackupScheduler::stop() {
  stop_.stop();
  if (thread_.joinable()) thread_.join();
}

void BackupScheduler::run() {
  const BackupIntervals iv{std::chrono::seconds(config_.backup_full_interval_s),
                           std::chrono::seconds(config_.backup_diff_interval_s),
                           std::chrono::seconds(config_.backup_incr_interval_s)};
  const auto period = backup_check_period(iv);
  const std::string store = config_.backup_store.empty() ? store_root_ : config_.backup_store;
  // The look is a few index reads; a minute's timeout keeps a stuck lock
  // from holding the thread past its next look.
  NodeDb db(config_.db, "backups", "backups", "-c statement_timeout=60000");
  CRAWLER_LOG(info) << "backups: scheduled with " << config_.backup_config << " (full every "
                    << config_.backup_full_interval_s << " s, diff every " << config_.backup_diff_interval_s
                    << " s, incr every " << config_.backup_incr_interval_s << " s; 0: never), looked at every "
                    << period.count() << " s";
  // Logged once per change, not at every look: a standby says so for days.
  std::string last_refusal;
  // After a failure no backup starts before this; the looks go on, so a
  // node that became a standby meanwhile still says so.
  std::chrono::steady_clock::time_point retry_at{};
  while (!stop_.stopped()) {
    if (!db.ensure(stop_)) break;
    DbResult r = db.call(db.with_schema(kDueSql));
    if (!r.ok) {
      std::string why = r.sqlstate + " " + r.error;
      if (r.sqlstate == "25006") why = "this node may not back up now: " + r.error;
      if (why != last_refusal) {
        if (r.sqlstate == "25006") CRAWLER_LOG(info) << "backups: none started: " << why;
        else CRAWLER_LOG(error) << "backups: none started: " << why;
        last_refusal = why;
      }
      stop_.sleep_for(period);
      continue;
    }
    if (!last_refusal.empty()) {
      CRAWLER_LOG(info) << "backups: this node may back up again";
      last_refusal.clear();
    }
    if (r.rows.size() != 1 || r.rows[0].size() != 5 || !r.rows[0][0] || !r.rows[0][1]) {
      CRAWLER_LOG(error) << "backups: ha_backup_begin() answered " << r.rows.size() << " rows; none started";
      stop_.sleep_for(period);
      continue;
    }
    const auto& row = r.rows[0];
    auto now = epoch_time(row[1]);
    auto type = now ? due_backup_type(*now, epoch_time(row[2]), epoch_time(row[3]), epoch_time(row[4]), iv)
                    : std::nullopt;
    if (!type || std::chrono::steady_clock::now() < retry_at) {
      stop_.sleep_for(period);
      continue;
    }
    CRAWLER_LOG(info) << "backups: " << *type << " backup of stanza " << *row[0] << " due: starting it";
    // The same program, so the schedule runs exactly what an operator
    // runs by hand; the agent's environment passes on (PATH finds
    // pgBackRest, PG* variables reach libpq as they reach the agent's).
    std::vector<std::string> argv{program_, "backup",  "run",     "--type", *type,  "--node",
                                  config_.db, "--config", config_.backup_config, "--store", store};
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    // One at a time by construction: this thread waits for the child.
    ChildResult c = run_child(argv, env);
    if (c.ok()) {
      CRAWLER_LOG(info) << "backups: " << *type << " backup done: " << line_starting(c.out, "backup:");
      if (restore_test_due(std::chrono::steady_clock::now())) run_restore_test(env);
      stop_.sleep_for(period);
    } else if (c.started && c.signal == 0 && c.exit_status == 3) {
      // The primary moved between the look and the run: the other node's turn.
      CRAWLER_LOG(info) << "backups: " << *type << " backup refused: " << tail(c.err);
      stop_.sleep_for(period);
    } else {
      CRAWLER_LOG(error) << "backups: " << *type << " backup failed (" << c.how() << "), tried again in "
                         << kFailureBackoff.count() << " s: " << tail(c.err.empty() ? c.out : c.err);
      retry_at = std::chrono::steady_clock::now() + kFailureBackoff;
      stop_.sleep_for(period);
    }
  }
}

bool BackupScheduler::restore_test_due(std::chrono::steady_clock::time_point now) const {
  if (config_.backup_restore_test_interval_s <= 0) return false;
  return !last_restore_test_ || now - *last_restore_test_ >= std::chrono::seconds(config_.backup_restore_test_interval_s);
}

void BackupScheduler::run_restore_test(const std::vector<std::string>& env) {
  last_restore_test_ = std::chrono::steady_clock::now();
  CRAWLER_LOG(info) << "backups: restore test of the newest backup: starting it";
  ChildResult c = run_child({program_, "backup", "test-restore", "--node", config_.db, "--config",
                             config_.backup_config, "--scratch-dir", config_.backup_scratch_dir},
                            env);
  // The outcome is recorded by the command (its row and a restore event),
  // failed or not; the log says it too.
  if (c.ok())
    CRAWLER_LOG(info) << "backups: restore test passed: " << line_starting(c.out, "test-restore:");
  else
    CRAWLER_LOG(error) << "backups: restore test FAILED (" << c.how() << "): " << tail(c.err.empty() ? c.out : c.err);
}

}  // namespace crawler::agent
