// robots.txt (RFC 9309): groups by user-agent, allow/disallow with * and $,
// the longest match wins (allow on a tie), Crawl-delay.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crawler {

class Robots {
 public:
  // Parses `text` for the crawler whose product token is `agent` (e.g.
  // "crawler_ha"); matching is case-insensitive, '*' groups are the fallback.
  static Robots parse(std::string_view text, std::string_view agent);
  static Robots allow_all() { return Robots{}; }
  static Robots disallow_all();

  // `path` is the URL's path and query ("/a/b?c"), percent-encoded.
  bool allowed(std::string_view path) const;
  std::optional<double> crawl_delay() const { return crawl_delay_; }

 private:
  struct Rule {
    std::string pattern;
    bool allow;
  };
  static bool matches(std::string_view pattern, std::string_view path);
  std::vector<Rule> rules_;
  std::optional<double> crawl_delay_;
};

// Page-level directives (<meta name="robots">, X-Robots-Tag): which parts of
// a page a crawler may take. Only the two that concern an image crawler.
struct RobotsDirectives {
  bool nofollow = false;      // "nofollow" or "none": no links to pages are followed
  bool noimageindex = false;  // the page's images are not to be taken
  void add(std::string_view value, std::string_view agent);
};

// The product token of a User-Agent string: "crawler_ha/0.1 (+url)" -> "crawler_ha".
std::string agent_token(std::string_view user_agent);

}  // namespace crawler
