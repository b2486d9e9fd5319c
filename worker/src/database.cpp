#include "crawler/database.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <variant>

#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBatch = 64;
constexpr auto kReplyTimeout = std::chrono::seconds(60);
// While the database does not answer, how often the wait is logged again
// (with how long it has lasted): often in the first minute, when someone
// is likely watching a command that waits, then once a minute; a new
// reason is logged at once.
constexpr auto kWaitLogEarly = std::chrono::seconds(10);
constexpr auto kWaitLogLater = std::chrono::seconds(60);

struct StmtDef {
  const char* name;
  const char* sql;  // %s is the extension's schema
  bool optional;    // may be missing (older extension): calls then fail
};

const StmtDef kStatements[] = {
    {"crawl_start", "SELECT %s.crawl_start($1::text[], $2::jsonb) AS session", false},
    {"crawl_stop", "SELECT %s.crawl_stop($1::bigint) AS stopped", false},
    {"crawl_status", "SELECT * FROM %s.crawl_status($1::bigint)", false},
    {"crawl_claim", "SELECT * FROM %s.crawl_claim($1::text, $2::integer, $3::interval)", false},
    {"crawl_renew", "SELECT %s.crawl_renew($1::text, $2::bigint[], $3::interval) AS renewed", false},
    {"crawl_release", "SELECT %s.crawl_release($1::text, $2::bigint[]) AS released", false},
    {"crawl_complete", "SELECT %s.crawl_complete($1::bigint, $2::text, $3::jsonb) AS completed", false},
    {"crawl_fail", "SELECT %s.crawl_fail($1::bigint, $2::text, $3::text, $4::interval) AS state", false},
    {"crawl_enqueue",
     "SELECT %s.crawl_enqueue($1::bigint, $2::text[], $3::integer, $4::text, $5::text) AS queued", false},
    {"crawl_enqueue_many",
     "SELECT %s.crawl_enqueue_many($1::bigint, $2::text[], $3::text[], $4::integer[], $5::text[]) AS queued",
     true},  // an older extension: links go page by page (crawl_enqueue)
    {"crawl_host_set",
     "SELECT %s.crawl_host_set($1::text, $2::interval, $3::text, $4::timestamptz)", false},
    {"image_record",
     "SELECT %s.image_record($1::bigint, $2::text, $3::text, $4::text, $5::bigint, $6::integer, "
     "$7::integer, $8::text, $9::text, $10::text, $11::integer, $12::text, $13::bigint, $14::text, $15::text, "
     "$16::text, $17::jsonb, $18::text) AS id",
     false},
    {"session_settings",
     "SELECT session_id AS id, status, user_agent, robots::text AS robots, max_page_bytes, max_image_bytes, "
     "max_pixels, min_width, min_height, delay_ms, per_host, max_depth, revisit::text AS revisit, "
     "sitemaps::text AS sitemaps, thumbnails::text AS thumbnails, page_patterns::text AS page_patterns, "
     "image_patterns::text AS image_patterns "
     "FROM %s.crawl_session_settings($1::bigint)",
     false},
    {"host_robots",
     "SELECT robots_txt, extract(epoch FROM now() - robots_fetched_at)::bigint AS age "
     "FROM %s.crawl_hosts WHERE host = $1::text",
     false},
    {"redirect_allowed", "SELECT %s.crawl_redirect_allowed($1::bigint, $2::text, $3::text) AS allowed", false},
    {"sessions_overview",
     "SELECT s.id, s.status, to_char(s.started_at, 'YYYY-MM-DD HH24:MI:SS') AS started, "
     "t.pages_fetched, t.images_stored, t.bytes_stored, t.errors, t.queued, t.leased, t.failed "
     "FROM %s.crawl_sessions s JOIN %s.crawl_session_totals t ON t.session_id = s.id "
     "WHERE $1::bigint IS NULL OR s.id = $1::bigint "
     "ORDER BY s.id DESC LIMIT 20",
     false},
    {"recent_errors",
     "SELECT session_id, url, attempts, last_error, "
     "to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') AS at FROM %s.crawl_frontier "
     "WHERE state = 'failed' AND ($1::bigint IS NULL OR session_id = $1::bigint) "
     "ORDER BY updated_at DESC LIMIT 20",
     false},
    {"ha_status", "SELECT * FROM %s.ha_status()", true},
    {"crawl_blob_target", "SELECT agent_url, replication_mode, sync_timeout_ms FROM %s.crawl_blob_target()",
     true},  // an extension without file sync: only --storage works
    {"crawl_lease_early",
     "SELECT * FROM %s.crawl_lease_early($1::text, $2::bigint, $3::text[], $4::interval)",
     true},  // an older extension: early fetches are dropped, their URLs claimed as usual
    {"image_unchanged",
     "SELECT %s.image_unchanged($1::bigint, $2::text, $3::boolean, $4::bigint, $5::text) AS id", false},
    // The export's reads (any node, read-only): the session and how many
    // rows it has, for the progress's total; then its rows, a page at a time
    // in id order through image_list(), every column named, the times in UTC
    // ISO 8601 whatever the connection's TimeZone and DateStyle.
    {"export_session",
     "SELECT s.id, (SELECT count(*) FROM %s.images i WHERE i.session_id = s.id) AS images "
     "FROM %s.crawl_sessions s WHERE s.id = $1::bigint",
     false},
    {"image_page",
     "SELECT id, url, sha256, file_path, file_size, width, height, format, content_type, found_on, "
     "session_id, http_status, "
     "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at, "
     "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS updated_at, etag, last_modified, "
     "to_char(checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS checked_at, thumbnails::text AS thumbnails, filename "
     "FROM %s.image_list(session => $1::bigint, after_id => $2::bigint, max_rows => $3::integer)",
     true},  // an older extension without image_list(): only export fails, saying so
    {"crawl_next_claim_in",
     "SELECT ceil(extract(epoch FROM %s.crawl_next_claim_in()) * 1000)::bigint AS ms",
     true},  // an older extension: an idle worker only backs off
};
static_assert(sizeof(kStatements) / sizeof(kStatements[0]) == static_cast<std::size_t>(Stmt::count_));

