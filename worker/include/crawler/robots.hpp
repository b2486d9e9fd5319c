// robots.txt (RFC 9309): groups by user-agent, allow/disallow with * and $,
// the longest match wins (allow on a tie), Crawl-delay; the Sitemap: lines.
#pragma once
#include <cstddef>
#include <cstdint>
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

  // `path` is the URL's path and query ("/a/b?c"), percent-encoded.  Linear
  // in the path for each rule, and rules are tried longest first, so the
  // cost of a call is bounded by the file (at most 500 KiB) times nothing
  // worse than the path's length.
  bool allowed(std::string_view path) const;
  std::optional<double> crawl_delay() const { return crawl_delay_; }
  // The total length of the rules that apply: what one allowed() call may
  // cost, for a caller that keeps costly checks off its event loop.
  std::size_t pattern_bytes() const { return pattern_bytes_; }

 private:
  // A pattern split at its '*': each piece is found with its
  // Knuth-Morris-Pratt table, never by backtracking.
  struct Piece {
    std::uint32_t begin, size;  // in the pattern
  };
  struct Rule {
    std::string pattern;  // as written, escapes canonical
    std::size_t length = 0;  // precedence: the pattern's length
    bool allow = false;
    bool anchored = false;   // ends in '$'
    std::vector<Piece> pieces;  // at least one; the first is a prefix
    std::vector<std::uint32_t> border;  // each piece's table, at its place in the pattern
  };
  static Rule compile(std::string pattern, bool allow);
  static std::size_t find(const Rule& r, Piece piece, std::string_view path, std::size_t from);
  static bool matches(const Rule& r, std::string_view path);
  void order_rules();
  std::vector<Rule> rules_;  // by precedence
  std::size_t pattern_bytes_ = 0;  // counted once, in order_rules(): asked for every URL
  std::optional<double> crawl_delay_;
};

// Page-level directives (<meta name="robots">, X-Robots-Tag): which parts of
// a page, or which image, a crawler may take. Only those that concern an
// image crawler.
struct RobotsDirectives {
  bool nofollow = false;      // "nofollow" or "none": no links to pages are followed
  bool noimageindex = false;  // the page's images are not to be taken
  bool noindex = false;       // "noindex" or "none": this response is not to be kept
  // "noai" or "noimageai": the images are not to be used for AI training
  // (DeviantArt's directives, honoured by img2dataset). An image crawler
  // that feeds datasets takes them as it takes noimageindex.
  bool noimageai = false;
  void add(std::string_view value, std::string_view agent);
  // The directives of every value in `values` (a response's X-Robots-Tag
  // headers), as `agent` reads them.
  static RobotsDirectives of(const std::vector<std::string>& values, std::string_view agent);
  // Whether a page with these directives may give its images.
  bool page_images_allowed() const { return !noimageindex && !noimageai; }
  // Whether an image whose own response carries these directives
  // (X-Robots-Tag) may be stored: not under noindex, noimageindex, noai or
  // noimageai, as img2dataset decides.
  bool image_allowed() const { return !noindex && !noimageindex && !noimageai; }
  // The directive that refuses an image (image_allowed() false), for the
  // item's note; "" when it is allowed.
  std::string image_refusal() const;
};

// The most Sitemap: lines taken from one robots.txt.
constexpr std::size_t kMaxRobotsSitemaps = 1000;

// The sitemaps a robots.txt names (its Sitemap: lines, which belong to no
// user-agent group), absolute and normalised (url.hpp), unique, in order, at
// most kMaxRobotsSitemaps; a line whose URL is not an http(s) URL the
// crawler takes is skipped.
std::vector<std::string> robots_sitemaps(std::string_view text);

// The product token of a User-Agent string: "crawler_ha/0.1 (+url)" -> "crawler_ha".
std::string agent_token(std::string_view user_agent);

}  // namespace crawler
