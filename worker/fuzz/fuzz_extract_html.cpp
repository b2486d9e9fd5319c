// Fuzz target: the HTML and CSS extractor (src/extract.cpp), which reads
// every page the crawler fetches.
//
// Input: byte 0 chooses the call, the rest is the page (or stylesheet).
//   bit 0     the robots overload of extract_html (agent "crawler_ha")
//   bit 1, 2  the X-Robots-Tag directives given to it: nofollow, noimageindex
//   bits 3-5  the page URL, one of kPageUrls (plain, port, IPv6, IDN, query,
//             an https base with a path, ...)
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour, uncaught exception or crash in
//     extract_html, extract_css, parse_srcset, css_image_refs,
//     decode_entities, looks_like_image_path, nor time beyond libFuzzer's
//     -timeout (the extractor is to be linear in the page);
//   - a refused page (Links::refused) gives no URL;
//   - every URL in Links::images and Links::pages, and from extract_css, is
//     absolute and normalised (normalize_url gives it back unchanged) and
//     appears once in its list, as Links documents;
//   - noimageindex given in the header leaves no image.
#include <clocale>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crawler/extract.hpp"
#include "crawler/url.hpp"

namespace {

constexpr std::string_view kPageUrls[] = {
    "http://h.test/",
    "http://h.test/a/b/page.html?q=1&r=2",
    "https://www.example.org:8443/dir/",
    "http://[::1]:8080/x/y",
    "http://192.168.0.1/index.php?p=../../",
    "http://b\xc3\xbc" "cher.test/caf\xc3\xa9/",
    "https://h.test/%7Euser/%2e%2e/p",
    "http://h.test",
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Absolute, normalised and unique: what Links promises its users (the
// frontier keys URLs by their exact spelling).
void check_urls(const std::vector<std::string>& urls) {
  std::set<std::string_view> seen;
  for (const auto& u : urls) {
    auto n = crawler::normalize_url(u);
    check(n.has_value() && *n == u);
    check(seen.insert(u).second);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libidn2 (curl's IDN conversion) needs a UTF-8 locale, as in main().
  std::setlocale(LC_CTYPE, "C.UTF-8");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view page = kPageUrls[(mode >> 3) & 7];

  crawler::Links links;
  bool noimageindex = false;
  if (mode & 1) {
    crawler::RobotsDirectives given;
    given.nofollow = (mode & 2) != 0;
    given.noimageindex = noimageindex = (mode & 4) != 0;
    links = crawler::extract_html(text, page, given, "crawler_ha");
  } else {
    links = crawler::extract_html(text, page);
  }
  if (!links.refused.empty()) check(links.images.empty() && links.pages.empty());
  check_urls(links.images);
  check_urls(links.pages);
  if (noimageindex) check(links.images.empty());

  check_urls(crawler::extract_css(text, page));
  for (const auto& u : crawler::parse_srcset(text)) check(!u.empty());
  for (const auto& u : crawler::css_image_refs(text)) check(!u.empty());
  crawler::decode_entities(text);
  crawler::looks_like_image_path(text);
  return 0;
}
