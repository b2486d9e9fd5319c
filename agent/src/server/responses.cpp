#include "responses.hpp"

#include <boost/beast/http/field.hpp>

namespace crawler::agent {

http::response<http::string_body> json_response(http::status status, const nlohmann::json& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  // Replace, not throw: a message may quote bytes a client sent.
  res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

http::response<http::string_body> error_response(http::status status, const std::string& code,
                                                 const std::string& message, const nlohmann::json& extra) {
  nlohmann::json body = extra;
  body["error"] = code;
  body["message"] = message;
  return json_response(status, body);
}

}  // namespace crawler::agent
