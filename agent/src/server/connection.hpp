// One accepted connection, served until it closes.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server_state.hpp"

namespace crawler::agent {

// Serves `socket` (TLS when the server has a context, else plain) on its
// own strand, one request after another. Beyond max_connections, answers
// its first request 503 too_many_connections and closes instead (and
// beyond twice that, closes it unanswered). Returns at once.
void serve_connection(std::shared_ptr<ServerState> state, boost::asio::ip::tcp::socket socket);

}  // namespace crawler::agent