std::string format_sql(const char* sql, const std::string& schema) {
  std::string out;
  for (const char* p = sql; *p; ++p) {
    if (p[0] == '%' && p[1] == 's') {
      out += schema;
      ++p;
    } else {
      out.push_back(*p);
    }
  }
  return out;
}

// Errors after which the call is sent again on a new connection: the
// connection is gone, or this node stopped accepting writes (failover).
bool must_reconnect(const std::string& sqlstate) {
  return sqlstate.rfind("08", 0) == 0 || sqlstate == "25006" || sqlstate == "57P01" ||
         sqlstate == "57P02" || sqlstate == "57P03" || sqlstate.empty();
}

DbResult to_result(PGresult* r) {
  DbResult out;
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    out.ok = true;
    int nf = PQnfields(r), nt = PQntuples(r);
    for (int f = 0; f < nf; ++f) out.columns.emplace_back(PQfname(r, f));
    out.rows.resize(static_cast<std::size_t>(nt));
    for (int t = 0; t < nt; ++t)
      for (int f = 0; f < nf; ++f)
        out.rows[static_cast<std::size_t>(t)].push_back(
            PQgetisnull(r, t, f) ? Param{} : Param{std::string(PQgetvalue(r, t, f))});
    return out;
  }
  const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  out.sqlstate = code ? code : "";
  out.error = msg ? msg : PQresultErrorMessage(r);
  if (detail) out.error += std::string(" (") + detail + ")";
  if (st == PGRES_PIPELINE_ABORTED) out.error = "pipeline aborted";
  return out;
}

// Calls that may share a transaction on connection 0: links lock only
// session rows (in order) and claims and early leases skip locked rows (but
// for finishing an idle session), so they do not wait for a results
// transaction that waits for them. crawl_start is a new session row and
// the seeds' enqueue (the links' locks), and the settings are a read: so
// the crawl command's start (crawl_start, the settings, the first claim,
// all queued before the connection is up) is one round trip and one commit
// (one WAL flush, and in sync mode one wait for the standby), not two.
bool groupable(Stmt s) {
  return s == Stmt::crawl_enqueue || s == Stmt::crawl_enqueue_many || s == Stmt::crawl_claim ||
         s == Stmt::crawl_lease_early || s == Stmt::crawl_start || s == Stmt::session_settings;
}

}  // namespace

