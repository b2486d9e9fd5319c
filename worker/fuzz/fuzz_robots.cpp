// Fuzz target: robots.txt (Robots::parse, allowed, crawl_delay) and the
// header values the crawler interprets: X-Robots-Tag
// (RobotsDirectives::add) and the product token of a User-Agent
// (agent_token). All of src/robots.cpp; robots.txt comes from any site.
//
// Input: "ROBOTS.TXT\0PATH\nPATH\n...". Up to 8 paths after the first NUL
// byte are asked about; without a NUL the paths are fixed ones plus the last
// line of the file (a rule of its own, often). Each path line is also given
// to RobotsDirectives::add and agent_token as a header value.
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour, crash or super-linear blow-up
//     (libFuzzer's -timeout) in any of them;
//   - /robots.txt itself is always allowed;
//   - a percent escape's case does not matter: a path with its escapes in
//     lower case gets the same answer as with them in upper case (for paths
//     whose every '%' starts an escape, as in a URL curl has normalised; a
//     stray '%' shifts how the matcher pairs the bytes after it);
//   - the robots.txt parsed for the agent "crawler_ha/1.0" (a full User-Agent
//     string) gives the same answers as for its token "crawler_ha";
//   - a UTF-8 byte order mark before the file changes no answer (it once
//     made the first line's "User-agent" an unknown key);
//   - a Crawl-delay, when there is one, is not negative (it is a wait);
//   - agent_token gives only lower-case letters, digits, '_' and '-'.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crawler/robots.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// The path with the hex digits of its percent escapes in lower case.
std::string lower_escapes(std::string_view p) {
  std::string out(p);
  for (std::size_t i = 0; i + 2 < out.size(); ++i)
    if (out[i] == '%' && std::isxdigit(static_cast<unsigned char>(out[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(out[i + 2]))) {
      out[i + 1] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i + 1])));
      out[i + 2] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i + 2])));
      i += 2;
    }
  return out;
}

std::string upper_escapes(std::string_view p) {
  std::string out(p);
  for (std::size_t i = 0; i + 2 < out.size(); ++i)
    if (out[i] == '%' && std::isxdigit(static_cast<unsigned char>(out[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(out[i + 2]))) {
      out[i + 1] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i + 1])));
      out[i + 2] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i + 2])));
      i += 2;
    }
  return out;
}

bool well_formed_escapes(std::string_view p) {
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] == '%') {
      if (i + 2 >= p.size() || !std::isxdigit(static_cast<unsigned char>(p[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(p[i + 2])))
        return false;
      i += 2;
    }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view text = in;
  std::vector<std::string_view> paths;
  if (auto nul = in.find('\0'); nul != std::string_view::npos) {
    text = in.substr(0, nul);
    std::string_view rest = in.substr(nul + 1);
    while (paths.size() < 8) {
      auto nl = rest.find('\n');
      paths.push_back(rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  } else {
    paths = {"/", "/index.html", "/a/b?c=d", "/%7Euser/caf%C3%A9.png"};
    auto last = text.find_last_of('\n');
    paths.push_back(last == std::string_view::npos ? text : text.substr(last + 1));
  }

  auto robots = crawler::Robots::parse(text, "crawler_ha");
  auto upper = crawler::Robots::parse(text, "CRAWLER_HA");
  // (and the file well within the 500 KiB read, which the mark would shift)
  const bool bom_free = text.substr(0, 3) != "\xEF\xBB\xBF" && text.size() < 500 * 1024 - 3;
  auto with_bom = crawler::Robots::parse(std::string("\xEF\xBB\xBF").append(text), "crawler_ha");
  check(robots.allowed("/robots.txt"));
  if (auto d = robots.crawl_delay()) check(*d >= 0);
  for (auto p : paths) {
    bool a = robots.allowed(p);
    if (well_formed_escapes(p))
      check(robots.allowed(lower_escapes(p)) == robots.allowed(upper_escapes(p)));
    check(upper.allowed(p) == a);
    if (bom_free) check(with_bom.allowed(p) == a);

    crawler::RobotsDirectives d;
    d.add(p, "crawler_ha");
    d.add(p, "");
    for (char c : crawler::agent_token(p))
      check(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
            c == '_' || c == '-');
  }
  return 0;
}
