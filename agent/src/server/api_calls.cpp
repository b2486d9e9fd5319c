#include "api_calls.hpp"

#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <limits>

#include "await_callback.hpp"
#include "crawler/agent/server/api_tokens.hpp"
#include "request_body.hpp"
#include "responses.hpp"

namespace crawler::agent {

awaitable<bool> authorize(Exchange& x, ServerState& state, ApiAccess access) {
  if (access == ApiAccess::open) co_return true;
  if (access == ApiAccess::read && !state.config.read_token_required) co_return true;
  const auto& req = x.request();
  auto header = req.find(http::field::authorization);
  std::string_view value = header == req.end() ? std::string_view() : std_view(header->value());
  std::optional<TokenScope> scope;
  if (auto g = state.api_tokens ? state.api_tokens->grant(value) : std::nullopt) scope = g->scope;
  else if (header != req.end() && state.token.accepts(value)) scope = TokenScope::read;
  const TokenScope needed = access == ApiAccess::admin     ? TokenScope::admin
                            : access == ApiAccess::operate ? TokenScope::operate
                                                           : TokenScope::read;
  if (!scope) {
    auto res = error_response(http::status::unauthorized, "unauthorized",
                              header == req.end() ? "an Authorization: Bearer token is required"
                                                  : "the bearer token is not accepted");
    res.set(http::field::www_authenticate, "Bearer");
    co_await x.respond(std::move(res));
    co_return false;
  }
  if (*scope < needed) {
    auto res = error_response(http::status::forbidden, "insufficient_scope",
                              std::string("this route needs a token of scope ") + token_scope_name(needed) +
                                  "; this one has " + token_scope_name(*scope));
    res.set(http::field::www_authenticate,
            std::string("Bearer error=\"insufficient_scope\", scope=\"") + token_scope_name(needed) + "\"");
    co_await x.respond(std::move(res));
    co_return false;
  }
  co_return true;
}

DbRole db_role_for(ApiAccess access) {
  switch (access) {
    case ApiAccess::open:
      return DbRole::agent;
    case ApiAccess::read:
      return DbRole::reader;
    case ApiAccess::operate:
      return DbRole::writer;
    case ApiAccess::admin:
      return DbRole::admin;
  }
  return DbRole::reader;
}

awaitable<DbResult> sql_call(ServerState& state, DbRole role, std::string sql, std::vector<Param> params) {
  if (!state.sql) {
    DbResult none;
    none.ok = false;
    none.sqlstate = "08006";
    none.error = "this port has no database session";
    co_return none;
  }
  // One value: the awaitable resumes with it, not with a tuple.
  DbResult result = co_await await_callback<DbResult>(
      [&](auto done) { state.sql->call(role, std::move(sql), std::move(params), std::move(done)); });
  co_return result;
}

awaitable<std::optional<std::vector<Param>>> sql_row(Exchange& x, ServerState& state, DbRole role, std::string sql,
                                                     std::vector<Param> params, const char* what) {
  DbResult r = co_await sql_call(state, role, std::move(sql), std::move(params));
  if (r.ok && r.rows.size() == 1) co_return std::move(r.rows[0]);
  if (r.ok) {
    r.ok = false;
    r.error = std::string(what) + " returned " + std::to_string(r.rows.size()) + " rows";
    r.sqlstate = "XX000";
  }
  co_await x.respond(sql_failure(r));
  co_return std::nullopt;
}

awaitable<void> answer_json_text(Exchange& x, ServerState& state, DbRole role, std::string sql,
                                 std::vector<Param> params, const char* member) {
  auto row = co_await sql_row(x, state, role, std::move(sql), std::move(params), "the call");
  if (!row) co_return;
  nlohmann::json body = nlohmann::json::object();
  body[member] = parse_or_null((*row)[0]);
  co_await x.respond(json_response(http::status::ok, body));
}

http::response<http::string_body> sql_failure(const DbResult& r) {
  nlohmann::json extra = {{"sqlstate", r.sqlstate}};
  if (r.sqlstate.rfind("22", 0) == 0)
    return error_response(http::status::bad_request, "bad_parameter", r.error, extra);
  if (r.sqlstate == "P0002") return error_response(http::status::not_found, "not_found", r.error, extra);
  // The extension refusing an action in this state (no peer, a lagging
  // target, an unknown node): the caller's request, not this node, is at fault.
  if (r.sqlstate == "55000" || r.sqlstate == "42704" || r.sqlstate == "57014")
    return error_response(http::status::conflict, "refused", r.error, extra);
  // A write sent to a node that may not write (a standby, a fenced node):
  // another node answers it; a load balancer sends writes by /primary.
  if (r.sqlstate == "25006") {
    auto res = error_response(http::status::service_unavailable, "read_only_node", r.error, extra);
    res.set(http::field::retry_after, "1");
    return res;
  }
  bool unavailable = r.sqlstate.rfind("08", 0) == 0 || r.sqlstate == "57P01" || r.sqlstate == "53300" ||
                     r.sqlstate == "55P03";
  return error_response(http::status::service_unavailable, unavailable ? "database_unavailable" : "database_error",
                        r.error, extra);
}

nlohmann::json parse_or_null(const Param& text) {
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

std::optional<long long> whole_number(const std::string& text, long long low, long long high) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  unsigned long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned long long>(c - '0');
  }
  // 19 digits fit in 64 unsigned bits; past LLONG_MAX is out of range.
  if (v > static_cast<unsigned long long>(std::numeric_limits<long long>::max())) return std::nullopt;
  auto s = static_cast<long long>(v);
  if (s < low || s > high) return std::nullopt;
  return s;
}