Database::Database(std::string conninfo, boost::asio::io_context& io, int connections, DbMode mode)
    : conninfo_(std::move(conninfo)), mode_(mode), io_(io) {
  // Connection 0 carries the calls without a key (claims, renewals, status):
  // they never wait behind a batch of results. The others carry the results;
  // a reader sends none.
  int shards = mode == DbMode::kReader ? 1 : 1 + std::max(1, connections);
  for (int i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->index = i;
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (auto& sh : shards_) sh->thread = std::thread([this, s = sh.get()] { run(*s); });
}

Database::~Database() {
  stop(std::chrono::milliseconds(0));
  for (auto& sh : shards_) disconnect(*sh);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Database::listen(std::string channel, std::function<void()> on_notify) {
  {
    std::lock_guard<std::mutex> lock(listen_mu_);
    listen_channel_ = std::move(channel);
    on_notify_ = std::move(on_notify);
  }
  listen_wanted_ = wake_fd_ >= 0;
  wake_listener();
}

void Database::wake_listener() {
  if (!listen_wanted_) return;
  std::uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof one) < 0) {
    // EAGAIN: the counter is full, so the wake is pending anyway
  }
}

bool Database::wait_listening(Shard& sh) {
  if (!listen_wanted_ || !sh.conn || PQstatus(sh.conn) != CONNECTION_OK) return false;
  if (!sh.listening && !sh.listen_refused) {
    std::string channel;
    {
      std::lock_guard<std::mutex> lock(listen_mu_);
      channel = listen_channel_;
    }
    // Blocking, as the connection's other set-up statements are.
    PQsetnonblocking(sh.conn, 0);
    PGresult* r = PQexec(sh.conn, ("LISTEN " + channel).c_str());
    PQsetnonblocking(sh.conn, 1);
    sh.listening = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!sh.listening) {
      sh.listen_refused = true;
      CRAWLER_LOG(debug) << "database: LISTEN " << channel << " refused (" << one_line(PQresultErrorMessage(r), 200)
                         << "); new work is found by polling";
    }
    PQclear(r);
    if (!sh.listening) return false;
  }
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    if (stopping_ || !sh.queue.empty()) return true;
  }
  pollfd fds[2] = {{PQsocket(sh.conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  int pr = ::poll(fds, 2, 200);
  if (pr > 0 && (fds[1].revents & POLLIN)) {
    std::uint64_t n = 0;
    if (::read(wake_fd_, &n, sizeof n) < 0) {
      // EAGAIN: another read took it
    }
  }
  // A lost connection shows as CONNECTION_BAD to the next batch, which
  // reconnects (and listens again).
  if (pr > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) PQconsumeInput(sh.conn);
  deliver_notifications(sh);
  return true;
}

void Database::deliver_notifications(Shard& sh) {
  if (!sh.listening || !sh.conn) return;
  bool any = false;
  while (PGnotify* n = PQnotifies(sh.conn)) {
    any = true;
    PQfreemem(n);
  }
  if (!any) return;
  std::function<void()> f;
  {
    std::lock_guard<std::mutex> lock(listen_mu_);
    f = on_notify_;
  }
  if (f) boost::asio::post(io_, std::move(f));
}

std::string Database::server() const {
  std::lock_guard<std::mutex> lock(shards_[0]->mu);
  return shards_[0]->server;
}

bool Database::read_only() const {
  std::lock_guard<std::mutex> lock(shards_[0]->mu);
  return shards_[0]->read_only;
}

void Database::call(Stmt s, std::vector<Param> params, Callback done, bool idempotent, std::uint64_t key,
                    std::int64_t lock_order) {
  // Ids are spread out by the node-partitioned generator (steps of 1024):
  // mix the bits before choosing a connection.
  std::uint64_t h = key * 0x9E3779B97F4A7C15ull;
  Shard& sh = key == 0 || shards_.size() == 1 ? *shards_[0] : *shards_[1 + (h >> 32) % (shards_.size() - 1)];
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.queue.push_back(Op{s, std::move(params), std::move(done), idempotent, lock_order});
    ++pending_;
  }
  sh.cv.notify_one();
  if (&sh == shards_[0].get()) wake_listener();
}

void Database::answer(Callback done, DbResult&& r) {
  boost::asio::post(io_, [cb = std::move(done), res = std::move(r)]() mutable { cb(std::move(res)); });
}

bool Database::stop_now() const {
  return stopping_ && Clock::now().time_since_epoch().count() >= stop_deadline_ns_;
}

void Database::stop(std::chrono::milliseconds wait) {
  if (stopped_.exchange(true)) return;
  stop_deadline_ns_ = (Clock::now() + wait).time_since_epoch().count();
  stopping_ = true;
  for (auto& sh : shards_) {
    { std::lock_guard<std::mutex> lock(sh->mu); }
    sh->cv.notify_all();
  }
  wake_listener();
  for (auto& sh : shards_)
    if (sh->thread.joinable()) sh->thread.join();
  // No thread uses them any more: each server session ends now (Terminate
  // sent), not whenever the process gets round to its destructors.
  for (auto& sh : shards_) disconnect(*sh);
}

void Database::deliver(Op& op, DbResult&& r) {
  --pending_;
  if (op.done)
    boost::asio::post(io_, [cb = std::move(op.done), res = std::move(r)]() mutable { cb(std::move(res)); });
}

void Database::disconnect(Shard& sh) {
  if (sh.conn) PQfinish(sh.conn);
  sh.conn = nullptr;
  sh.connected = false;
  sh.listening = sh.listen_refused = false;  // a new connection listens afresh
  if (sh.index == 0) connected_ = false;
}

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// The connection's keywords: the user's conninfo, with libpq asked to pick
// the writable host of a multi-host conninfo and to give up on a host after
// 10 s, unless the conninfo says otherwise; `session_attrs`, when given,
// replaces the conninfo's target_session_attrs (a later keyword wins). The
// error when the conninfo cannot be parsed.
std::variant<Params, std::string> connection_params(const std::string& conninfo, const char* session_attrs) {
  bool has_tsa = false, has_timeout = false;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    std::string why = "invalid --db conninfo: " + std::string(err ? err : "it cannot be parsed");
    PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return why;
  }
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    if (std::string(o->keyword) == "target_session_attrs") has_tsa = true;
    if (std::string(o->keyword) == "connect_timeout") has_timeout = true;
  }
  PQconninfoFree(opts);
  Params params = {{"dbname", conninfo}, {"application_name", "crawler-worker"}};
  if (session_attrs) params.emplace_back("target_session_attrs", session_attrs);
  else if (!has_tsa) params.emplace_back("target_session_attrs", "read-write");
  if (!has_timeout) params.emplace_back("connect_timeout", "10");
  return params;
}

}  // namespace

