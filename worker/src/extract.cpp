#include "crawler/extract.hpp"

#include <htmlcxx/html/ParserSax.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <optional>
#include <set>
#include <unordered_set>

#include "crawler/url.hpp"

namespace crawler {
namespace {

using htmlcxx::HTML::Node;

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

// Whether `s` holds `lower_letters` (lower-case ASCII letters only) in any
// case: c | 0x20 maps exactly the two cases of a letter to its lower case.
bool contains_ci(std::string_view s, std::string_view lower_letters) {
  const std::size_t n = lower_letters.size();
  for (std::size_t i = 0; i + n <= s.size(); ++i) {
    std::size_t k = 0;
    while (k < n && (static_cast<unsigned char>(s[i + k]) | 0x20) == static_cast<unsigned char>(lower_letters[k])) ++k;
    if (k == n) return true;
  }
  return false;
}

// The attributes of one start tag, read from its text ("<img src=a ...>")
// as the HTML tokenizer reads them: a name runs to a space, '/', '>' or
// '='; a value is quoted or runs to a space or '>'; of a repeated name the
// first counts.  Names compare without case; a value is entity-decoded when
// it is asked for, since most tags are asked for two or three of many.
// (htmlcxx's own attribute parser builds a map of every attribute, which
// a tag of 100,000 attributes makes the costliest thing on its page.)
class Attributes {
 public:
  explicit Attributes(std::string_view tag) {
    std::size_t i = tag.find_first_of(" \t\n\r\f/>");  // past "<name"
    while (i != std::string_view::npos && i < tag.size()) {
      while (i < tag.size() && (is_space(tag[i]) || tag[i] == '/')) ++i;
      if (i >= tag.size() || tag[i] == '>') break;
      std::size_t name_begin = i++;  // a leading '=' belongs to the name
      while (i < tag.size() && !is_space(tag[i]) && tag[i] != '/' && tag[i] != '>' && tag[i] != '=') ++i;
      std::string_view name = tag.substr(name_begin, i - name_begin);
      std::size_t j = i;
      while (j < tag.size() && is_space(tag[j])) ++j;
      std::string_view value;
      if (j < tag.size() && tag[j] == '=') {
        ++j;
        while (j < tag.size() && is_space(tag[j])) ++j;
        if (j < tag.size() && (tag[j] == '"' || tag[j] == '\'')) {
          std::size_t close = tag.find(tag[j], j + 1);
          std::size_t end = close == std::string_view::npos ? tag.size() : close;
          value = tag.substr(j + 1, end - j - 1);
          i = close == std::string_view::npos ? tag.size() : close + 1;
        } else {
          std::size_t b = j;
          while (j < tag.size() && !is_space(tag[j]) && tag[j] != '>') ++j;
          value = tag.substr(b, j - b);
          i = j;
        }
      }
      attrs_.emplace_back(name, value);
    }
  }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  std::string get(std::string_view name) const {
    const std::string_view* v = find(name);
    if (v == nullptr) return {};
    return v->find('&') == std::string_view::npos ? std::string(*v) : decode_entities(*v);
  }

 private:
  // `lower_name` is in lower case
  const std::string_view* find(std::string_view lower_name) const {
    for (const auto& [n, v] : attrs_) {
      if (n.size() != lower_name.size()) continue;
      std::size_t k = 0;
      while (k < n.size() && std::tolower(static_cast<unsigned char>(n[k])) == lower_name[k]) ++k;
      if (k == n.size()) return &v;
    }
    return nullptr;
  }
  std::vector<std::pair<std::string_view, std::string_view>> attrs_;
};

// The space-separated tokens of an attribute (rel), in lower case.
std::set<std::string> tokens(std::string_view s) {
  std::set<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    while (i < s.size() && is_space(s[i])) ++i;
    std::size_t b = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > b) out.insert(lower(s.substr(b, i - b)));
  }
  return out;
}

// The tags whose attributes can hold an image or a link; any other tag is
// looked at only when it has a style attribute.
bool may_refer(std::string_view tag) {
  static const std::unordered_set<std::string_view> kTags = {
      "img",  "source", "meta",  "link", "video",   "input",  "image", "feimage",
      "a",    "area",   "frame", "iframe", "base", "body", "table",  "td", "th"};
  return kTags.count(tag) > 0;
}

