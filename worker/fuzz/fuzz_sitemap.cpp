// Fuzz target: sitemaps (parse_sitemap, gunzip: all of src/sitemap.cpp).
// A sitemap comes from any site, named by its robots.txt or by a user, and
// is read by libxml2's streaming reader and zlib.
//
// Input: one byte of flags, then the body as fetched. Flags: bit 0, the body
// is the start of a longer file (truncated); bit 1, the body is gzipped by
// the harness first, so that whole gzip streams of fuzzed XML reach the
// inflater as well as the fuzzed bytes themselves (which start with the
// gzip magic often enough once the corpus has one); bits 2-7 pick small
// limits, so that cutting a file at its URL, byte and image limits is
// reached with small inputs.
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour, leak, crash or super-linear
//     blow-up (libFuzzer's -timeout);
//   - an error sets nothing else; an index lists no pages and no images;
//   - the limits hold: at most max_urls pages and sitemaps together, at
//     most max_images_per_page images per listed page;
//   - every URL is an absolute http(s) URL already in normal form
//     (normalize_url gives it back unchanged), unique within its list, and
//     every image's page is one of the pages;
//   - the same body parsed twice gives the same entries (libxml2's global
//     state carries nothing from one parse to the next);
//   - gzipped, a body that inflates within the byte limit gives the same
//     entries as the body itself.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crawler/sitemap.hpp"
#include "crawler/url.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// `raw` as one gzip member (zlib with the gzip wrapper: windowBits 15 + 16).
std::string gzip(std::string_view raw) {
  z_stream z{};
  check(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  check(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

bool same(const crawler::SitemapEntries& a, const crawler::SitemapEntries& b) {
  if (a.images.size() != b.images.size()) return false;
  for (std::size_t i = 0; i < a.images.size(); ++i)
    if (a.images[i].url != b.images[i].url || a.images[i].page != b.images[i].page) return false;
  return a.index == b.index && a.pages == b.pages && a.sitemaps == b.sitemaps && a.skipped == b.skipped &&
         a.cut == b.cut && a.error == b.error;
}

bool normal_url(const std::string& u) {
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) return false;
  auto again = crawler::normalize_url(u);
  return again && *again == u;
}

template <class T, class Key>
bool unique(const std::vector<T>& v, Key key) {
  std::set<std::string> seen;
  for (const auto& e : v)
    if (!seen.insert(key(e)).second) return false;
  return true;
}

void check_entries(const crawler::SitemapEntries& e, const crawler::SitemapLimits& limits) {
  if (!e.error.empty()) {
    check(!e.index && e.pages.empty() && e.images.empty() && e.sitemaps.empty() && e.skipped == 0 &&
          e.cut.empty());
    return;
  }
  if (e.index) check(e.pages.empty() && e.images.empty());
  check(e.pages.size() + e.sitemaps.size() <= limits.max_urls);
  std::set<std::string> pages(e.pages.begin(), e.pages.end());
  check(pages.size() == e.pages.size());
  check(unique(e.sitemaps, [](const std::string& s) { return s; }));
  check(unique(e.images, [](const crawler::SitemapImage& i) { return i.url; }));
  std::map<std::string, std::size_t> per_page;
  for (const auto& p : e.pages) check(normal_url(p));
  for (const auto& s : e.sitemaps) check(normal_url(s));
  for (const auto& i : e.images) {
    check(normal_url(i.url));
    check(pages.count(i.page) == 1);
    check(++per_page[i.page] <= limits.max_images_per_page);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool truncated = flags & 1;
  crawler::SitemapLimits limits;
  if (flags & 4) limits.max_urls = 1 + (flags >> 5);         // 1-8 URLs
  if (flags & 8) limits.max_bytes = 64 + 32 * (flags >> 5);  // 64-288 bytes
  if (flags & 16) limits.max_images_per_page = flags >> 5;   // 0-7 images

  std::string zipped;
  std::string_view input = body;
  if (flags & 2) {
    zipped = gzip(body);
    input = zipped;
  }
  auto entries = crawler::parse_sitemap(input, truncated, limits);
  check_entries(entries, limits);
  check(same(entries, crawler::parse_sitemap(input, truncated, limits)));

  // The same entries from the plain body when it inflates within the limit
  // (and is not itself gzip, which the harness would have wrapped twice).
  if ((flags & 2) && body.size() < limits.max_bytes && !crawler::is_gzip(body))
    check(same(entries, crawler::parse_sitemap(body, truncated, limits)));
  return 0;
}
