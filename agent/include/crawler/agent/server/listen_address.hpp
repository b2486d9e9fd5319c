// The `listen` setting: where the application port is bound.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>

namespace crawler::agent {

// "127.0.0.1:8000", "0.0.0.0:8000", "[::1]:8000", "[::]:0": a numeric
// address (IPv6 in brackets) and a port 0-65535 (0: any free port).
// Host names are refused: a node's address must not depend on DNS at
// start. nullopt with *error saying why.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text,
                                                                   std::string* error);

}  // namespace crawler::agent