std::optional<ConnectFailure> Database::open_with(Shard& sh, const char* session_attrs) {
  auto params = connection_params(conninfo_, session_attrs);
  if (auto* why = std::get_if<std::string>(&params)) return ConnectFailure{true, *why};
  std::vector<const char*> keys, vals;
  for (const auto& [k, v] : std::get<Params>(params)) {
    keys.push_back(k.c_str());
    vals.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  sh.conn = PQconnectdbParams(keys.data(), vals.data(), 1);
  if (PQstatus(sh.conn) == CONNECTION_OK) return std::nullopt;
  return classify_connect_failure(PQerrorMessage(sh.conn));
}

std::optional<ConnectFailure> Database::open(Shard& sh) {
  if (mode_ == DbMode::kWriter) return open_with(sh, nullptr);
  // A reader takes the primary when one answers, else any node.
  auto failed = open_with(sh, "read-write");
  if (!failed) return std::nullopt;
  disconnect(sh);
  return open_with(sh, "any");
}

std::optional<ConnectFailure> Database::read_schema(Shard& sh) {
  PGresult* r = PQexec(sh.conn,
                       "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
                       "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                       "WHERE e.extname = 'crawler_ha'");
  std::optional<ConnectFailure> failed;
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    failed = ConnectFailure{false, std::string("finding the crawler_ha extension: ") + PQerrorMessage(sh.conn)};
  else if (PQntuples(r) != 1)
    failed = ConnectFailure{true, "the crawler_ha extension is not installed in database \"" +
                                      std::string(PQdb(sh.conn)) + "\" on " + PQhost(sh.conn) + ":" +
                                      PQport(sh.conn)};
  else
    sh.schema = PQgetvalue(r, 0, 0);
  PQclear(r);
  return failed;
}

std::optional<ConnectFailure> Database::prepare_statements(Shard& sh) {
  // Every statement prepared in one round trip: a pipeline with a sync point
  // after each, so that a missing optional one aborts nothing else.
  bool prepared = PQenterPipelineMode(sh.conn) == 1;
  for (const auto& s : kStatements) {
    if (!prepared) break;
    prepared = PQsendPrepare(sh.conn, s.name, format_sql(s.sql, sh.schema).c_str(), 0, nullptr) == 1 &&
               PQpipelineSync(sh.conn) == 1;
  }
  std::optional<ConnectFailure> failed;
  for (const auto& s : kStatements) {
    if (!prepared) break;
    PGresult* p = PQgetResult(sh.conn);
    bool ok = PQresultStatus(p) == PGRES_COMMAND_OK;
    if (!ok && !s.optional) {
      // A function the extension lacks (an older version) or may not be
      // called (42xxx) stays so; anything else may be the connection.
      const char* code = PQresultErrorField(p, PG_DIAG_SQLSTATE);
      failed = ConnectFailure{code && std::string(code).rfind("42", 0) == 0,
                              std::string("cannot prepare ") + s.name + ": " + PQresultErrorMessage(p)};
      prepared = false;
    }
    PQclear(p);
    // the end of this statement's result, then its sync point
    while (prepared && (p = PQgetResult(sh.conn)) != nullptr) PQclear(p);
    p = PQgetResult(sh.conn);
    if (PQresultStatus(p) != PGRES_PIPELINE_SYNC) prepared = false;
    PQclear(p);
  }
  if (prepared && PQexitPipelineMode(sh.conn) == 1) return std::nullopt;
  if (failed) return failed;
  return ConnectFailure{false, std::string("preparing statements: ") + PQerrorMessage(sh.conn)};
}

std::optional<ConnectFailure> Database::connect(Shard& sh) {
  disconnect(sh);
  // How long each step took, in the debug log: on a crawl that lasts a
  // fraction of a second the connection is a large part of its start.
  const auto t0 = Clock::now();
  std::optional<ConnectFailure> failed = open(sh);
  const auto t1 = Clock::now();
  if (!failed) failed = read_schema(sh);
  const auto t2 = Clock::now();
  if (!failed) failed = prepare_statements(sh);
  const auto t3 = Clock::now();
  if (failed) {
    disconnect(sh);
    failed_attempt(*failed);
    return failed;
  }
  PQsetnonblocking(sh.conn, 1);
  std::string where = std::string(PQhost(sh.conn)) + ":" + PQport(sh.conn);
  auto on = [&](const char* parameter) {
    const char* v = PQparameterStatus(sh.conn, parameter);
    return v && std::string(v) == "on";
  };
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.server = where;
    sh.read_only = on("default_transaction_read_only") || on("in_hot_standby");
  }
  sh.connected = true;
  if (sh.index == 0) connected_ = true;
  ever_connected_ = true;
  connected_after_wait(sh);
  if (mode_ == DbMode::kReader) {
    CRAWLER_LOG(debug) << "database: connected to " << where << " (schema " << sh.schema << ")";
  } else {
    CRAWLER_LOG(info) << "database: connection " << sh.index + 1 << " to " << where << " (schema " << sh.schema
                      << ")";
  }
  auto ms = [](Clock::duration d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 100) / 10;
  };
  CRAWLER_LOG(debug) << "database: connection " << sh.index + 1 << " ready in " << ms(t3 - t0)
                     << " ms (server session " << ms(t1 - t0) << " ms, schema " << ms(t2 - t1)
                     << " ms, statements prepared " << ms(t3 - t2) << " ms)";
  return std::nullopt;
}

