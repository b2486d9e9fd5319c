#include "request_handler.hpp"

#include <boost/beast/http/field.hpp>

#include "app_routes.hpp"
#include "blob_routes.hpp"
#include "ha_routes.hpp"
#include "crawler/agent/server/router.hpp"
#include "responses.hpp"

namespace crawler::agent {

awaitable<void> handle_request(Exchange& x, ServerState& state) {
  if (state.port == ServerPort::ha) {
    co_await handle_ha_request(x, state);
    co_return;
  }
  const auto& req = x.request();
  Route route = match_route(req.method(), std_view(req.target()));
  if (route.id == RouteId::not_found) {
    co_await handle_app_request(x, state);
    co_return;
  }
  if (!route.method_allowed) {
    auto res = error_response(http::status::method_not_allowed, "method_not_allowed",
                              "this route takes " + route.allow);
    res.set(http::field::allow, route.allow);
    co_await x.respond(std::move(res));
    co_return;
  }
  // A bundle is a read too: its POST body only names the blobs.
  bool reads = req.method() == http::verb::get || req.method() == http::verb::head ||
               route.id == RouteId::blob_bundle;
  if (!reads || state.config.read_token_required) {
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
  if (route.id == RouteId::blob_referenced) {
    co_await post_referenced(x, state);
    co_return;
  }
  if (route.id == RouteId::blob_bundle) {
    co_await post_bundle(x, state);
    co_return;
  }
  if (route.id == RouteId::file_sync_status) {
    co_await get_file_sync_status(x, state);
    co_return;
  }
  bool put = req.method() == http::verb::put;
  auto name = parse_blob_name(route.segment, put);
  if (!name) {
    co_await x.respond(error_response(
        http::status::bad_request, "bad_blob_name",
        put ? "a blob is named <sha256>.<ext>: 64 lower-case hex digits, a dot, 1 to 16 of [a-z0-9]"
            : "a blob is named <sha256> or <sha256>.<ext>: 64 lower-case hex digits, then maybe a "
              "dot and 1 to 16 of [a-z0-9]"));
    co_return;
  }
  if (put) co_await put_blob(x, state, *name);
  else co_await get_blob(x, state, *name);
}

}  // namespace crawler::agent
