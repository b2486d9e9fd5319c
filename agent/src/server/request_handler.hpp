// From a request to its route: method, authorization, then the route.
#pragma once
#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// Answers the request of `exchange` (every path answers, or abandons the
// connection when the client cut its upload).
awaitable<void> handle_request(Exchange& exchange, ServerState& state);

}  // namespace crawler::agent
