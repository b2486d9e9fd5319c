#include "crawler/agent/node_db.hpp"

#include <algorithm>

#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler::agent {

NodeDb::NodeDb(std::string conninfo, std::string name, std::string part, std::string extra_options,
               int connect_timeout_s)
    : conninfo_(std::move(conninfo)),
      name_(std::move(name)),
      part_(std::move(part)),
      extra_options_(std::move(extra_options)),
      connect_timeout_s_(connect_timeout_s) {}

NodeDb::~NodeDb() { drop(); }

void NodeDb::drop() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

bool NodeDb::open(std::string* error) {
  // expand_dbname: the configured conninfo comes first and the keywords
  // after it override its own. Read-write and locally committed: the blob
  // tables are per node (a standby keeps its own, and a synchronous standby
  // must never be waited for by bookkeeping). READ COMMITTED because
  // blob_removed() must see rows committed while it waited for a lock.
  const char* keys[] = {"dbname", "options", "application_name", "connect_timeout", nullptr};
  const std::string options =
      "-c default_transaction_read_only=off -c synchronous_commit=local "
      "-c default_transaction_isolation=read\\ committed" +
      (extra_options_.empty() ? std::string() : " " + extra_options_);
  const std::string timeout = std::to_string(connect_timeout_s_);
  const char* values[] = {conninfo_.c_str(), options.c_str(), "crawler-ha-agent", timeout.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    *error = conn_ ? PQerrorMessage(conn_) : "out of memory";
    drop();
    return false;
  }
  DbResult r = call(
      "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n "
      "ON n.oid = e.extnamespace WHERE e.extname = 'crawler_ha'");
  if (!r.ok || r.rows.empty() || !r.rows[0][0]) {
    *error = r.ok ? "the crawler_ha extension is not installed in this database" : r.error;
    drop();
    return false;
  }
  char* quoted = PQescapeIdentifier(conn_, r.rows[0][0]->c_str(), r.rows[0][0]->size());
  if (!quoted) {
    *error = PQerrorMessage(conn_);
    drop();
    return false;
  }
  schema_ = quoted;
  PQfreemem(quoted);
  return true;
}

std::string NodeDb::with_schema(const std::string& sql) const {
  static const std::string kToken = "@extschema@";
  std::string out;
  std::size_t from = 0;
  for (std::size_t at; (at = sql.find(kToken, from)) != std::string::npos; from = at + kToken.size())
    out.append(sql, from, at - from).append(schema_);
  out.append(sql, from, std::string::npos);
  return out;
}

bool NodeDb::try_connect() {
  if (conn_) return true;
  std::string error;
  if (open(&error)) {
    CRAWLER_LOG(info) << part_ << " (" << name_ << "): connected to the node's database"
                      << (outage_logged_ ? " again" : "") << ", extension schema " << schema_;
    backoff_ = std::chrono::milliseconds(500);
    outage_logged_ = false;
    last_error_.clear();
    return true;
  }
  while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
  last_error_ = one_line(error);
  if (!outage_logged_)
    CRAWLER_LOG(warn) << part_ << " (" << name_ << "): cannot use the node's database: " << one_line(error)
                      << "; trying again with back-off";
  else
    CRAWLER_LOG(debug) << part_ << " (" << name_ << "): still no database: " << one_line(error);
  outage_logged_ = true;
  return false;
}

bool NodeDb::ensure(Stopper& stop) {
  while (!try_connect()) {
    if (!stop.sleep_for(backoff_)) return false;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30000));
  }
  return !stop.stopped();
}

DbResult NodeDb::call(const std::string& sql, const std::vector<Param>& params) {
  DbResult out;
  if (!conn_) {
    out.sqlstate = "08006";
    out.error = "not connected to the node's database";
    return out;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    out.ok = true;
    int nf = PQnfields(res), nt = PQntuples(res);
    for (int c = 0; c < nf; ++c) out.columns.emplace_back(PQfname(res, c));
    out.rows.resize(static_cast<std::size_t>(nt));
    for (int r = 0; r < nt; ++r)
      for (int c = 0; c < nf; ++c)
        out.rows[r].push_back(PQgetisnull(res, r, c) ? Param() : Param(PQgetvalue(res, r, c)));
  } else {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const char* msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    out.sqlstate = state ? state : "08006";
    out.error = msg ? msg : PQerrorMessage(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      out.sqlstate = "08006";
      CRAWLER_LOG(warn) << part_ << " (" << name_ << "): lost the node's database: "
                        << one_line(PQerrorMessage(conn_));
      outage_logged_ = true;
      if (res) PQclear(res);
      drop();
      return out;
    }
  }
  if (res) PQclear(res);
  return out;
}

}  // namespace crawler::agent
