#include "request_body.hpp"

#include <vector>

#include "responses.hpp"

namespace crawler::agent {

awaitable<std::optional<std::string>> read_small_body(Exchange& x, std::uint64_t limit,
                                                      const std::string& error_code, const std::string& what) {
  const std::string too_large = what + " is at most " + std::to_string(limit) + " bytes";
  if (auto length = x.content_length(); length && *length > limit) {
    co_await x.respond(error_response(http::status::payload_too_large, error_code, too_large));
    co_return std::nullopt;
  }
  x.limit_body(limit);
  std::string body;
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    BodyPiece piece = co_await x.read_body(buffer.data(), buffer.size());
    if (piece.status == BodyPiece::too_large) {
      co_await x.respond(error_response(http::status::payload_too_large, error_code, too_large));
      co_return std::nullopt;
    }
    if (piece.status == BodyPiece::broken) {
      x.abandon();
      co_return std::nullopt;
    }
    body.append(buffer.data(), piece.size);
    if (piece.done) break;
  }
  co_return body;
}

}  // namespace crawler::agent
