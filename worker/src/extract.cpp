#include "crawler/extract.hpp"

#include <htmlcxx/html/ParserDom.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "crawler/url.hpp"

namespace crawler {
namespace {

using htmlcxx::HTML::Node;
using Tree = tree<Node>;

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}

unsigned long digit_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned long>(c - '0');
  return static_cast<unsigned long>(std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

void append_utf8(std::string& out, unsigned long cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Attributes of a tag, names in lower case, values entity-decoded.
std::map<std::string, std::string> attributes_of(Node node) {
  node.parseAttributes();
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : node.attributes()) out.emplace(lower(k), decode_entities(v));
  return out;
}

std::string get(const std::map<std::string, std::string>& a, const std::string& key) {
  auto it = a.find(key);
  return it == a.end() ? std::string() : it->second;
}

std::set<std::string> tokens(std::string_view s) {
  std::set<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string t; in >> t;) out.insert(lower(t));
  return out;
}

// Collects resolved URLs, keeping first-seen order and dropping repeats.
class Collector {
 public:
  explicit Collector(std::string base) : base_(std::move(base)) {}
  void set_base(std::string b) { base_ = std::move(b); }
  const std::string& base() const { return base_; }
  void image(std::string_view ref) {
    if (!robots_.noimageindex) add(ref, links_.images, seen_images_);
  }
  void page(std::string_view ref) { add(ref, links_.pages, seen_pages_); }
  // A link (a, area) to a page, which nofollow (the page's, or the link's
  // own rel="nofollow") concerns when robots directives are obeyed.
  void link(std::string_view ref, bool rel_nofollow) {
    if (obey_ && (robots_.nofollow || rel_nofollow)) return;
    page(ref);
  }
  void obey(const RobotsDirectives& d) {
    robots_ = d;
    obey_ = true;
  }
  void srcset(std::string_view v) {
    for (const auto& u : parse_srcset(v)) image(u);
  }
  void css(std::string_view text) {
    for (const auto& u : css_image_refs(text)) image(u);
  }
  Links take() { return std::move(links_); }

