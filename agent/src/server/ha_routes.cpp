#include "ha_routes.hpp"

#include <array>
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "await_callback.hpp"
#include "crawler/agent/server/api_tokens.hpp"
#include "request_body.hpp"
#include "crawler/agent/server/query_string.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

enum class HaRouteKind { check, api_health, api_status, sync_status, events, sync_trigger, failover, pause, resume };

// Who may call a route: anyone (the load balancers' checks), a reader (a
// token when read_token_required), an admin token.
enum class HaAccess { open, read, admin };

struct HaRoute {
  std::string_view path;
  HaRouteKind kind;
  HaAccess access;
  bool post;                  // POST (the admin actions); else GET and HEAD (and OPTIONS for checks)
  std::string_view endpoint;  // ha_endpoint_check()'s name of a check
  bool takes_lag;             // ?lag= is accepted
};

// Patroni's names for the checks, so that HAProxy configurations written
// for it work; the original specification's names for the rest.
constexpr std::array<HaRoute, 13> kHaRoutes{{
    {"/primary", HaRouteKind::check, HaAccess::open, false, "primary", false},
    {"/read-write", HaRouteKind::check, HaAccess::open, false, "read-write", false},
    {"/replica", HaRouteKind::check, HaAccess::open, false, "replica", true},
    {"/read-only", HaRouteKind::check, HaAccess::open, false, "read-only", true},
    {"/health", HaRouteKind::check, HaAccess::open, false, "health", false},
    {"/api/health", HaRouteKind::api_health, HaAccess::read, false, "", false},
    {"/api/status", HaRouteKind::api_status, HaAccess::read, false, "", false},
    {"/api/sync-status", HaRouteKind::sync_status, HaAccess::read, false, "", false},
    {"/api/events", HaRouteKind::events, HaAccess::read, false, "", false},
    {"/api/sync/trigger", HaRouteKind::sync_trigger, HaAccess::admin, true, "", false},
    {"/api/failover", HaRouteKind::failover, HaAccess::admin, true, "", false},
    {"/api/pause", HaRouteKind::pause, HaAccess::admin, true, "", false},
    {"/api/resume", HaRouteKind::resume, HaAccess::admin, true, "", false},
}};

// The most an admin action's JSON body may hold.
constexpr std::uint64_t kMaxActionBody = 4096;
// GET /api/events: at most this many events a page.
constexpr long kMaxEventsPage = 1000;

const HaRoute* find_route(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (const HaRoute& r : kHaRoutes)
    if (r.path == path) return &r;
  return nullptr;
}

awaitable<DbResult> sql_call(ServerState& state, DbRole role, std::string sql, std::vector<Param> params) {
  // One value: the awaitable resumes with it, not with a tuple.
  DbResult result = co_await await_callback<DbResult>(
      [&](auto done) { state.sql->call(role, std::move(sql), std::move(params), std::move(done)); });
  co_return result;
}

