#include "ha_routes.hpp"

#include <array>
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "await_callback.hpp"
#include "crawler/agent/server/query_string.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

enum class HaRouteKind { check, api_health, api_status };

struct HaRoute {
  std::string_view path;
  HaRouteKind kind;
  std::string_view endpoint;  // ha_endpoint_check()'s name of a check
  bool takes_lag;             // ?lag= is accepted
};

// Patroni's names, so that HAProxy configurations written for it work.
constexpr std::array<HaRoute, 7> kHaRoutes{{
    {"/primary", HaRouteKind::check, "primary", false},
    {"/read-write", HaRouteKind::check, "read-write", false},
    {"/replica", HaRouteKind::check, "replica", true},
    {"/read-only", HaRouteKind::check, "read-only", true},
    {"/health", HaRouteKind::check, "health", false},
    {"/api/health", HaRouteKind::api_health, "", false},
    {"/api/status", HaRouteKind::api_status, "", false},
}};

const HaRoute* find_route(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (const HaRoute& r : kHaRoutes)
    if (r.path == path) return &r;
  return nullptr;
}

awaitable<DbResult> sql_call(ServerState& state, std::string sql, std::vector<Param> params) {
  // One value: the awaitable resumes with it, not with a tuple.
  DbResult result = co_await await_callback<DbResult>(
      [&](auto done) { state.sql->call(std::move(sql), std::move(params), std::move(done)); });
  co_return result;
}

// A failed SQL call as an answer: the caller's bad input (SQLSTATE class
// 22) is a 400; anything else means this node cannot answer now (503).
http::response<http::string_body> sql_failure(const DbResult& r) {
  nlohmann::json extra = {{"sqlstate", r.sqlstate}};
  if (r.sqlstate.rfind("22", 0) == 0)
    return error_response(http::status::bad_request, "bad_parameter", r.error, extra);
  bool unavailable = r.sqlstate.rfind("08", 0) == 0 || r.sqlstate == "57P01" || r.sqlstate == "53300" ||
                     r.sqlstate == "57014" || r.sqlstate == "55P03";
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
  DbResult r = co_await sql_call(state,
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
      state, "SELECT pg_catalog.row_to_json(h)::text, h.healthy FROM @extschema@.ha_health() h",
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

awaitable<void> answer_api_status(Exchange& x, ServerState& state) {
  DbResult r = co_await sql_call(
      state, "SELECT coalesce(pg_catalog.json_agg(s), '[]')::text FROM @extschema@.ha_status() s",
      std::vector<Param>());
  if (!r.ok || r.rows.size() != 1) {
    if (r.ok) r.error = "ha_status() returned no answer", r.sqlstate = "XX000";
    co_await x.respond(no_store(sql_failure(r)));
    co_return;
  }
  nlohmann::json body = nlohmann::json::object();
  body["nodes"] = parse_or_null(r.rows[0][0]);
  co_await x.respond(no_store(json_response(http::status::ok, body)));
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
  if (!(m == http::verb::get || m == http::verb::head || (check && m == http::verb::options))) {
    const char* allow = check ? "GET, HEAD, OPTIONS" : "GET, HEAD";
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
  for (const auto& [name, value] : *query) {
    if (name == "lag" && route->takes_lag) continue;
    co_await x.respond(error_response(
        http::status::bad_request, "unknown_parameter",
        "this route takes " + std::string(route->takes_lag ? "one parameter, lag (bytes, or a size such as 16MB)"
                                                            : "no parameter") +
            "; got " + nlohmann::json(name.substr(0, 64)).dump()));
    co_return;
  }
  // The load balancers' checks are open, as Patroni's are: they reveal
  // only what a client learns by connecting. The rest is a read.
  if (!check && state.config.read_token_required) {
    auto header = req.find(http::field::authorization);
    if (header == req.end() || !state.token.accepts(std_view(header->value()))) {
      auto res = error_response(http::status::unauthorized, "unauthorized",
                                header == req.end() ? "an Authorization: Bearer token is required"
                                                    : "the bearer token is not accepted");
      res.set(http::field::www_authenticate, "Bearer");
      co_await x.respond(std::move(res));
      co_return;
    }
  }
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
      co_await answer_api_status(x, state);
      break;
  }
}

}  // namespace crawler::agent
