// GET and HEAD /metrics on the HA port, as Patroni serves its own on its
// REST port: Prometheus' text exposition format (0.0.4). The database's
// metrics come from one call of ha_metrics() (names, types, help texts and
// labels included: they are described there once); the agent adds what only
// it knows: that it runs, whether that call succeeded and how long it took,
// the store's file system, and its own process.
#pragma once
#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// Answers a /metrics request whose caller is authorized already: 200 with
// the exposition, always, within the pool's statement timeout. A database
// that does not answer leaves its families out and says
// crawler_ha_database_up 0, so that Prometheus tells a node whose database
// is down (the agent's metrics, up 1) from one that is gone (up 0).
awaitable<void> answer_metrics(Exchange& x, ServerState& state);

}  // namespace crawler::agent