 private:
  void add(std::string_view ref, std::vector<std::string>& to, std::set<std::string>& seen) {
    if (ref.empty()) return;
    auto u = resolve_url(base_, ref);
    if (u && seen.insert(*u).second) to.push_back(*u);
  }
  std::string base_;
  RobotsDirectives robots_;
  bool obey_ = false;
  Links links_;
  std::set<std::string> seen_images_, seen_pages_;
};

void walk(const Tree& dom, Collector& out);

void visit_tag(const Node& node, const std::string& parent, Collector& out) {
  const std::string tag = lower(node.tagName());
  auto a = attributes_of(node);
  if (auto s = a.find("style"); s != a.end()) out.css(s->second);
  if (a.count("background") && (tag == "body" || tag == "table" || tag == "td" || tag == "th"))
    out.image(a["background"]);

  if (tag == "img") {
    out.image(get(a, "src"));
    out.srcset(get(a, "srcset"));
    for (const char* lazy : {"data-src", "data-original", "data-lazy-src", "data-full-src"})
      out.image(get(a, lazy));
    out.srcset(get(a, "data-srcset"));
    out.srcset(get(a, "data-lazy-srcset"));
  } else if (tag == "source") {
    // <source srcset> selects images (picture); <source src> is video or audio.
    out.srcset(get(a, "srcset"));
    out.srcset(get(a, "data-srcset"));
    if (parent == "picture") out.image(get(a, "data-src"));
  } else if (tag == "meta") {
    static const std::set<std::string> kImageMeta = {
        "og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"};
    std::string key = lower(a.count("property") ? a["property"] : get(a, "name"));
    if (kImageMeta.count(key)) out.image(get(a, "content"));
  } else if (tag == "link") {
    auto rel = tokens(get(a, "rel"));
    if (rel.count("icon") || rel.count("apple-touch-icon") ||
        rel.count("apple-touch-icon-precomposed") || rel.count("mask-icon") ||
        rel.count("image_src") || rel.count("apple-touch-startup-image")) {
      out.image(get(a, "href"));
    } else if (rel.count("preload") && lower(get(a, "as")) == "image") {
      out.image(get(a, "href"));
      out.srcset(get(a, "imagesrcset"));
    } else if (rel.count("stylesheet")) {
      out.page(get(a, "href"));
    }
  } else if (tag == "video") {
    out.image(get(a, "poster"));
  } else if (tag == "input") {
    if (lower(get(a, "type")) == "image") out.image(get(a, "src"));
  } else if (tag == "image" || tag == "feimage") {  // SVG
    out.image(a.count("href") ? a["href"] : get(a, "xlink:href"));
  } else if (tag == "a" || tag == "area") {
    std::string href = get(a, "href");
    if (looks_like_image_path(href)) out.image(href);
    else out.link(href, tokens(get(a, "rel")).count("nofollow") > 0);
  } else if (tag == "frame" || tag == "iframe") {
    out.page(get(a, "src"));
  }
}

void walk(const Tree& dom, Collector& out) {
  for (auto it = dom.begin(); it != dom.end(); ++it) {
    if (it->isComment()) continue;
    if (!it->isTag()) continue;
    const std::string tag = lower(it->tagName());
    std::string parent;
    if (auto p = dom.parent(it); p != nullptr && dom.is_valid(p)) parent = lower(p->tagName());
    visit_tag(*it, parent, out);
    if (tag == "style") {
      for (auto c = dom.begin(it); c != dom.end(it); ++c)
        if (!c->isTag() && !c->isComment()) out.css(c->text());
    } else if (tag == "noscript") {
      // A browser with scripting on reads noscript content as text, and so
      // may the parser: parse that text again as the markup it is.
      std::string inner;
      for (auto c = dom.begin(it); c != dom.end(it); ++c)
        if (!c->isTag() && !c->isComment()) inner += c->text();
      if (inner.find('<') != std::string::npos && parse_depth(inner) <= kMaxParseDepth) {
        htmlcxx::HTML::ParserDom parser;
        Tree sub = parser.parseTree(inner);
        walk(sub, out);
      }
    } else if (tag == "textarea" || tag == "script" || tag == "template" || tag == "xmp") {
      it.skip_children();  // never markup
    }
  }
}

std::string strip_css_comments(std::string_view css) {
  std::string out;
  out.reserve(css.size());
  for (std::size_t i = 0; i < css.size();) {
    if (css.compare(i, 2, "/*") == 0) {
      auto e = css.find("*/", i + 2);
      if (e == std::string_view::npos) break;
      i = e + 2;
      out.push_back(' ');
    } else {
      out.push_back(css[i++]);
    }
  }
  return out;
}

// Reads a CSS string or bare url() argument starting at i; handles escapes.
std::string css_unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      std::size_t j = i + 1, n = 0;
      unsigned long cp = 0;
      while (j < s.size() && n < 6 && std::isxdigit(static_cast<unsigned char>(s[j]))) {
        cp = cp * 16 + digit_value(s[j]);
        ++j, ++n;
      }
      if (n > 0) {
        if (j < s.size() && is_space(s[j])) ++j;
        append_utf8(out, cp);
        i = j - 1;
      } else if (s[j] != '\n') {
        out.push_back(s[j]);
        i = j;
      } else {
        i = j;
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::size_t read_string(std::string_view s, std::size_t i, std::string* value) {
  char q = s[i];
  std::size_t j = i + 1;
  while (j < s.size() && s[j] != q) j += (s[j] == '\\') ? 2 : 1;
  *value = css_unescape(s.substr(i + 1, std::min(j, s.size()) - i - 1));
  return std::min(j + 1, s.size());
}

// Parses url(...) at position i (just after "url("). Returns the position
// after the closing parenthesis.
std::size_t read_url(std::string_view s, std::size_t i, std::string* value) {
  while (i < s.size() && is_space(s[i])) ++i;
  if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
    i = read_string(s, i, value);
    auto close = s.find(')', i);
    return close == std::string_view::npos ? s.size() : close + 1;
  }
  auto close = s.find(')', i);
  std::size_t end = close == std::string_view::npos ? s.size() : close;
  std::string_view raw = s.substr(i, end - i);
  while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
  *value = css_unescape(raw);
  return close == std::string_view::npos ? s.size() : close + 1;
}

bool keyword_at(std::string_view s, std::size_t i, std::string_view kw) {
  if (i + kw.size() > s.size()) return false;
  for (std::size_t k = 0; k < kw.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != kw[k]) return false;
  // not the tail of a longer identifier
  if (i > 0) {
    char p = s[i - 1];
    if (std::isalnum(static_cast<unsigned char>(p)) || p == '_' || (p == '-' && kw[0] != '-'))
      return false;
  }
  return true;
}

std::size_t skip_block(std::string_view s, std::size_t i) {
  auto open = s.find('{', i);
  if (open == std::string_view::npos) return s.size();
  int depth = 0;
  for (std::size_t j = open; j < s.size(); ++j) {
    if (s[j] == '{') ++depth;
    else if (s[j] == '}' && --depth == 0) return j + 1;
  }
  return s.size();
}

}  // namespace