void Database::failed_attempt(const ConnectFailure& f) {
  if (f.permanent && !ever_connected_) {
    // Nothing worked yet and nothing will: the caller ends the program
    // with this reason instead of waiting for a timeout.
    if (!unusable_.exchange(true)) {
      CRAWLER_LOG(debug) << "database: cannot connect, and retrying cannot fix it: " << f.reason;
      boost::asio::post(io_, [this, why = f.reason] {
        if (on_unusable_) on_unusable_(why);
      });
    }
    return;
  }
  std::lock_guard<std::mutex> lock(wait_mu_);
  auto now = Clock::now();
  if (!waiting_) {
    waiting_ = true;
    wait_since_ = now;
  } else if (f.reason == wait_reason_ &&
             now - wait_logged_ < (now - wait_since_ < kWaitLogLater ? kWaitLogEarly : kWaitLogLater)) {
    return;
  }
  wait_reason_ = f.reason;
  wait_logged_ = now;
  auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - wait_since_).count();
  if (f.permanent) {
    // It worked before: someone changed a setting (a password, pg_hba.conf)
    // and can change it back; the results in memory wait for that.
    CRAWLER_LOG(error) << "database: cannot connect (for " << waited << " s), and retrying alone cannot fix it: "
                       << f.reason << "; trying again until it is fixed";
  } else {
    CRAWLER_LOG(warn) << "database: waiting for a database that may come back (waited " << waited
                      << " s): " << f.reason;
  }
}

