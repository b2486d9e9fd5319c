#include "crawler/robots.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace crawler {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// One spelling for paths and patterns: percent escapes in upper case, so
// "%2f" and "%2F" compare equal, and every byte outside ASCII escaped, so a
// rule written in UTF-8 ("/Ã¼") matches the path a URL carries
// ("/%C3%BC").
std::string canonical_escapes(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string r;
  r.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '%' && i + 2 < s.size()) {
      r += '%';
      r += static_cast<char>(std::toupper(static_cast<unsigned char>(s[i + 1])));
      r += static_cast<char>(std::toupper(static_cast<unsigned char>(s[i + 2])));
      i += 2;
    } else if (c >= 0x80) {
      r += '%';
      r += hex[c >> 4];
      r += hex[c & 0xF];
    } else {
      r += static_cast<char>(c);
    }
  }
  return r;
}

// Google's parser reads the first 500 KiB of a robots.txt and ignores the rest.
constexpr std::size_t kMaxRobotsBytes = 500 * 1024;

}  // namespace

void RobotsDirectives::add(std::string_view value, std::string_view agent) {
  // Directives separated by commas; "agent: d1, d2" makes the directives
  // after it that agent's, until the next "agent:" ("nofollow, otherbot:
  // noimageindex" is a nofollow for everyone and a noimageindex for otherbot).
  std::string v = lower(value);
  std::string_view rest = v;
  const std::string me = lower(agent);
  bool for_us = true;
  for (std::size_t at = 0; at <= rest.size();) {
    std::size_t end = std::min(rest.find(',', at), rest.size());
    std::string_view d = trim(rest.substr(at, end - at));
    at = end + 1;
    if (auto colon = d.find(':'); colon != std::string_view::npos) {
      std::string_view who = trim(d.substr(0, colon));
      // "unavailable_after: <date>" is a directive, not an agent
      if (who == "unavailable_after") continue;
      for_us = who == me || who == "robots";
      d = trim(d.substr(colon + 1));
    }
    if (!for_us) continue;
    if (d == "nofollow" || d == "none") nofollow = true;
    if (d == "noimageindex") noimageindex = true;
  }
}

std::string agent_token(std::string_view ua) {
  std::size_t end = 0;
  while (end < ua.size() && (std::isalnum(static_cast<unsigned char>(ua[end])) || ua[end] == '_' ||
                             ua[end] == '-'))
    ++end;
  return lower(ua.substr(0, end));
}

Robots Robots::disallow_all() {
  Robots r;
  r.rules_.push_back({"/", false});
  return r;
}

Robots Robots::parse(std::string_view text, std::string_view agent) {
  const std::string me = lower(agent);
  if (text.size() > kMaxRobotsBytes) text = text.substr(0, kMaxRobotsBytes);
  // a UTF-8 byte order mark would make the first line's key unknown
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  struct Group {
    std::vector<std::string> agents;
    std::vector<Rule> rules;
    std::optional<double> delay;
  };
  std::vector<Group> groups;
  bool in_agents = false;  // consecutive user-agent lines share one group
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find_first_of("\r\n", pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (key == "user-agent") {
      if (!in_agents) groups.emplace_back();
      // "crawler_ha/1.0" names the product crawler_ha, as our own token does
      groups.back().agents.push_back(value == "*" ? std::string("*") : agent_token(value));
      in_agents = true;
      continue;
    }
    if (groups.empty()) continue;  // rules before any user-agent line belong to nobody
    in_agents = false;
    if (key == "allow" || key == "disallow") {
      // An empty Disallow allows everything: it adds no rule.
      if (!value.empty()) groups.back().rules.push_back({canonical_escapes(value), key == "allow"});
    } else if (key == "crawl-delay") {
      char* end = nullptr;
      std::string v(value);
      double d = std::strtod(v.c_str(), &end);
      if (end != v.c_str() && d >= 0) groups.back().delay = d;
    }
  }
  // The groups naming our token are merged; only without them does '*' apply.
  Robots out;
  bool specific = false;
  for (const auto& g : groups)
    for (const auto& a : g.agents)
      if (a != "*" && !me.empty() && a == me) specific = true;
  for (const auto& g : groups) {
    bool applies = false;
    for (const auto& a : g.agents) {
      bool mine = a != "*" && !me.empty() && a == me;
      if (specific ? mine : a == "*") applies = true;
    }
    if (!applies) continue;
    out.rules_.insert(out.rules_.end(), g.rules.begin(), g.rules.end());
    if (g.delay) out.crawl_delay_ = g.delay;
  }
  return out;
}

bool Robots::matches(std::string_view pattern, std::string_view path) {
  // Iterative wildcard match: '*' any run, '$' at the end anchors.
  bool anchored = !pattern.empty() && pattern.back() == '$';
  if (anchored) pattern.remove_suffix(1);
  std::size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p, ++s;
    } else if (p == pattern.size() && !anchored) {
      return true;  // the pattern is a prefix of the path
    } else if (star != std::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool Robots::allowed(std::string_view path_in) const {
  std::string path = canonical_escapes(path_in.empty() ? "/" : path_in);
  if (path == "/robots.txt") return true;
  std::size_t best_len = 0;
  bool best_allow = true, found = false;
  for (const auto& r : rules_) {
    if (!matches(r.pattern, path)) continue;
    std::size_t len = r.pattern.size();
    if (!found || len > best_len || (len == best_len && r.allow && !best_allow)) {
      best_len = len;
      best_allow = r.allow;
      found = true;
    }
  }
  return best_allow;
}

}  // namespace crawler
