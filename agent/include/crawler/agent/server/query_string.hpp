// The query part of a request target (after '?'), as the HA routes read
// their few parameters: name=value pairs joined by '&', percent-decoded,
// '+' a space.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace crawler::agent {

// The pairs of `target`'s query (none when it has no '?'). nullopt, with
// *why for the client, when the query is malformed: a bad %-escape, a NUL,
// an empty or repeated name, a name or value over 1024 bytes, or more than
// 32 pairs. A name without '=' has the value "".
std::optional<std::map<std::string, std::string>> parse_query(std::string_view target, std::string* why);

}  // namespace crawler::agent
