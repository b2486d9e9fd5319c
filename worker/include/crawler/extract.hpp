// Finding every image and link in an HTML page or a stylesheet: one pass
// over htmlcxx's tokenizer, no tree, so time and memory are linear in the
// page whatever it nests, leaves unclosed or repeats.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "crawler/robots.hpp"

namespace crawler {

struct Links {
  std::vector<std::string> images;  // absolute, normalised, unique, document order
  std::vector<std::string> pages;   // pages, frames and stylesheets to follow
  std::size_t dropped = 0;          // distinct URLs left out beyond kMaxLinksPerPage
  std::string refused;              // non-empty: the page was not parsed, and why
};

// The most distinct image URLs, and the most distinct page URLs, taken from
// one page; the rest are counted in Links::dropped.  Parsing is linear in the
// page (bounded by max_page_bytes), but what its links cost afterwards (the
// worker's memory, the frontier's rows) grows with their number: a 20 MB page
// of bare <img> tags names 500,000 images.
constexpr std::size_t kMaxLinksPerPage = 100000;

// Extracts from an HTML document whose address is `page_url` (the first
// <base href> overrides it for resolution).  Content a browser never reads
// as markup (comments, script, style other than its CSS, textarea, xmp,
// template, title) gives nothing; noscript content is read as markup (the
// images a page shows without scripts).  Never throws on any input except
// std::bad_alloc.
Links extract_html(std::string_view html, std::string_view page_url);

// The same, obeying the page's robots directives: `given` (from the
// X-Robots-Tag header) with those of its <meta name="robots"> and
// <meta name="AGENT"> tags. nofollow drops the links to pages (stylesheets
// and frames, which are part of the page, stay), as does rel="nofollow" on a
// link; noimageindex, noai and noimageai drop the images.
Links extract_html(std::string_view html, std::string_view page_url, RobotsDirectives given,
                   std::string_view agent);

// Image URLs in CSS text (url() and image-set()), resolved against `base_url`.
// @import and @font-face sources are not images and are left out.
std::vector<std::string> extract_css(std::string_view css, std::string_view base_url);

// Building blocks, exposed for the tests.
std::string decode_entities(std::string_view s);
std::vector<std::string> parse_srcset(std::string_view srcset);
std::vector<std::string> css_image_refs(std::string_view css);
bool looks_like_image_path(std::string_view url);

}  // namespace crawler
