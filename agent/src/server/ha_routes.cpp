#include "ha_routes.hpp"

#include <array>
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "api_calls.hpp"
#include "crawler/agent/server/query_string.hpp"
#include "metrics_route.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

enum class HaRouteKind {
  check, api_health, api_status, sync_status, events, sync_trigger, failover, pause, resume, metrics
};


struct HaRoute {
  std::string_view path;
  HaRouteKind kind;
  ApiAccess access;  // anyone (the load balancers' checks), a reader, an admin
  bool post;                  // POST (the admin actions); else GET and HEAD (and OPTIONS for checks)
  std::string_view endpoint;  // ha_endpoint_check()'s name of a check
  bool takes_lag;             // ?lag= is accepted
};

// Patroni's names for the checks, so that HAProxy configurations written
// for it work; the original specification's names for the rest.
constexpr std::array<HaRoute, 14> kHaRoutes{{
    {"/primary", HaRouteKind::check, ApiAccess::open, false, "primary", false},
    {"/read-write", HaRouteKind::check, ApiAccess::open, false, "read-write", false},
    {"/replica", HaRouteKind::check, ApiAccess::open, false, "replica", true},
    {"/read-only", HaRouteKind::check, ApiAccess::open, false, "read-only", true},
    {"/health", HaRouteKind::check, ApiAccess::open, false, "health", false},
    {"/api/health", HaRouteKind::api_health, ApiAccess::read, false, "", false},
    {"/api/status", HaRouteKind::api_status, ApiAccess::read, false, "", false},
    {"/api/sync-status", HaRouteKind::sync_status, ApiAccess::read, false, "", false},
    {"/api/events", HaRouteKind::events, ApiAccess::read, false, "", false},
    {"/api/sync/trigger", HaRouteKind::sync_trigger, ApiAccess::admin, true, "", false},
    {"/api/failover", HaRouteKind::failover, ApiAccess::admin, true, "", false},
    {"/api/pause", HaRouteKind::pause, ApiAccess::admin, true, "", false},
    {"/api/resume", HaRouteKind::resume, ApiAccess::admin, true, "", false},
    // Prometheus' scrape, as Patroni serves it on its REST port.
    {"/metrics", HaRouteKind::metrics, ApiAccess::read, false, "", false},
}};

// The most an admin action's JSON body may hold.
constexpr std::uint64_t kMaxActionBody = 4096;

const HaRoute* find_route(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (const HaRoute& r : kHaRoutes)
    if (r.path == path) return &r;
  return nullptr;
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
  auto answer = co_await sql_row(x, state, DbRole::agent,
                                 "SELECT c.ok, c.reason, c.lag_bytes, pg_catalog.row_to_json(h)::text "
                                 "FROM @extschema@.ha_endpoint_check($1, $2) c, @extschema@.ha_health() h",
                                 std::move(params), "ha_endpoint_check()");
  if (!answer) co_return;
  const auto& row = *answer;
  bool ok = row[0] && *row[0] == "t";
  nlohmann::json body = nlohmann::json::object();
  body["check"] = std::string(route.endpoint);
  body["ok"] = ok;
  body["reason"] = row[1] ? nlohmann::json(*row[1]) : nlohmann::json(nullptr);
  body["lag_bytes"] = row[2] ? nlohmann::json(std::stoll(*row[2])) : nlohmann::json(nullptr);
  body["node"] = parse_or_null(row[3]);
  co_await x.respond(json_response(ok ? http::status::ok : http::status::service_unavailable, body));
}

awaitable<void> answer_api_health(Exchange& x, ServerState& state) {
  auto row = co_await sql_row(x, state, DbRole::reader,
                               "SELECT pg_catalog.row_to_json(h)::text, h.healthy FROM @extschema@.ha_health() h",
                               std::vector<Param>(), "ha_health()");
  if (!row) co_return;
  bool healthy = (*row)[1] && *(*row)[1] == "t";
  co_await x.respond(json_response(healthy ? http::status::ok : http::status::service_unavailable,
                                   parse_or_null((*row)[0])));
}

awaitable<void> answer_action(Exchange& x, ServerState& state, HaRouteKind kind) {
  std::vector<std::string> members;
  if (kind == HaRouteKind::failover) members = {"target", "force"};
  if (kind == HaRouteKind::sync_trigger) members = {"mode", "dry_run"};
  auto doc = co_await json_object_body(x, kMaxActionBody, members);
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
  // The answer is built outside the loop and outside the co_await: gcc 12
  // destroys some temporaries of a co_await expression twice.
  std::optional<std::string> unknown;
  for (const auto& [name, value] : *query) {
    if (name == "lag" && route->takes_lag) continue;
    if ((name == "since" || name == "limit") && events) continue;
    unknown = name;
    break;
  }
  if (unknown) {
    std::string taken = route->takes_lag ? "one parameter, lag (bytes, or a size such as 16MB)"
                        : events         ? "the parameters since and limit"
                                         : "no parameter";
    std::string got = nlohmann::json(unknown->substr(0, 64)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto res = error_response(http::status::bad_request, "unknown_parameter", "this route takes " + taken + "; got " + got);
    co_await x.respond(std::move(res));
    co_return;
  }
  // The load balancers' checks are open, as Patroni's are: they reveal
  // only what a client learns by connecting. Authorization comes before
  // any body is read.
  if (!co_await authorize(x, state, route->access)) co_return;
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
    case HaRouteKind::metrics:
      co_await answer_metrics(x, state);
      break;
  }
}

}  // namespace crawler::agent