namespace {

struct NamedEntity {
  std::string_view name;  // without the semicolon
  std::string_view utf8;
  bool legacy;            // also recognised without the semicolon
};

// Every named character reference of the HTML Standard, sorted by name.
constexpr NamedEntity kNamedEntities[] = {
#include "html_entities.inc"
};

const NamedEntity* find_entity(std::string_view name) {
  auto it = std::lower_bound(std::begin(kNamedEntities), std::end(kNamedEntities), name,
                             [](const NamedEntity& e, std::string_view n) { return e.name < n; });
  return it != std::end(kNamedEntities) && it->name == name ? it : nullptr;
}

}  // namespace

std::string decode_entities(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    std::size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      ++j;
      bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
      if (hex) ++j;
      std::size_t start = j;
      unsigned long cp = 0;
      while (j < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[j]))
                                  : std::isdigit(static_cast<unsigned char>(s[j])))) {
        if (cp < 0x110000) cp = cp * (hex ? 16 : 10) + digit_value(s[j]);
        ++j;
      }
      if (j == start) {
        out.push_back('&');
        continue;
      }
      if (j < s.size() && s[j] == ';') ++j;
      append_utf8(out, cp);
      i = j - 1;
      continue;
    }
    std::size_t start = j;
    while (j < s.size() && std::isalnum(static_cast<unsigned char>(s[j]))) ++j;
    std::string_view name = s.substr(start, j - start);
    const NamedEntity* e = find_entity(name);
    bool semi = j < s.size() && s[j] == ';';
    // Without the semicolon only the legacy entities count, and (in
    // attributes) not when followed by '=' — "?a=1&amp=2" stays as written.
    if (e != nullptr && (semi || (e->legacy && !(j < s.size() && s[j] == '=')))) {
      out.append(e->utf8);
      i = semi ? j : j - 1;
    } else {
      out.push_back('&');
    }
  }
  return out;
}

std::vector<std::string> parse_srcset(std::string_view s) {
  // HTML "parse a srcset attribute": URL runs to whitespace; a URL that ends
  // in commas loses them; descriptors run to a comma outside parentheses.
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (is_space(s[i]) || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    std::string url(s.substr(start, i - start));
    bool had_trailing_comma = false;
    while (!url.empty() && url.back() == ',') {
      url.pop_back();
      had_trailing_comma = true;
    }
    if (!had_trailing_comma) {
      int paren = 0;
      while (i < s.size()) {
        char c = s[i];
        if (c == '(') ++paren;
        else if (c == ')' && paren > 0) --paren;
        else if (c == ',' && paren == 0) break;
        ++i;
      }
    }
    if (!url.empty()) out.push_back(url);
  }
  return out;
}

