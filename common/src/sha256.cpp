#include "crawler/sha256.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace crawler {

Sha256::Sha256() : md_(EVP_MD_CTX_new()) {
  if (!md_ || EVP_DigestInit_ex(md_, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(md_);
    throw std::runtime_error("OpenSSL: cannot start sha256");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(md_); }

void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(md_, data, n); }

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md_, digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> sha256_file(const std::filesystem::path& file, std::string* error,
                                       std::uint64_t* bytes_read) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = file.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  Sha256 h;
  std::vector<char> buf(256 * 1024);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = file.string() + ": " + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
    if (bytes_read) *bytes_read += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return h.hex_digest();
}

}  // namespace crawler