// Elements whose content a browser never reads as markup (template content
// is inert, title is text) although htmlcxx's tokenizer reports tags inside
// them; script, style, textarea, xmp and plaintext it reads as text itself.
bool is_inert_container(std::string_view tag) { return tag == "template" || tag == "title"; }

// One pass over htmlcxx's tokenizer (its SAX interface), never building a
// tree: time and memory are linear in the page, whatever it nests or leaves
// unclosed.  References are kept as written until the end, because the
// first <base href> and the robots meta tags hold for the whole page,
// wherever they stand in it.
class PageScanner : public htmlcxx::HTML::ParserSax {
 public:
  struct Ref {
    enum Kind { kImage, kPage, kLink, kNofollowLink } kind;
    std::string value;
  };
  std::vector<Ref> refs;
  std::optional<std::string> base;          // the first <base href>, as written
  std::vector<std::string> robots_metas;    // content of <meta name="robots"|AGENT>

  explicit PageScanner(std::string_view agent) : agent_(lower(agent)) {}

 protected:
  void foundTag(Node node, bool is_end) override {
    const std::string tag = lower(node.tagName());
    if (!inert_.empty()) {  // inside <template> or <title>: only its end counts
      if (tag == inert_) inert_depth_ += is_end ? -1 : 1;
      if (inert_depth_ == 0) inert_.clear();
      return;
    }
    if (is_end) {
      if (tag == "picture" && open_pictures_ > 0) --open_pictures_;
      if (tag == "style") in_style_ = false;
      return;
    }
    if (is_inert_container(tag)) {
      inert_ = tag;
      inert_depth_ = 1;
      return;
    }
    if (tag == "picture") ++open_pictures_;
    if (tag == "style") in_style_ = true;
    const bool styled = contains_ci(node.text(), "style");
    if (!styled && !may_refer(tag)) return;
    visit(tag, Attributes(node.text()));
  }

  void foundText(Node node) override {
    if (in_style_ && inert_.empty()) css(node.text());
  }

 private:
  void image(std::string v) {
    if (!v.empty()) refs.push_back({Ref::kImage, std::move(v)});
  }
  void page(std::string v) {
    if (!v.empty()) refs.push_back({Ref::kPage, std::move(v)});
  }
  void srcset(std::string_view v) {
    for (auto& u : parse_srcset(v)) image(std::move(u));
  }
  void css(std::string_view text) {
    for (auto& u : css_image_refs(text)) image(std::move(u));
  }

  void visit(const std::string& tag, const Attributes& a) {
    if (a.has("style")) css(a.get("style"));
    if (tag == "body" || tag == "table" || tag == "td" || tag == "th") image(a.get("background"));
    if (tag == "img") {
      image(a.get("src"));
      srcset(a.get("srcset"));
      for (const char* lazy : {"data-src", "data-original", "data-lazy-src", "data-full-src"})
        image(a.get(lazy));
      srcset(a.get("data-srcset"));
      srcset(a.get("data-lazy-srcset"));
    } else if (tag == "source") {
      // <source srcset> selects images (picture); <source src> is video or audio.
      srcset(a.get("srcset"));
      srcset(a.get("data-srcset"));
      if (open_pictures_ > 0) image(a.get("data-src"));
    } else if (tag == "meta") {
      static const std::set<std::string> kImageMeta = {
          "og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"};
      std::string key = lower(a.has("property") ? a.get("property") : a.get("name"));
      if (kImageMeta.count(key)) image(a.get("content"));
      std::string name = lower(a.get("name"));
      if (name == "robots" || (!agent_.empty() && name == agent_))
        robots_metas.push_back(a.get("content"));
    } else if (tag == "link") {
      auto rel = tokens(a.get("rel"));
      if (rel.count("icon") || rel.count("apple-touch-icon") ||
          rel.count("apple-touch-icon-precomposed") || rel.count("mask-icon") ||
          rel.count("image_src") || rel.count("apple-touch-startup-image")) {
        image(a.get("href"));
      } else if (rel.count("preload") && lower(a.get("as")) == "image") {
        image(a.get("href"));
        srcset(a.get("imagesrcset"));
      } else if (rel.count("stylesheet")) {
        page(a.get("href"));
      }
    } else if (tag == "video") {
      image(a.get("poster"));
    } else if (tag == "input") {
      if (lower(a.get("type")) == "image") image(a.get("src"));
    } else if (tag == "image" || tag == "feimage") {  // SVG
      image(a.has("href") ? a.get("href") : a.get("xlink:href"));
    } else if (tag == "a" || tag == "area") {
      std::string href = a.get("href");
      if (looks_like_image_path(href)) {
        image(std::move(href));
      } else if (!href.empty()) {
        bool nofollow = a.has("rel") && tokens(a.get("rel")).count("nofollow") > 0;
        refs.push_back({nofollow ? Ref::kNofollowLink : Ref::kLink, std::move(href)});
      }
    } else if (tag == "frame" || tag == "iframe") {
      page(a.get("src"));
    } else if (tag == "base" && !base && a.has("href")) {
      base = a.get("href");
    }
  }