void Database::connected_after_wait(const Shard& sh) {
  std::lock_guard<std::mutex> lock(wait_mu_);
  if (!waiting_) return;
  waiting_ = false;
  wait_reason_.clear();
  auto waited = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - wait_since_).count();
  if (mode_ == DbMode::kReader) {
    CRAWLER_LOG(debug) << "database: connected after waiting " << waited << " s";
  } else {
    CRAWLER_LOG(info) << "database: connection " << sh.index + 1 << " made after waiting " << waited
                      << " s for the database";
  }
}

std::size_t Database::read_answers(Shard& sh, std::vector<std::optional<DbResult>>& results, bool* lost) {
  std::size_t answered = 0;
  bool awaiting_sync = false;
  auto deadline = Clock::now() + kReplyTimeout;
  while (answered < results.size()) {
    int f = PQflush(sh.conn);
    if (f < 0) {
      *lost = true;
      break;
    }
    pollfd p{PQsocket(sh.conn), static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
    int pr = ::poll(&p, 1, 1000);
    if (pr < 0 && errno != EINTR) {
      *lost = true;
      break;
    }
    if (Clock::now() > deadline) {
      CRAWLER_LOG(warn) << "database: no reply for " << kReplyTimeout.count() << " s";
      *lost = true;
      break;
    }
    if (pr > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && PQconsumeInput(sh.conn) != 1) {
      *lost = true;
      break;
    }
    while (answered < results.size() && !PQisBusy(sh.conn)) {
      PGresult* r = PQgetResult(sh.conn);
      if (!r) {
        awaiting_sync = true;  // end of this call's results
        continue;
      }
      if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (!results[answered]) results[answered] = DbResult{false, "08006", "no result", {}, {}};
        ++answered;
        awaiting_sync = false;
        continue;
      }
      if (!awaiting_sync && !results[answered]) results[answered] = to_result(r);
      PQclear(r);
    }
    if (PQstatus(sh.conn) == CONNECTION_BAD) {
      *lost = true;
      break;
    }
  }
  return answered;
}

std::size_t Database::deliver_answers(Shard& sh, std::vector<Op>& batch, std::vector<std::optional<DbResult>>& results,
                                      std::size_t answered, bool* lost) {
  // Deliver what was answered, except the refusals that a reconnect cures
  // and the deadlocks and serialization failures that a second try cures
  // (every call is idempotent).
  std::size_t done = 0;
  std::vector<Op> again;
  for (; done < answered; ++done) {
    DbResult& r = *results[done];
    if (!r.ok && must_reconnect(r.sqlstate)) {
      CRAWLER_LOG(warn) << "database: " << r.error << " [" << r.sqlstate << "]; reconnecting";
      *lost = true;
      break;
    }
    if (!r.ok && (r.sqlstate == "40P01" || r.sqlstate == "40001") && batch[done].idempotent) {
      CRAWLER_LOG(debug) << "database: " << r.error << "; trying again";
      again.push_back(std::move(batch[done]));
      continue;
    }
    deliver(batch[done], std::move(r));
  }
  if (!again.empty()) {
    std::lock_guard<std::mutex> lock(sh.mu);
    for (auto it = again.rbegin(); it != again.rend(); ++it) sh.queue.push_front(std::move(*it));
  }
  return done;
}

