#include "crawler/robots.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "crawler/url.hpp"

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

// Calls field(key, value) for each "key: value" line of a robots.txt (its
// first kMaxRobotsBytes), the key in lower case, comments and blanks around
// both removed; other lines are skipped.
template <typename Field>
void for_each_field(std::string_view text, Field field) {
  if (text.size() > kMaxRobotsBytes) text = text.substr(0, kMaxRobotsBytes);
  // a UTF-8 byte order mark would make the first line's key unknown
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find_first_of("\r\n", pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    field(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
}

}  // namespace

std::vector<std::string> robots_sitemaps(std::string_view text) {
  std::vector<std::string> urls;
  for_each_field(text, [&](const std::string& key, std::string_view value) {
    if (key != "sitemap" || urls.size() >= kMaxRobotsSitemaps) return;
    auto url = normalize_url(value);
    if (url && std::find(urls.begin(), urls.end(), *url) == urls.end()) urls.push_back(std::move(*url));
  });
  return urls;
}

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
    if (d == "noindex" || d == "none") noindex = true;
    if (d == "noimageindex") noimageindex = true;
    if (d == "noai" || d == "noimageai") noimageai = true;
  }
}

RobotsDirectives RobotsDirectives::of(const std::vector<std::string>& values, std::string_view agent) {
  RobotsDirectives d;
  for (const auto& v : values) d.add(v, agent);
  return d;
}

std::string RobotsDirectives::image_refusal() const {
  if (noimageai) return "noimageai";
  if (noimageindex) return "noimageindex";
  if (noindex) return "noindex";
  return "";
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
  r.rules_.push_back(compile("/", false));
  r.order_rules();
  return r;
}

void Robots::order_rules() {
  // The longest pattern wins, and of two as long, allow; a rule written
  // twice is matched once.
  std::sort(rules_.begin(), rules_.end(), [](const Rule& a, const Rule& b) {
    if (a.length != b.length) return a.length > b.length;
    if (a.allow != b.allow) return a.allow;
    return a.pattern < b.pattern;
  });
  rules_.erase(std::unique(rules_.begin(), rules_.end(),
                           [](const Rule& a, const Rule& b) { return a.allow == b.allow && a.pattern == b.pattern; }),
               rules_.end());
  pattern_bytes_ = 0;
  for (const auto& r : rules_) pattern_bytes_ += r.pattern.size();
}

Robots Robots::parse(std::string_view text, std::string_view agent) {
  const std::string me = lower(agent);
  struct Group {
    std::vector<std::string> agents;
    std::vector<std::pair<std::string, bool>> rules;  // pattern, allow
    std::optional<double> delay;
  };
  std::vector<Group> groups;
  bool in_agents = false;  // consecutive user-agent lines share one group
  for_each_field(text, [&](const std::string& key, std::string_view value) {
    if (key == "user-agent") {
      if (!in_agents) groups.emplace_back();
      // "crawler_ha/1.0" names the product crawler_ha, as our own token does
      groups.back().agents.push_back(value == "*" ? std::string("*") : agent_token(value));
      in_agents = true;
      return;
    }
    if (groups.empty()) return;  // rules before any user-agent line belong to nobody
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
  });
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
    for (const auto& [pattern, allow] : g.rules) out.rules_.push_back(compile(pattern, allow));
    if (g.delay) out.crawl_delay_ = g.delay;
  }
  out.order_rules();
  return out;
}

Robots::Rule Robots::compile(std::string pattern, bool allow) {
  Rule r;
  r.allow = allow;
  r.length = pattern.size();
  r.anchored = !pattern.empty() && pattern.back() == '$';
  const std::size_t end = pattern.size() - (r.anchored ? 1 : 0);
  // the failure function of Knuth-Morris-Pratt for each piece: the longest
  // proper border of each of its prefixes, so a search never steps back
  r.border.assign(end, 0);
  for (std::size_t at = 0;;) {
    std::size_t star = std::min(pattern.find('*', at), end);
    // "**" is one "*": an empty piece between stars matches anywhere.
    if (r.pieces.empty() || star > at || star == end) {
      r.pieces.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(star - at)});
      for (std::size_t i = 1, k = 0; i < star - at; ++i) {
        while (k > 0 && pattern[at + i] != pattern[at + k]) k = r.border[at + k - 1];
        if (pattern[at + i] == pattern[at + k]) ++k;
        r.border[at + i] = static_cast<std::uint32_t>(k);
      }
    }
    if (star == end) break;
    at = star + 1;
  }
  r.pattern = std::move(pattern);
  return r;
}

std::size_t Robots::find(const Rule& r, Piece piece, std::string_view path, std::size_t from) {
  if (piece.size == 0) return from;
  const char* t = r.pattern.data() + piece.begin;
  const std::uint32_t* border = r.border.data() + piece.begin;
  for (std::size_t i = from, k = 0; i < path.size(); ++i) {
    while (k > 0 && path[i] != t[k]) k = border[k - 1];
    if (path[i] == t[k] && ++k == piece.size) return i + 1;
  }
  return std::string_view::npos;
}

bool Robots::matches(const Rule& r, std::string_view path) {
  // Only '*' is a wildcard, so the leftmost occurrence of each piece after
  // the previous one is as good as any: one forward pass, linear in the
  // path and the pattern (a backtracking match is their product).
  const auto& pieces = r.pieces;
  std::string_view first(r.pattern.data() + pieces[0].begin, pieces[0].size);
  if (path.compare(0, first.size(), first) != 0) return false;
  if (pieces.size() == 1) return !r.anchored || path.size() == first.size();
  std::size_t pos = first.size();
  for (std::size_t i = 1; i + 1 < pieces.size(); ++i) {
    pos = find(r, pieces[i], path, pos);
    if (pos == std::string_view::npos) return false;
  }
  std::string_view last(r.pattern.data() + pieces.back().begin, pieces.back().size);
  if (r.anchored)
    return path.size() >= pos + last.size() && path.compare(path.size() - last.size(), last.size(), last) == 0;
  return find(r, pieces.back(), path, pos) != std::string_view::npos;
}

bool Robots::allowed(std::string_view path_in) const {
  std::string path = canonical_escapes(path_in.empty() ? "/" : path_in);
  if (path == "/robots.txt") return true;
  // Rules are sorted by precedence: the first that matches decides.
  for (const auto& r : rules_)
    if (matches(r, path)) return r.allow;
  return true;
}


}  // namespace crawler
