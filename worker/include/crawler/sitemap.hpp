// Sitemaps (sitemaps.org protocol 0.9): a <urlset> of pages, with the
// images Google's image extension lists for each; a <sitemapindex> of more
// sitemaps; either gzipped; or a plain list of URLs, one a line. Read with
// libxml2's streaming reader (no tree: memory stays that of the entries), no
// network, no DTD, no entity expanded; gzip inflated with zlib, never past
// the protocol's limits, so a hostile file costs its limits and no more.
// The Sitemap: lines of a robots.txt are read by robots.hpp.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace crawler {

// The protocol's limits for one file: 50,000 URLs, 50 MB uncompressed
// (52,428,800 bytes). Past them the file is cut off, not refused: what came
// before is kept and SitemapEntries::cut says so.
struct SitemapLimits {
  std::size_t max_urls = 50000;
  std::size_t max_bytes = 50u * 1024 * 1024;
  // Images listed with one page (Google's image extension takes 1,000).
  std::size_t max_images_per_page = 1000;
};

// An image listed with a page (<image:image><image:loc>).
struct SitemapImage {
  std::string url;   // absolute, normalised
  std::string page;  // the <loc> of its <url>: where it is found
};

// What a sitemap lists, each URL absolute and normalised (url.hpp), in
// document order, unique within its list.
struct SitemapEntries {
  bool index = false;                  // a <sitemapindex>: `sitemaps` only
  std::vector<std::string> pages;      // <urlset><url><loc>, or the lines of a text sitemap
  std::vector<SitemapImage> images;    // <image:image><image:loc> with their page
  std::vector<std::string> sitemaps;   // <sitemapindex><sitemap><loc>
  std::size_t skipped = 0;             // entries whose URL is not an http(s) URL the crawler takes
  std::string cut;                     // why the rest of the file was not read; "" when it was read whole
  std::string error;                   // not a sitemap, and why ("" when it is one); nothing else is set then
};

// The entries of the sitemap `body` (as fetched: gzipped or not, the caller
// needs not say; the gzip magic bytes decide). `truncated`: the body is
// the start of a longer file (the transfer's byte limit cut it), so an end
// that is not well formed is a cut, not an error. A file past `limits` is
// cut off at them; a gzip body that inflates past max_bytes is inflated no
// further. Not XML and not a list of URLs, not well formed (when not cut),
// not UTF-8 (nor in the encoding it declares), with a DTD, or with another
// root than <urlset> or <sitemapindex>: `error` says which. Never throws
// but std::bad_alloc; safe to call from several threads at once.
SitemapEntries parse_sitemap(std::string_view body, bool truncated = false, const SitemapLimits& limits = {});

// Whether `body` starts with the gzip magic bytes (1f 8b).
bool is_gzip(std::string_view body);

// Inflates the gzip stream `gz` into `out`, at most `max_bytes` of it;
// returns "" when whole, "cut" when `max_bytes` stopped it, or zlib's reason
// (a corrupt or truncated stream: what was inflated before it stays in `out`).
std::string gunzip(std::string_view gz, std::size_t max_bytes, std::string& out);

// libxml2's global state set up: called once by the first parse_sitemap();
// a program that also reaches libxml2 on other threads (libvips' loaders)
// calls it first, from its main thread, as libxml2 asks.
void prepare_sitemap_parser();

}  // namespace crawler
