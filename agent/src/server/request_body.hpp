// A small request body (a JSON query) read whole, for the routes that take
// one: the limit is checked against Content-Length before reading and again
// while reading.
#pragma once
#include <optional>
#include <string>

#include "exchange.hpp"

namespace crawler::agent {

// The whole body, at most `limit` bytes. nullopt when the route is done:
// a larger body was answered 413 with `error_code` (a stable code) and
// `what` in its message ("a bundle query"), or the client broke off.
awaitable<std::optional<std::string>> read_small_body(Exchange& x, std::uint64_t limit,
                                                      const std::string& error_code, const std::string& what);

}  // namespace crawler::agent
