#include "crawler/agent/server/api_tokens.hpp"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crawler/agent/server/bearer_token.hpp"

namespace crawler::agent {
namespace {

bool is_lower_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::optional<TokenScope> parse_token_scope(std::string_view text) {
  if (text == "read") return TokenScope::read;
  if (text == "operate") return TokenScope::operate;
  if (text == "admin") return TokenScope::admin;
  return std::nullopt;
}

const char* token_scope_name(TokenScope scope) {
  switch (scope) {
    case TokenScope::read:
      return "read";
    case TokenScope::operate:
      return "operate";
    case TokenScope::admin:
      return "admin";
  }
  return "read";
}

bool ApiTokens::load(const std::string& path, std::string* error) {
  if (path.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_ = std::make_shared<const std::vector<Entry>>();
    return true;
  }
  // Hashes, not tokens, yet they still tell which tokens exist: as private as a password file.
  if (!private_file(path, "api tokens file", error)) return false;
  std::ifstream in(path);
  if (!in) {
    *error = "api tokens file " + path + " cannot be read: " + std::strerror(errno);
    return false;
  }
  auto entries = std::make_shared<std::vector<Entry>>();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string scope_text, digest, name, extra;
    if (!(words >> scope_text)) continue;  // blank or comment
    words >> digest >> name >> extra;
    auto scope = parse_token_scope(scope_text);
    if (!scope || !is_lower_hex64(digest) || !extra.empty()) {
      *error = "api tokens file " + path + ", line " + std::to_string(number) +
               ": expected \"<read|operate|admin> <sha256 of the token: 64 lower-case hex digits> [name]\"";
      return false;
    }
    entries->push_back(Entry{*scope, digest, name.empty() ? "line " + std::to_string(number) : name});
  }
  std::lock_guard<std::mutex> lock(mutex_);
  entries_ = std::move(entries);
  return true;
}

std::optional<TokenGrant> ApiTokens::grant(std::string_view authorization) const {
  std::shared_ptr<const std::vector<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entries = entries_;
  }
  std::string_view token = bearer_credential(authorization);
  if (!entries || token.empty()) return std::nullopt;
  const std::string presented = token_digest(token);
  std::optional<TokenGrant> found;
  // No early exit: the time taken says nothing about which entry matched.
  for (const Entry& e : *entries)
    if (CRYPTO_memcmp(presented.data(), e.digest.data(), presented.size()) == 0 && !found)
      found = TokenGrant{e.scope, e.name};
  return found;
}

std::size_t ApiTokens::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_ ? entries_->size() : 0;
}

std::string api_token_line(TokenScope scope, std::string_view token, const std::string& name) {
  return std::string(token_scope_name(scope)) + " " + token_digest(token) + (name.empty() ? "" : " " + name);
}

}  // namespace crawler::agent
