#include "crawler/connect_failure.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace crawler {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool has(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

// One host's failure (or a failure before any host was tried).
bool permanent_part(const std::string& part) {
  const std::string m = lower(part);
  // A failed DNS lookup is permanent when DNS answered that the name does
  // not exist; "Temporary failure in name resolution" (EAI_AGAIN) is not.
  if (has(m, "could not translate host name")) return !has(m, "temporary failure");
  // The conninfo itself: its syntax and its values (libpq checks some only
  // when connecting: "invalid sslmode value", "invalid port number").
  for (std::string_view s : {"invalid connection option", "missing \"=\" after", "unterminated quoted string",
                             "invalid uri", "invalid percent-encoded token", "unexpected spaces found"})
    if (has(m, s)) return true;
  if (m.rfind("invalid ", 0) == 0 || has(m, "failed: invalid ")) return true;
  // Who connects: 28P01 (password), 28000 (pg_hba.conf, a role that may
  // not log in or does not exist), and a password libpq has none of.
  for (std::string_view s : {"password authentication failed", "no password supplied", "pg_hba.conf rejects",
                             "no pg_hba.conf entry", "is not permitted to log in", "authentication failed",
                             "authentication method requirement", "channel binding required"})
    if (has(m, s)) return true;
  // 3D000 and the 28000 of a missing role: 'database "x" does not exist',
  // 'role "x" does not exist'.
  if (has(m, "does not exist") && (has(m, "database \"") || has(m, "role \""))) return true;
  // TLS settings that cannot work: the server has no TLS, the certificate
  // does not verify, a certificate file is missing.
  for (std::string_view s : {"server does not support ssl", "certificate", "sslmode", "ssl error: tlsv1 alert"})
    if (has(m, s)) return true;
  // The database layer's own findings after connecting.
  if (has(m, "extension is not installed")) return true;
  return false;
}

// "a\n\tb  c" -> "a b c"
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

ConnectFailure classify_connect_failure(std::string_view message) {
  // Split into one part per host: a part starts at a line that is not
  // indented; indented lines are hints of the line above.
  std::vector<std::string> parts;
  std::size_t at = 0;
  while (at < message.size()) {
    std::size_t end = message.find('\n', at);
    if (end == std::string_view::npos) end = message.size();
    std::string_view line = message.substr(at, end - at);
    at = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if ((line.front() == ' ' || line.front() == '\t') && !parts.empty()) parts.back() += " " + std::string(line);
    else parts.emplace_back(line);
  }
  ConnectFailure f;
  f.permanent = !parts.empty() && std::all_of(parts.begin(), parts.end(), permanent_part);
  for (const auto& p : parts) f.reason += (f.reason.empty() ? "" : "; ") + one_line(p);
  if (f.reason.empty()) f.reason = "no reason given by libpq";
  return f;
}

}  // namespace crawler
