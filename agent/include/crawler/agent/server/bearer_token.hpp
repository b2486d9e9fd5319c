// The bearer token that writes and agent-to-agent calls present
// (`Authorization: Bearer <token>`), read from the token file. Reloadable
// while requests are checked against it (SIGHUP rotates it without a
// restart).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace crawler::agent {

// The credential of an Authorization header value "Bearer <token>" (the
// scheme in any case, one space), or "" when the value is not one.
std::string_view bearer_credential(std::string_view authorization);
// sha256 (hex) of a token: what is kept and compared instead of the token,
// so every comparison is of 64 bytes whatever was sent.
std::string token_digest(std::string_view token);

// Whether `path` is a regular file open to no one but its owner (mode 600
// or stricter), as a file of secrets must be; false with *error naming it
// as `what` ("token file") and saying why.
bool private_file(const std::string& path, const std::string& what, std::string* error);

class BearerToken {
 public:
  // Reads `path`: the token is its content without surrounding white space.
  // Refuses (false, *error for the user) a file that is missing,
  // unreadable, empty, or open to group or others (its mode must be 600 or
  // stricter: the token is a password). On refusal the token in use, if
  // any, stays.
  bool load(const std::string& path, std::string* error);

  // Whether an Authorization header value presents the token: scheme
  // "Bearer" (any case), one space, the token. The comparison takes the
  // same time wherever the first difference is (both sides hashed to equal
  // length, then CRYPTO_memcmp). False while no token is loaded.
  bool accepts(std::string_view authorization) const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> digest_;  // sha256 of the token
};

}  // namespace crawler::agent
