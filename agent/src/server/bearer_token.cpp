#include "crawler/agent/server/bearer_token.hpp"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crawler/sha256.hpp"

namespace crawler::agent {
namespace {

std::string_view trimmed(std::string_view s) {
  const char* space = " \t\r\n";
  std::size_t b = s.find_first_not_of(space);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(space);
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string_view bearer_credential(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
  return authorization.substr(scheme.size());
}

std::string token_digest(std::string_view token) {
  Sha256 h;
  h.update(token.data(), token.size());
  return h.hex_digest();
}

bool private_file(const std::string& path, const std::string& what, std::string* error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    *error = what + " " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = what + " " + path + " is not a regular file";
    return false;
  }
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    *error = what + " " + path + " is open to group or others (mode " + mode + "): chmod 600 it";
    return false;
  }
  return true;
}

bool BearerToken::load(const std::string& path, std::string* error) {
  if (!private_file(path, "token file", error)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "token file " + path + " cannot be read: " + std::strerror(errno);
    return false;
  }
  std::ostringstream content;
  content << in.rdbuf();
  const std::string text = content.str();
  std::string_view token = trimmed(text);
  if (token.empty()) {
    *error = "token file " + path + " is empty";
    return false;
  }
  auto digest = std::make_shared<const std::string>(token_digest(token));
  std::lock_guard<std::mutex> lock(mutex_);
  digest_ = std::move(digest);
  return true;
}

bool BearerToken::accepts(std::string_view authorization) const {
  std::shared_ptr<const std::string> expected;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    expected = digest_;
  }
  if (!expected) return false;
  std::string_view token = bearer_credential(authorization);
  if (token.empty()) return false;
  // Hashing first makes both sides 64 bytes whatever was sent, so the
  // comparison's time says nothing about the token's length or content.
  const std::string presented = token_digest(token);
  return CRYPTO_memcmp(presented.data(), expected->data(), presented.size()) == 0;
}

}  // namespace crawler::agent