std::vector<std::string> css_image_refs(std::string_view css_in) {
  std::string css = strip_css_comments(css_in);
  std::string_view s = css;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '"' || s[i] == '\'') {  // a string outside url()/image-set() is not a URL
      std::string ignored;
      i = read_string(s, i, &ignored);
    } else if (s[i] == '@' && keyword_at(s, i + 1, "import")) {
      auto semi = s.find(';', i);
      i = semi == std::string_view::npos ? s.size() : semi + 1;
    } else if (s[i] == '@' && keyword_at(s, i + 1, "font-face")) {
      i = skip_block(s, i);
    } else if (keyword_at(s, i, "url(")) {
      std::string v;
      i = read_url(s, i + 4, &v);
      if (!v.empty()) out.push_back(v);
    } else if (keyword_at(s, i, "image-set(") || keyword_at(s, i, "-webkit-image-set(")) {
      std::size_t j = s.find('(', i) + 1;
      int depth = 1;
      while (j < s.size() && depth > 0) {
        if (s[j] == '"' || s[j] == '\'') {
          std::string v;
          j = read_string(s, j, &v);
          if (!v.empty()) out.push_back(v);
        } else if (keyword_at(s, j, "url(")) {
          std::string v;
          j = read_url(s, j + 4, &v);
          if (!v.empty()) out.push_back(v);
        } else {
          if (s[j] == '(') ++depth;
          else if (s[j] == ')') --depth;
          ++j;
        }
      }
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

bool looks_like_image_path(std::string_view ref) {
  std::string_view path = ref.substr(0, ref.find_first_of("?#"));
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return false;
  static const std::set<std::string> kExt = {"jpg", "jpeg", "jpe", "jfif", "png", "gif",
                                             "webp", "bmp", "svg", "avif", "heic", "heif", "ico"};
  return kExt.count(lower(path.substr(dot + 1))) > 0;
}

std::size_t parse_depth(std::string_view html) {
  // Start tags push, an end tag pops down to its open element (if any is
  // open), as htmlcxx's ParserDom does; counts per name keep each step O(1)
  // amortised.  Comments, doctypes and processing instructions push nothing.
  std::vector<std::string> open;
  std::unordered_map<std::string, std::size_t> open_count;
  std::size_t deepest = 0;
  for (std::size_t i = html.find('<'); i != std::string_view::npos && i + 1 < html.size();
       i = html.find('<', i + 1)) {
    bool end = html[i + 1] == '/';
    std::size_t b = i + (end ? 2 : 1);
    if (b >= html.size() || !std::isalpha(static_cast<unsigned char>(html[b]))) {
      if (html.compare(i, 4, "<!--") == 0) {
        auto close = html.find("-->", i + 4);
        if (close == std::string_view::npos) break;
        i = close + 2;
      }
      continue;
    }
    std::size_t e = b;
    while (e < html.size() && !std::isspace(static_cast<unsigned char>(html[e])) && html[e] != '>' &&
           html[e] != '/')
      ++e;
    std::string name = lower(html.substr(b, e - b));
    if (!end) {
      open.push_back(name);
      ++open_count[name];
      deepest = std::max(deepest, open.size());
    } else if (open_count[name] > 0) {
      for (;;) {
        std::string top = std::move(open.back());
        open.pop_back();
        --open_count[top];
        if (top == name) break;
      }
    }
    i = e - 1;
  }
  return deepest;
}

namespace {
Links extract(std::string_view html, std::string_view page_url, const RobotsDirectives* given,
              std::string_view agent) {
  if (std::size_t depth = parse_depth(html); depth > kMaxParseDepth) {
    Links refused;
    refused.refused = "not parsed: elements nest " + std::to_string(depth) + " deep (the limit is " +
                      std::to_string(kMaxParseDepth) + ")";
    return refused;
  }
  htmlcxx::HTML::ParserDom parser;
  Tree dom = parser.parseTree(std::string(html));
  Collector out{std::string(page_url)};
  bool have_base = false;
  RobotsDirectives robots = given ? *given : RobotsDirectives{};
  // First pass: the first <base href>, and the robots meta tags (wherever
  // they are, they hold for the whole page).
  for (auto it = dom.begin(); it != dom.end(); ++it) {
    if (!it->isTag()) continue;
    const std::string tag = lower(it->tagName());
    if (tag == "base" && !have_base) {
      auto a = attributes_of(*it);
      if (a.count("href")) {
        if (auto b = resolve_url(page_url, a["href"])) out.set_base(*b);
        have_base = true;
      }
    } else if (tag == "meta" && given) {
      auto a = attributes_of(*it);
      std::string name = lower(get(a, "name"));
      if (name == "robots" || (!agent.empty() && name == lower(agent))) robots.add(get(a, "content"), agent);
    } else if (tag == "textarea" || tag == "script" || tag == "template" || tag == "xmp") {
      it.skip_children();
    }
  }
  if (given) out.obey(robots);
  walk(dom, out);
  return out.take();
}
}  // namespace

Links extract_html(std::string_view html, std::string_view page_url) {
  return extract(html, page_url, nullptr, {});
}

Links extract_html(std::string_view html, std::string_view page_url, RobotsDirectives given,
                   std::string_view agent) {
  return extract(html, page_url, &given, agent);
}

std::vector<std::string> extract_css(std::string_view css, std::string_view base_url) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& ref : css_image_refs(css))
    if (auto u = resolve_url(base_url, ref); u && seen.insert(*u).second) out.push_back(*u);
  return out;
}

}  // namespace crawler