// A failed SQL call as an answer: the caller's bad input (SQLSTATE class
// 22) is a 400; anything else means this node cannot answer now (503).
http::response<http::string_body> sql_failure(const DbResult& r) {
  nlohmann::json extra = {{"sqlstate", r.sqlstate}};
  if (r.sqlstate.rfind("22", 0) == 0)
    return error_response(http::status::bad_request, "bad_parameter", r.error, extra);
  // The extension refusing an action in this state (no peer, a lagging
  // target, an unknown node): the caller's request, not this node, is at fault.
  if (r.sqlstate == "55000" || r.sqlstate == "42704" || r.sqlstate == "25006" || r.sqlstate == "57014")
    return error_response(http::status::conflict, "refused", r.error, extra);
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

http::response<http::string_body> no_store(http::response<http::string_body> res) {
  res.set(http::field::cache_control, "no-store");
  return res;
}

awaitable<void> answer_check(Exchange& x, ServerState& state, const HaRoute& route,
                             const std::map<std::string, std::string>& query) {
  Param lag;
  if (auto it = query.find("lag"); it != query.end()) lag = it->second;
  // A named vector: gcc 12 fails on a braced list inside a co_await
  // expression ("array used as initializer").
  std::vector<Param> params;
  params.emplace_back(std::string(route.endpoint));
  params.push_back(lag);
  DbResult r = co_await sql_call(state, DbRole::agent,
                                 "SELECT c.ok, c.reason, c.lag_bytes, pg_catalog.row_to_json(h)::text "
                                 "FROM @extschema@.ha_endpoint_check($1, $2) c, @extschema@.ha_health() h",
                                 std::move(params));
  if (!r.ok || r.rows.size() != 1) {
    if (r.ok) r.error = "ha_endpoint_check() returned " + std::to_string(r.rows.size()) + " rows", r.sqlstate = "XX000";
    co_await x.respond(no_store(sql_failure(r)));
    co_return;
  }
  const auto& row = r.rows[0];
  bool ok = row[0] && *row[0] == "t";
  nlohmann::json body = nlohmann::json::object();
  body["check"] = std::string(route.endpoint);
  body["ok"] = ok;
  body["reason"] = row[1] ? nlohmann::json(*row[1]) : nlohmann::json(nullptr);
  body["lag_bytes"] = row[2] ? nlohmann::json(std::stoll(*row[2])) : nlohmann::json(nullptr);
  body["node"] = parse_or_null(row[3]);
  co_await x.respond(no_store(json_response(ok ? http::status::ok : http::status::service_unavailable, body)));
}

awaitable<void> answer_api_health(Exchange& x, ServerState& state) {
  DbResult r = co_await sql_call(
      state, DbRole::reader, "SELECT pg_catalog.row_to_json(h)::text, h.healthy FROM @extschema@.ha_health() h",
      std::vector<Param>());
  if (!r.ok || r.rows.size() != 1) {
    if (r.ok) r.error = "ha_health() returned " + std::to_string(r.rows.size()) + " rows", r.sqlstate = "XX000";
    co_await x.respond(no_store(sql_failure(r)));
    co_return;
  }
  bool healthy = r.rows[0][1] && *r.rows[0][1] == "t";
  co_await x.respond(no_store(json_response(healthy ? http::status::ok : http::status::service_unavailable,
                                            parse_or_null(r.rows[0][0]))));
}

// One JSON text (an aggregate) as {"<member>": value}, or the failure.
awaitable<void> answer_json_text(Exchange& x, ServerState& state, DbRole role, std::string sql,
                                 std::vector<Param> params, const char* member) {
  DbResult r = co_await sql_call(state, role, std::move(sql), std::move(params));
  if (!r.ok || r.rows.size() != 1) {
    if (r.ok) r.error = "the call returned no answer", r.sqlstate = "XX000";
    co_await x.respond(no_store(sql_failure(r)));
    co_return;
  }
  nlohmann::json body = nlohmann::json::object();
  body[member] = parse_or_null(r.rows[0][0]);
  co_await x.respond(no_store(json_response(http::status::ok, body)));
}

// A whole number of a query parameter in [low, high], or nullopt.
std::optional<long> whole_number(const std::string& text, long low, long high) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < low || v > high) return std::nullopt;
  return v;
}

awaitable<void> answer_events(Exchange& x, ServerState& state, const std::map<std::string, std::string>& query) {
  long since = 0, limit = 100;
  if (auto it = query.find("since"); it != query.end()) {
    auto v = whole_number(it->second, 0, std::numeric_limits<long>::max() / 10);
    if (!v) {
      co_await x.respond(error_response(http::status::bad_request, "bad_parameter",
                                        "since is the id of the last event seen: a whole number, 0 or more"));
      co_return;
    }
    since = *v;
  }
  if (auto it = query.find("limit"); it != query.end()) {
    auto v = whole_number(it->second, 1, kMaxEventsPage);
    if (!v) {
      co_await x.respond(error_response(http::status::bad_request, "bad_parameter",
                                        "limit is a whole number from 1 to " + std::to_string(kMaxEventsPage)));
      co_return;
    }
    limit = *v;
  }
  std::vector<Param> params;
  params.emplace_back(std::to_string(since));
  params.emplace_back(std::to_string(limit));
  DbResult r = co_await sql_call(
      state, DbRole::reader,
      "SELECT coalesce(pg_catalog.json_agg(e ORDER BY e.id), '[]')::text, pg_catalog.max(e.id) FROM "
      "(SELECT * FROM @extschema@.ha_events WHERE id > $1::bigint ORDER BY id LIMIT $2::integer) e",
      std::move(params));
  if (!r.ok || r.rows.size() != 1) {
    if (r.ok) r.error = "the events query returned no answer", r.sqlstate = "XX000";
    co_await x.respond(no_store(sql_failure(r)));
    co_return;
  }
  nlohmann::json body = nlohmann::json::object();
  body["events"] = parse_or_null(r.rows[0][0]);
  // The next page starts after the last event of this one.
  body["next_since"] = r.rows[0][1] ? std::stoll(*r.rows[0][1]) : since;
  co_await x.respond(no_store(json_response(http::status::ok, body)));
}

