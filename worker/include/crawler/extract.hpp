// Finding every image and link in an HTML page or a stylesheet (htmlcxx).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "crawler/robots.hpp"

namespace crawler {

struct Links {
  std::vector<std::string> images;  // absolute, normalised, unique, document order
  std::vector<std::string> pages;   // pages, frames and stylesheets to follow
  std::string refused;              // non-empty: the page was not parsed, and why
};

// The deepest the parser's tree may get.  htmlcxx keeps every start tag
// open until its end tag (it knows neither void elements nor implied ends),
// so a page's depth is what it would build: 135,000 levels overflowed the
// stack when the tree was destroyed, killing the worker, and the work of an
// end tag grows with the depth (quadratic pages).  A deeper page is refused
// (Links::refused), costing one failed URL.
constexpr std::size_t kMaxParseDepth = 10000;

// The depth htmlcxx's tree would reach for `html`, in one linear pass.
std::size_t parse_depth(std::string_view html);

// Extracts from an HTML document whose address is `page_url` (the first
// <base href> overrides it for resolution).
Links extract_html(std::string_view html, std::string_view page_url);

// The same, obeying the page's robots directives: `given` (from the
// X-Robots-Tag header) with those of its <meta name="robots"> and
// <meta name="AGENT"> tags. nofollow drops the links to pages (stylesheets
// and frames, which are part of the page, stay), as does rel="nofollow" on a
// link; noimageindex drops the images.
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
