// The application port's JSON API: crawls (start, list, status, stop),
// images (a filtered, keyset-paged list, one image, its bytes, its
// thumbnails), the cluster's status, and the OpenAPI document that
// describes them (docs/openapi.json). Each route is one SQL call to the
// extension's functions (crawl_start, crawl_list, crawl_status,
// crawl_stop, image_list, image_get, ha_status): the rules are theirs.
#pragma once
#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// Answers a request to the application port that is not a blob route.
awaitable<void> handle_app_request(Exchange& x, ServerState& state);

// The OpenAPI 3 document of the application port, as served.
const std::string& openapi_document();

}  // namespace crawler::agent
