// The HTTP APIs' bearer tokens with scopes, kept hashed in a file (the
// agent never holds them in clear): one line per token,
//   <scope> <sha256 of the token, 64 hex digits> [<name>]
// with `#` comments and blank lines. Scopes nest: admin (failover, pause,
// resume, repairs) includes operate (crawls) includes read. `crawler-ha
// token add` makes a token and appends its line. Reloadable (SIGHUP) while
// requests are checked against it.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crawler::agent {

enum class TokenScope { read = 1, operate = 2, admin = 3 };

// "read", "operate", "admin"; nullopt for anything else.
std::optional<TokenScope> parse_token_scope(std::string_view text);
const char* token_scope_name(TokenScope scope);

struct TokenGrant {
  TokenScope scope;
  std::string name;  // the line's name, or "line N"
};

class ApiTokens {
 public:
  // Reads `path`; an empty path means no scoped token (none is accepted).
  // Refuses (false, *error naming the file and line) a file that is
  // missing, unreadable, open to group or others, or holds a line that is
  // not `<scope> <64 hex> [name]`; on refusal the tokens in use stay.
  bool load(const std::string& path, std::string* error);

  // The grant of the token an Authorization header value presents
  // ("Bearer <token>", the scheme in any case), nullopt when none matches.
  // Every entry is compared, in constant time each, whatever matches.
  std::optional<TokenGrant> grant(std::string_view authorization) const;

  // How many tokens are loaded.
  std::size_t size() const;

 private:
  struct Entry {
    TokenScope scope;
    std::string digest;  // sha256 hex of the token
    std::string name;
  };
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<Entry>> entries_;
};

// The line `crawler-ha token add` appends for `token`: "<scope> <sha256> <name>".
std::string api_token_line(TokenScope scope, std::string_view token, const std::string& name);

}  // namespace crawler::agent