std::size_t Database::execute(Shard& sh, std::vector<Op>& batch, bool* lost) {
  *lost = false;
  std::vector<std::vector<const char*>> values(batch.size());
  if (PQenterPipelineMode(sh.conn) != 1) {
    *lost = true;
    return 0;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    for (const auto& p : batch[i].params) values[i].push_back(p ? p->c_str() : nullptr);
    const char* name = kStatements[static_cast<int>(batch[i].stmt)].name;
    // Each call is followed by a sync: its own implicit transaction.
    if (PQsendQueryPrepared(sh.conn, name, static_cast<int>(values[i].size()), values[i].data(),
                            nullptr, nullptr, 0) != 1 ||
        PQpipelineSync(sh.conn) != 1) {
      *lost = true;
      return 0;
    }
  }
  std::vector<std::optional<DbResult>> results(batch.size());
  std::size_t answered = read_answers(sh, results, lost);
  if (!*lost) PQexitPipelineMode(sh.conn);
  return deliver_answers(sh, batch, results, answered, lost);
}

Database::BatchOutcome Database::execute_transaction(Shard& sh, std::vector<Op>& batch) {
  // BEGIN, every call, COMMIT, one sync: one commit (one WAL flush, one
  // visit to hot rows) for the whole batch.
  std::vector<std::vector<const char*>> values(batch.size());
  if (PQenterPipelineMode(sh.conn) != 1) return BatchOutcome::lost;
  bool sent = PQsendQueryParams(sh.conn, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  for (std::size_t i = 0; sent && i < batch.size(); ++i) {
    for (const auto& p : batch[i].params) values[i].push_back(p ? p->c_str() : nullptr);
    const char* name = kStatements[static_cast<int>(batch[i].stmt)].name;
    sent = PQsendQueryPrepared(sh.conn, name, static_cast<int>(values[i].size()), values[i].data(),
                               nullptr, nullptr, 0) == 1;
  }
  sent = sent && PQsendQueryParams(sh.conn, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
         PQpipelineSync(sh.conn) == 1;
  if (!sent) return BatchOutcome::lost;
  const std::size_t commands = batch.size() + 2;
  std::vector<std::optional<DbResult>> results(commands);
  std::size_t at = 0;
  bool synced = false;
  auto deadline = Clock::now() + kReplyTimeout;
  while (!synced) {
    int f = PQflush(sh.conn);
    if (f < 0) return BatchOutcome::lost;
    pollfd p{PQsocket(sh.conn), static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
    int pr = ::poll(&p, 1, 1000);
    if ((pr < 0 && errno != EINTR) || Clock::now() > deadline) return BatchOutcome::lost;
    if (pr > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && PQconsumeInput(sh.conn) != 1)
      return BatchOutcome::lost;
    while (!synced && !PQisBusy(sh.conn)) {
      PGresult* r = PQgetResult(sh.conn);
      if (!r) {
        ++at;  // the end of one command's results
        continue;
      }
      if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) synced = true;
      else if (at < commands && !results[at]) results[at] = to_result(r);
      PQclear(r);
    }
    if (PQstatus(sh.conn) == CONNECTION_BAD) return BatchOutcome::lost;
  }
  PQexitPipelineMode(sh.conn);
  for (std::size_t c = 0; c < commands; ++c) {
    if (!results[c]) return BatchOutcome::lost;
    const DbResult& r = *results[c];
    if (r.ok) continue;
    if (must_reconnect(r.sqlstate) && r.error != "pipeline aborted") {
      CRAWLER_LOG(warn) << "database: " << r.error << " [" << r.sqlstate << "]; reconnecting";
      return BatchOutcome::lost;
    }
    if (r.error != "pipeline aborted") return BatchOutcome::statement_failed;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) deliver(batch[i], std::move(*results[i + 1]));
  return BatchOutcome::committed;
}

bool Database::take_batch(Shard& sh, std::vector<Op>& batch) {
  bool waited = sh.index == 0 && wait_listening(sh);
  std::unique_lock<std::mutex> lock(sh.mu);
  if (!waited)
    sh.cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_ || !sh.queue.empty(); });
  if (stopping_ && (sh.queue.empty() || stop_now())) {
    // Unanswered calls at the deadline are dropped: their leases expire.
    pending_ -= sh.queue.size();
    sh.queue.clear();
    return false;
  }
  // On connection 0 a run of links and claims is one transaction (one
  // commit for a page's links and the claim behind them; for the crawl
  // command's start, crawl_start and the claim behind it: groupable());
  // anything else there goes on its own.
  bool group = !sh.queue.empty() && (sh.index > 0 || groupable(sh.queue.front().stmt));
  while (!sh.queue.empty() && batch.size() < kMaxBatch &&
         (sh.index > 0 || (group && groupable(sh.queue.front().stmt)) || batch.empty())) {
    batch.push_back(std::move(sh.queue.front()));
    sh.queue.pop_front();
  }
  return true;
}