awaitable<std::optional<nlohmann::json>> json_object_body(Exchange& x, std::uint64_t limit,
                                                          const std::vector<std::string>& members) {
  auto text = co_await read_small_body(x, limit, "body_too_large", "this route's body");
  if (!text) co_return std::nullopt;
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) co_return nlohmann::json::object();
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
  std::string why;
  if (doc.is_discarded() || !doc.is_object()) {
    why = "the body must be a JSON object";
  } else {
    for (const auto& [key, value] : doc.items())
      if (std::find(members.begin(), members.end(), key) == members.end()) {
        // Cut to 64 bytes, maybe inside a character: replaced, not thrown.
        why = "unknown member " +
              nlohmann::json(key.substr(0, 64)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
              "; this route takes " +
              (members.empty() ? std::string("no member") : nlohmann::json(members).dump());
        break;
      }
  }
  if (!why.empty()) {
    co_await x.respond(error_response(http::status::bad_request, "bad_body", why));
    co_return std::nullopt;
  }
  co_return doc;
}

namespace {

// GET /api/events: at most this many events a page.
constexpr long kMaxEventsPage = 1000;

}  // namespace

awaitable<void> answer_events(Exchange& x, ServerState& state, const std::map<std::string, std::string>& query) {
  long long since = 0, limit = 100;
  // Each answer is built before its co_await: gcc 12 destroys some
  // temporaries of a co_await expression twice.
  if (auto it = query.find("since"); it != query.end()) {
    auto v = whole_number(it->second, 0, std::numeric_limits<long long>::max());
    if (!v) {
      auto res = error_response(http::status::bad_request, "bad_parameter",
                                "since is the id of the last event seen: a whole number, 0 or more");
      co_await x.respond(std::move(res));
      co_return;
    }
    since = *v;
  }
  if (auto it = query.find("limit"); it != query.end()) {
    auto v = whole_number(it->second, 1, kMaxEventsPage);
    if (!v) {
      auto res = error_response(http::status::bad_request, "bad_parameter",
                                "limit is a whole number from 1 to " + std::to_string(kMaxEventsPage));
      co_await x.respond(std::move(res));
      co_return;
    }
    limit = *v;
  }
  std::vector<Param> params;
  params.emplace_back(std::to_string(since));
  params.emplace_back(std::to_string(limit));
  std::string sql =
      "SELECT coalesce(pg_catalog.json_agg(e ORDER BY e.id), '[]')::text, pg_catalog.max(e.id) FROM "
      "(SELECT * FROM @extschema@.ha_events WHERE id > $1::bigint ORDER BY id LIMIT $2::integer) e";
  auto row = co_await sql_row(x, state, DbRole::reader, std::move(sql), std::move(params), "the events query");
  if (!row) co_return;
  nlohmann::json body = nlohmann::json::object();
  body["events"] = parse_or_null((*row)[0]);
  // The next page starts after the last event of this one.
  body["next_since"] = (*row)[1] ? std::stoll(*(*row)[1]) : since;
  auto res = json_response(http::status::ok, body);
  co_await x.respond(std::move(res));
}

Param member_param(const nlohmann::json& doc, const char* key, const char* type, std::string* why) {
  if (!doc.contains(key) || doc[key].is_null()) return std::nullopt;
  const auto& v = doc[key];
  if (std::string(type) == "string" && v.is_string()) return v.get<std::string>();
  if (std::string(type) == "boolean" && v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  *why = std::string(key) + " must be a " + type;
  return std::nullopt;
}

}  // namespace crawler::agent
