// The application port's JSON API: crawls (start, list, status, stop),
// images (a filtered, keyset-paged list, one image, its bytes, its
// thumbnails), the cluster's status, events, alerts and lag history, the
// OpenAPI document that describes them (docs/openapi.json), and the
// dashboard page (GET /, agent/web/dashboard.html) that shows them. Each
// data route is one SQL call to the extension's functions (crawl_start,
// crawl_list, crawl_status, crawl_stop, image_list, image_get, ha_status,
// ha_alerts, the ha_events table): the rules are theirs. The lag history
// alone is the agent's (lag_history.hpp).
#pragma once
#include <string>
#include <string_view>

#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// Answers a request to the application port that is not a blob route.
awaitable<void> handle_app_request(Exchange& x, ServerState& state);

// The OpenAPI 3 document of the application port, as served.
const std::string& openapi_document();

// The CSP source of the one inline <tag> element of `html` (no
// attributes): "'sha256-<base64>'" of what it holds, as a browser hashes
// it. Throws std::logic_error when the page has none, several, or one with
// attributes (its policy would not match what the browser hashes).
std::string inline_element_hash(std::string_view html, std::string_view tag);

// The Content-Security-Policy GET / (the dashboard) is served with: this
// origin only, its inline script and style allowed by their sha256.
const std::string& dashboard_policy();

}  // namespace crawler::agent