bool Database::ensure_connected(Shard& sh, std::vector<Op>& batch, std::chrono::milliseconds& backoff) {
  if (sh.conn && PQstatus(sh.conn) == CONNECTION_OK) return true;
  // Once unusable, no connection is tried again: the caller is ending the
  // program and the calls wait for the stop.
  if (unusable_ || connect(sh)) {
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) sh.queue.push_front(std::move(*it));
    }
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.cv.wait_for(lock, backoff, [&] { return stop_now(); });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    return false;
  }
  if (sh.connects++ > 0) {
    ++reconnects_;
    CRAWLER_LOG(info) << "database: reconnected; resending " << batch.size() << " call(s)";
  }
  backoff = std::chrono::milliseconds(200);
  return true;
}

bool Database::send_batch(Shard& sh, std::vector<Op>& batch, std::size_t* done) {
  bool lost = false;
  *done = 0;
  // Results are batched into one transaction, and so are links with the
  // claim behind them; renewals, releases and status calls are not: they
  // wait for item rows that a results batch holds while it waits for a
  // session row.
  BatchOutcome outcome = batch.size() > 1 && (sh.index > 0 || groupable(batch.front().stmt))
                             ? execute_transaction(sh, batch)
                             : BatchOutcome::statement_failed;
  if (outcome == BatchOutcome::committed) return true;
  if (outcome == BatchOutcome::lost) return false;
  // One call failed and the batch is rolled back: each on its own now, so
  // every call gets its own answer. An explicit transaction outlives the
  // sync after an error: end it first.
  if (PQtransactionStatus(sh.conn) != PQTRANS_IDLE) {
    PQsetnonblocking(sh.conn, 0);
    PGresult* rb = PQexec(sh.conn, "ROLLBACK");
    PQclear(rb);
    PQsetnonblocking(sh.conn, 1);
  }
  if (PQstatus(sh.conn) != CONNECTION_OK || PQtransactionStatus(sh.conn) != PQTRANS_IDLE) return false;
  *done = execute(sh, batch, &lost);
  return !lost;
}

void Database::requeue_after_loss(Shard& sh, std::vector<Op>& batch, std::size_t done) {
  disconnect(sh);
  std::vector<Op> again;
  for (std::size_t i = done; i < batch.size(); ++i) {
    if (batch[i].idempotent) {
      again.push_back(std::move(batch[i]));
    } else {
      deliver(batch[i], DbResult{false, "08006",
                                 "the database connection was lost; the outcome is unknown", {}, {}});
    }
  }
  std::lock_guard<std::mutex> lock(sh.mu);
  for (auto it = again.rbegin(); it != again.rend(); ++it) sh.queue.push_front(std::move(*it));
}

void Database::run(Shard& sh) {
  auto backoff = std::chrono::milliseconds(200);
  // Connect at once, not when the first call comes: that call is usually on
  // the crawl's critical path.
  if (!connect(sh)) sh.connects = 1;
  for (;;) {
    std::vector<Op> batch;
    if (!take_batch(sh, batch)) break;
    if (batch.empty()) continue;
    // Row locks on sessions in one order in every transaction: no deadlock
    // between a batch of results and a batch of links. Calls about one item
    // keep their order (same session). Claims go last: they see the links.
    std::stable_sort(batch.begin(), batch.end(), [](const Op& a, const Op& b) {
      return std::make_pair(a.stmt == Stmt::crawl_claim, a.lock_order) <
             std::make_pair(b.stmt == Stmt::crawl_claim, b.lock_order);
    });
    if (!ensure_connected(sh, batch, backoff)) continue;
    std::size_t done = 0;
    if (!send_batch(sh, batch, &done)) requeue_after_loss(sh, batch, done);
    else deliver_notifications(sh);  // read with the batch's answers
  }
}

}  // namespace crawler
