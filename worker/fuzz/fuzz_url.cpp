// Fuzz target: URL resolution and normalisation (src/url.cpp, libcurl's URL
// API), which every href, src, srcset entry, Location header and seed goes
// through before it becomes a frontier key.
//
// Input: "BASE\nREF". Without a newline the whole input is the reference,
// resolved against a fixed page URL (most references found in pages are
// relative; a base from the input mostly fails to parse).
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour or crash in resolve_url,
//     normalize_url, UrlResolver, split_url, host_key, url_filename;
//   - normalisation is idempotent: normalize_url(normalize_url(x)) ==
//     normalize_url(x) when the first succeeds (else the same page is
//     crawled under two keys);
//   - a resolved URL normalises to itself;
//   - UrlResolver(base).resolve(ref) == resolve_url(base, ref), as
//     url.hpp promises (its fast path joins plain references unparsed);
//   - resolving the empty reference gives the normalised base;
//   - a resolved URL splits, its scheme is http or https, its port is
//     1-65535, and it is within the domain of its own host key;
//   - url_filename of a stored URL is printable ASCII (it is shown and
//     logged).
#include <clocale>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crawler/url.hpp"

namespace {

constexpr std::string_view kDefaultBase = "http://h.test/a/b/page.html?q=1";

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_printable(const std::string& s) {
  for (unsigned char c : s) check(c >= 0x20 && c < 0x7f);
}

// What must hold of every URL the crawler would store.
void check_stored(const std::string& u) {
  auto again = crawler::normalize_url(u);
  check(again.has_value() && *again == u);
  check_printable(u);
  auto parts = crawler::split_url(u);
  check(parts.has_value());
  check(parts->scheme == "http" || parts->scheme == "https");
  check(parts->port > 0 && parts->port <= 65535);
  check(!parts->host.empty() && !parts->path.empty());
  // the host key starts with the host, and names a port only when it is not the scheme's default
  std::string key = crawler::host_key(*parts);
  check(key.rfind(parts->host, 0) == 0);
  check(key == parts->host || key == parts->host + ":" + std::to_string(parts->port));
  check_printable(crawler::url_filename(u));
}

void check_normalize(std::string_view x) {
  auto n = crawler::normalize_url(x);
  if (!n) return;
  check_stored(*n);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libidn2 (curl's IDN conversion) needs a UTF-8 locale, as in main().
  std::setlocale(LC_CTYPE, "C.UTF-8");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view base = kDefaultBase, ref = in;
  if (auto nl = in.find('\n'); nl != std::string_view::npos) {
    base = in.substr(0, nl);
    ref = in.substr(nl + 1);
  }
  check_normalize(base);
  check_normalize(ref);

  auto r = crawler::resolve_url(base, ref);
  if (r) check_stored(*r);
  check(crawler::UrlResolver(base).resolve(ref) == r);

  auto self = crawler::resolve_url(base, "");
  auto nb = crawler::normalize_url(base);
  check(self == nb);

  // Anything at all, unnormalised: only memory safety is promised here (the
  // printable name is promised for the URLs the crawler stores).
  if (auto p = crawler::split_url(in)) crawler::host_key(*p);
  crawler::url_filename(in);
  return 0;
}
