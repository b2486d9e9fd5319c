// The HA port's routes: the load-balancer checks with Patroni's names and
// meaning (/primary alias /read-write, /replica, /read-only, /health) and
// the node's view of the cluster (/api/health, /api/status). Each is one
// SQL call through NodeSql; the rules are the extension's
// (ha_endpoint_check(), ha_health(), ha_status()).
#pragma once
#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// Answers one request that came to the HA port.
awaitable<void> handle_ha_request(Exchange& x, ServerState& state);

}  // namespace crawler::agent
