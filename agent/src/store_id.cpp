#include "crawler/agent/store_id.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "crawler/log.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;

bool valid_store_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0])) return false;
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') return false;
  return true;
}

std::string random_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("no random bytes for a store id");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[b[i] >> 4];
    s += hex[b[i] & 15];
  }
  return s;
}

namespace {
std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  auto end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

void write_durably(const fs::path& root, const std::string& id) {
  fs::path tmp = root / ".store-id.tmp", dest = root / ".store-id";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write " + tmp.string());
  std::string text = id + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) fail("cannot write " + tmp.string());
  if (::rename(tmp.c_str(), dest.c_str()) != 0) fail("cannot rename into " + dest.string());
  int dfd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    if (dfd >= 0) ::close(dfd);
    fail("cannot fsync " + root.string());
  }
  ::close(dfd);
}
}  // namespace

std::string load_or_create_store_id(const fs::path& root) {
  fs::path file = root / ".store-id";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    if (!in) fail("cannot read " + file.string());
    std::ostringstream text;
    text << in.rdbuf();
    std::string id = trim(text.str());
    if (valid_store_id(id)) return id;
    CRAWLER_LOG(warn) << "file sync: " << file.string()
                      << " holds no valid store id; a new id is written and the store's inventory taken";
  }
  std::string id = random_uuid();
  write_durably(root, id);
  CRAWLER_LOG(info) << "file sync: new store id " << id << " written to " << file.string();
  return id;
}

}  // namespace crawler::agent