  std::string agent_;
  std::string inert_;  // the inert element we are in, if any
  int inert_depth_ = 0;
  int open_pictures_ = 0;
  bool in_style_ = false;
};

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
  std::string_view ext = path.substr(dot + 1);
  if (ext.size() > 4) return false;  // the longest below: "jpeg", "jfif", "webp", "avif", ...
  char lower_ext[4];
  for (std::size_t i = 0; i < ext.size(); ++i)
    lower_ext[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(ext[i])));
  std::string_view e(lower_ext, ext.size());
  static constexpr std::string_view kExt[] = {"jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp",
                                              "bmp", "svg", "avif", "heic", "heif", "ico"};
  return std::find(std::begin(kExt), std::end(kExt), e) != std::end(kExt);
}

namespace {
// Resolves, deduplicates and caps one kind of reference.  Room for every
// reference is reserved up front, so the kept URLs never move and the set
// of those seen holds views of them instead of copies.
class Resolved {
 public:
  Resolved(const UrlResolver& base, std::size_t most) : base_(base) {
    kept_.reserve(std::min(most, kMaxLinksPerPage));
    seen_.reserve(std::min(most, kMaxLinksPerPage));
  }
  void add(std::string_view ref, std::size_t& dropped) {
    auto u = base_.resolve(ref);
    if (!u) return;
    if (kept_.size() >= kMaxLinksPerPage) {
      if (!seen_.count(*u)) ++dropped;
      return;
    }
    if (!seen_.insert(kept_.emplace_back(std::move(*u))).second) kept_.pop_back();
  }
  std::vector<std::string> take() {
    seen_.clear();
    return std::move(kept_);
  }

 private:
  const UrlResolver& base_;
  std::vector<std::string> kept_;  // never reallocated: see the constructor
  std::unordered_set<std::string_view> seen_;
};

Links extract(std::string_view html, std::string_view page_url, const RobotsDirectives* given,
              std::string_view agent) {
  PageScanner scan(given ? agent : std::string_view{});
  // htmlcxx's tokenizer reads the byte at the end of its input when a page
  // ends inside <script>, <style> or another literal element ("...<" or
  // "...</scr"): a std::string has a NUL there, a string_view need not.
  const std::string text(html);
  scan.parse(text.data(), text.data() + text.size());
  std::string base(page_url);
  if (scan.base)
    if (auto b = resolve_url(page_url, *scan.base)) base = std::move(*b);
  RobotsDirectives robots = given ? *given : RobotsDirectives{};
  for (const auto& content : scan.robots_metas) robots.add(content, agent);
  const bool obey = given != nullptr;
  Links out;
  const UrlResolver resolver(base);
  std::size_t n_images = 0;
  for (const auto& r : scan.refs) n_images += r.kind == PageScanner::Ref::kImage;
  Resolved images(resolver, n_images), pages(resolver, scan.refs.size() - n_images);
  for (const auto& r : scan.refs) {
    switch (r.kind) {
      case PageScanner::Ref::kImage:
        if (!obey || robots.page_images_allowed()) images.add(r.value, out.dropped);
        break;
      case PageScanner::Ref::kPage:  // stylesheets and frames are part of the page
        pages.add(r.value, out.dropped);
        break;
      case PageScanner::Ref::kLink:
      case PageScanner::Ref::kNofollowLink:
        if (obey && (robots.nofollow || r.kind == PageScanner::Ref::kNofollowLink)) break;
        pages.add(r.value, out.dropped);
        break;
    }
  }
  out.images = images.take();
  out.pages = pages.take();
  return out;
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
  const UrlResolver base(base_url);  // parsed once for all the stylesheet's references
  for (const auto& ref : css_image_refs(css))
    if (auto u = base.resolve(ref); u && seen.insert(*u).second) out.push_back(*u);
  return out;
}

}  // namespace crawler
