// The files options name, read when the command line is: the seeds file and
// the agents' token file (options.hpp has their contracts).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "crawler/options.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/url.hpp"

namespace crawler {

std::vector<std::string> read_seeds_file(const std::string& path) {
  // Its limits are crawl_start()'s (10,000 seeds, URLs of 2,048 bytes):
  // said here, with the file and line, instead of by the database later.
  constexpr std::size_t kMaxSeeds = 10000, kMaxUrlBytes = 2048;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("--seeds-file " + path + ": " + std::strerror(errno));
  std::vector<std::string> seeds;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    auto where = [&] { return "--seeds-file " + path + ", line " + std::to_string(number) + ": "; };
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::size_t end = line.find_last_not_of(" \t");
    std::string url = line.substr(start, end - start + 1);
    if (url.size() > kMaxUrlBytes)
      throw std::runtime_error(where() + "a URL longer than " + std::to_string(kMaxUrlBytes) + " bytes");
    if (url.find('\0') != std::string::npos) throw std::runtime_error(where() + "a NUL byte: not a text file?");
    if (!normalize_url(url))
      throw std::runtime_error(where() + "\"" + one_line(url, 200) + "\" is not an absolute http(s) URL");
    if (seeds.size() == kMaxSeeds)
      throw std::runtime_error("--seeds-file " + path + ": more than " + std::to_string(kMaxSeeds) +
                               " seeds (crawl_start()'s limit)");
    seeds.push_back(std::move(url));
  }
  if (in.bad()) throw std::runtime_error("--seeds-file " + path + ": " + std::strerror(errno));
  if (seeds.empty()) throw std::runtime_error("--seeds-file " + path + ": no URL in it");
  return seeds;
}

std::string read_agent_token(const std::string& path) {
  auto refuse = [&](const std::string& why) { return std::runtime_error("--agent-token-file " + path + ": " + why); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw refuse(std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw refuse("not a regular file");
  }
  // A token others can read is a token others have; one they can write is
  // one they choose. ssh refuses such keys for the same reason.
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw refuse(std::string("its group or others may access it (mode ") + mode + "); chmod 600 it");
  }
  std::string token;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw refuse(std::strerror(errno));
    }
    if (n == 0) break;
    token.append(buf, static_cast<std::size_t>(n));
    if (token.size() > 4096) {
      ::close(fd);
      throw refuse("longer than 4096 bytes: not a token");
    }
  }
  ::close(fd);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) throw refuse("empty");
  for (unsigned char c : token)
    if (c <= 0x20 || c >= 0x7f) throw refuse("a token is printable ASCII without spaces (it goes into an HTTP header)");
  return token;
}

}  // namespace crawler
