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

// Upper-cases percent escapes so "%2f" and "%2F" compare equal.
std::string canonical_escapes(std::string_view s) {
  std::string r(s);
  for (std::size_t i = 0; i + 2 < r.size(); ++i)
    if (r[i] == '%') {
      r[i + 1] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[i + 1])));
      r[i + 2] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[i + 2])));
    }
  return r;
}

}  // namespace

void RobotsDirectives::add(std::string_view value, std::string_view agent) {
  // "nofollow, noimageindex", or "agent: nofollow" (only for that agent).
  std::string v = lower(value);
  std::string_view rest = v;
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    std::string_view who = trim(rest.substr(0, colon));
    // "unavailable_after: <date>" is a directive, not an agent
    if (who != "unavailable_after") {
      if (who != lower(agent) && who != "robots") return;
      rest.remove_prefix(colon + 1);
    }
  }
  for (std::size_t at = 0; at <= rest.size();) {
    std::size_t end = std::min(rest.find(',', at), rest.size());
    std::string_view d = trim(rest.substr(at, end - at));
    if (d == "nofollow" || d == "none") nofollow = true;
    if (d == "noimageindex") noimageindex = true;
    at = end + 1;
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
      groups.back().agents.push_back(lower(value));
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