// The JSON object of an admin action's body ({} when there is none), or
// nullopt when the route is done (answered 400 or 413).
awaitable<std::optional<nlohmann::json>> action_body(Exchange& x, const std::vector<std::string>& members) {
  auto text = co_await read_small_body(x, kMaxActionBody, "body_too_large", "an action's body");
  if (!text) co_return std::nullopt;
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) co_return nlohmann::json::object();
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
  std::string why;
  if (doc.is_discarded() || !doc.is_object()) {
    why = "the body must be a JSON object";
  } else {
    for (const auto& [key, value] : doc.items())
      if (std::find(members.begin(), members.end(), key) == members.end()) {
        why = "unknown member " + nlohmann::json(key.substr(0, 64)).dump() + "; this route takes " +
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

// Member `key` of `doc` as a text parameter: absent or null is SQL NULL;
// `type` "string" or "boolean" must match, otherwise *why is set.
Param member_param(const nlohmann::json& doc, const char* key, const char* type, std::string* why) {
  if (!doc.contains(key) || doc[key].is_null()) return std::nullopt;
  const auto& v = doc[key];
  if (std::string(type) == "string" && v.is_string()) return v.get<std::string>();
  if (std::string(type) == "boolean" && v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  *why = std::string(key) + " must be a " + type;
  return std::nullopt;
}

awaitable<void> answer_action(Exchange& x, ServerState& state, HaRouteKind kind) {
  std::vector<std::string> members;
  if (kind == HaRouteKind::failover) members = {"target", "force"};
  if (kind == HaRouteKind::sync_trigger) members = {"mode", "dry_run"};
  auto doc = co_await action_body(x, members);
  if (!doc) co_return;
  std::string why;
  std::vector<Param> params;
  std::string sql;
  switch (kind) {
    case HaRouteKind::failover:
      params.push_back(member_param(*doc, "target", "string", &why));
      params.push_back(member_param(*doc, "force", "boolean", &why));
      sql = "SELECT pg_catalog.to_json(@extschema@.ha_failover($1, coalesce($2::boolean, false)))::text";
      break;
    case HaRouteKind::sync_trigger:
      params.push_back(member_param(*doc, "mode", "string", &why));
      params.push_back(member_param(*doc, "dry_run", "boolean", &why));
      sql = "SELECT coalesce(pg_catalog.json_agg(r), '[]')::text FROM "
            "@extschema@.ha_sync(coalesce($1, 'incremental'), coalesce($2::boolean, false)) r";
      break;
    case HaRouteKind::pause:
      sql = "SELECT pg_catalog.to_json(@extschema@.ha_pause())::text";
      break;
    default:
      sql = "SELECT pg_catalog.to_json(@extschema@.ha_resume())::text";
      break;
  }
  if (!why.empty()) {
    co_await x.respond(error_response(http::status::bad_request, "bad_body", why));
    co_return;
  }
  co_await answer_json_text(x, state, DbRole::admin, std::move(sql), std::move(params), "result");
}

// Whether the request may use `route`; answers 401 or 403 when not. The
// shared token (token_file: workers and agents) counts as a reader's; a
// scoped token from api_tokens_file as its scope says.
awaitable<bool> authorized(Exchange& x, ServerState& state, const HaRoute& route) {
  if (route.access == HaAccess::open) co_return true;
  if (route.access == HaAccess::read && !state.config.read_token_required) co_return true;
  const auto& req = x.request();
  auto header = req.find(http::field::authorization);
  std::string_view value = header == req.end() ? std::string_view() : std_view(header->value());
  std::optional<TokenScope> scope;
  if (auto g = state.api_tokens ? state.api_tokens->grant(value) : std::nullopt) scope = g->scope;
  else if (header != req.end() && state.token.accepts(value)) scope = TokenScope::read;
  const TokenScope needed = route.access == HaAccess::admin ? TokenScope::admin : TokenScope::read;
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

}  // namespace

awaitable<void> handle_ha_request(Exchange& x, ServerState& state) {
  const auto& req = x.request();
  const HaRoute* route = find_route(std_view(req.target()));
  if (!route) {
    co_await x.respond(error_response(http::status::not_found, "not_found", "no such route on the HA port"));
    co_return;
  }
  // OPTIONS too on the checks: HAProxy's `option httpchk` sends it unless told otherwise.
  const bool check = route->kind == HaRouteKind::check;
  const http::verb m = req.method();
  const bool allowed = route->post ? m == http::verb::post
                                   : (m == http::verb::get || m == http::verb::head || (check && m == http::verb::options));
  if (!allowed) {
    const char* allow = route->post ? "POST" : check ? "GET, HEAD, OPTIONS" : "GET, HEAD";
    auto res = error_response(http::status::method_not_allowed, "method_not_allowed",
                              std::string("this route takes ") + allow);
    res.set(http::field::allow, allow);
    co_await x.respond(std::move(res));
    co_return;
  }
  std::string why;
  auto query = parse_query(std_view(req.target()), &why);
  if (!query) {
    co_await x.respond(error_response(http::status::bad_request, "bad_query", why));
    co_return;
  }
  const bool events = route->kind == HaRouteKind::events;
  for (const auto& [name, value] : *query) {
    if (name == "lag" && route->takes_lag) continue;
    if ((name == "since" || name == "limit") && events) continue;
    co_await x.respond(error_response(
        http::status::bad_request, "unknown_parameter",
        "this route takes " +
            std::string(route->takes_lag ? "one parameter, lag (bytes, or a size such as 16MB)"
                        : events         ? "the parameters since and limit"
                                         : "no parameter") +
            "; got " + nlohmann::json(name.substr(0, 64)).dump()));
    co_return;
  }
  // The load balancers' checks are open, as Patroni's are: they reveal
  // only what a client learns by connecting. Authorization comes before
  // any body is read.
  if (!co_await authorized(x, state, *route)) co_return;
  if (!state.sql) {
    co_await x.respond(error_response(http::status::service_unavailable, "database_unavailable",
                                      "this port has no database session"));
    co_return;
  }
  switch (route->kind) {
    case HaRouteKind::check:
      co_await answer_check(x, state, *route, *query);
      break;
    case HaRouteKind::api_health:
      co_await answer_api_health(x, state);
      break;
    case HaRouteKind::api_status:
      co_await answer_json_text(x, state, DbRole::reader,
                                "SELECT coalesce(pg_catalog.json_agg(s), '[]')::text FROM @extschema@.ha_status() s",
                                std::vector<Param>(), "nodes");
      break;
    case HaRouteKind::sync_status:
      co_await answer_json_text(x, state, DbRole::reader,
                                "SELECT coalesce(pg_catalog.json_agg(s), '[]')::text FROM @extschema@.ha_sync_status() s",
                                std::vector<Param>(), "tables");
      break;
    case HaRouteKind::events:
      co_await answer_events(x, state, *query);
      break;
    case HaRouteKind::sync_trigger:
    case HaRouteKind::failover:
    case HaRouteKind::pause:
    case HaRouteKind::resume:
      co_await answer_action(x, state, route->kind);
      break;
  }
}

}  // namespace crawler::agent
