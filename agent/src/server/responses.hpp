// The answers every route shares: JSON bodies, and errors as
// {"error":"<stable code>","message":"..."}.
#pragma once
#include <nlohmann/json.hpp>

#include "exchange.hpp"

namespace crawler::agent {

// A JSON answer with `status`.
http::response<http::string_body> json_response(http::status status, const nlohmann::json& body);

// An error answer: `code` is stable (clients branch on it), `message` is
// for people; `extra` members are added to the object (e.g. the expected
// and actual hash of a mismatch).
http::response<http::string_body> error_response(http::status status, const std::string& code,
                                                 const std::string& message,
                                                 const nlohmann::json& extra = nlohmann::json::object());

}  // namespace crawler::agent
