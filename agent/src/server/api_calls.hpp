// What the JSON API routes of both ports share: who may call a route (the
// bearer token and its scope), one SQL call through NodeSql, a failed call
// as an answer, and the small pieces of input they all read (a whole
// number, a JSON object body and its members).
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// What a route needs of its caller: nothing (load-balancer checks, the
// OpenAPI document), a reader (a token only when read_token_required), an
// operator (crawls) or an admin (failover, pause, sync).
enum class ApiAccess { open, read, operate, admin };

// Whether the request may use a route needing `access`; when not, it has
// been answered 401 (no token, or one not accepted) or 403
// (insufficient_scope). The shared token of token_file (workers and
// agents) counts as a reader's; a token of api_tokens_file as its scope.
awaitable<bool> authorize(Exchange& x, ServerState& state, ApiAccess access);

// The database role of a call made for a caller with `access`.
DbRole db_role_for(ApiAccess access);

// Runs `sql` (with "@extschema@") as `role` on the node's database.
awaitable<DbResult> sql_call(ServerState& state, DbRole role, std::string sql, std::vector<Param> params);

// The single row of a call expected to return exactly one; otherwise the
// request has been answered (the failure, or a call that returned another
// number of rows, as `what` in the message) and nullopt is returned.
awaitable<std::optional<std::vector<Param>>> sql_row(Exchange& x, ServerState& state, DbRole role, std::string sql,
                                                     std::vector<Param> params, const char* what);

// Answers 200 {"<member>": value}, the value the JSON text that `sql`
// returns in its one row (an aggregate), or the failure.
awaitable<void> answer_json_text(Exchange& x, ServerState& state, DbRole role, std::string sql,
                                 std::vector<Param> params, const char* member);

// A failed SQL call as an answer carrying its SQLSTATE: the caller's bad
// input (class 22) is 400, a missing row (P0002) 404, the extension
// refusing in this state (55000, 42704, 57014) 409, a node that may not
// write now (25006) 503 "read_only_node", a database that cannot answer 503.
http::response<http::string_body> sql_failure(const DbResult& r);

// A JSON text from SQL parsed, or null when the value is NULL or not JSON.
nlohmann::json parse_or_null(const Param& text);

// A whole number written in decimal digits only, in [low, high]; nullopt
// for anything else (a sign, spaces, more than 19 digits).
std::optional<long long> whole_number(const std::string& text, long long low, long long high);

// The JSON object of a request body of at most `limit` bytes whose members
// are all in `members` ({} for an empty body). nullopt when the route is
// done: answered 413 (too large) or 400 (not a JSON object, an unknown
// member), or the client broke off.
awaitable<std::optional<nlohmann::json>> json_object_body(Exchange& x, std::uint64_t limit,
                                                          const std::vector<std::string>& members);

// GET /api/events of both ports (the HA port's and the dashboard's): 200
// {"events": [ha_events rows with id > since, oldest first, at most limit],
// "next_since": the last id, or since when there is none}, from the
// `since` (default 0) and `limit` (1 to 1000, default 100) of `query`; a
// bad one is answered 400 bad_parameter. Other parameters are the
// caller's to refuse.
awaitable<void> answer_events(Exchange& x, ServerState& state, const std::map<std::string, std::string>& query);

// Member `key` of `doc` as a text parameter: absent or null is SQL NULL;
// `type` "string" or "boolean" must match, otherwise *why is set.
Param member_param(const nlohmann::json& doc, const char* key, const char* type, std::string* why);

}  // namespace crawler::agent
