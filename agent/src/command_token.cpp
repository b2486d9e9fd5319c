// crawler-ha token add: makes an API token of a scope, appends its hash to
// the api_tokens_file and prints the token once. The agent never holds the
// token in clear; whoever ran this keeps it.
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "crawler/agent/commands.hpp"
#include "crawler/agent/server/api_tokens.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

int usage_error(const std::string& why) {
  std::cerr << "crawler-ha token: " << why << " (crawler-ha token add --help)\n";
  return 2;
}

// A name goes on the line after the hash: one word of printable characters.
bool good_name(const std::string& name) {
  if (name.size() > 64) return false;
  for (char c : name)
    if (c <= ' ' || c == '#' || c == 0x7f) return false;
  return true;
}

}  // namespace

int run_token_command(const std::vector<std::string>& args) {
  std::string file, scope_text, name;
  po::options_description d{"crawler-ha token add"};
  d.add_options()("help,h", "show this help")
      ("file", po::value(&file), "the api_tokens_file to append to (made with mode 600 if missing)")
      ("scope", po::value(&scope_text), "read, operate or admin")
      ("name", po::value(&name), "a name for the token (one word), shown in the agent's logs");
  if (args.empty() || args[0] != "add") return usage_error("the only subcommand is add");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(std::vector<std::string>(args.begin() + 1, args.end())).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << "Usage: crawler-ha token add --file FILE --scope read|operate|admin [--name NAME]\n\n" << d;
    return 0;
  }
  auto scope = parse_token_scope(scope_text);
  if (file.empty()) return usage_error("--file is required");
  if (!scope) return usage_error("--scope must be read, operate or admin");
  if (!good_name(name)) return usage_error("--name must be one word of at most 64 printable characters, without #");
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    std::cerr << "crawler-ha token: no random bytes from OpenSSL\n";
    return 1;
  }
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) token += {hex[b >> 4], hex[b & 15]};
  int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::cerr << "crawler-ha token: " << file << ": " << std::strerror(errno) << "\n";
    if (fd >= 0) ::close(fd);
    return 1;
  }
  // The agent refuses such a file; say so now rather than at its next start.
  if (st.st_mode & 077) {
    std::cerr << "crawler-ha token: " << file << " is open to group or others: chmod 600 it first\n";
    ::close(fd);
    return 1;
  }
  const std::string line = api_token_line(*scope, token, name) + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok) {
    std::cerr << "crawler-ha token: cannot write " << file << ": " << std::strerror(e) << "\n";
    return 1;
  }
  std::cout << token << "\n";
  std::cerr << "crawler-ha token: a " << token_scope_name(*scope) << " token added to " << file
            << "; it is shown once. Reload the agent (SIGHUP) to use it.\n";
  return 0;
}

}  // namespace crawler::agent
