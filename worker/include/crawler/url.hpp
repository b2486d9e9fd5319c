// URL resolution and normalisation with libcurl's URL API (CURLU).
#pragma once
#include <optional>
#include <string>
#include <vector>
#include <string_view>

namespace crawler {

// Resolves `ref` against the absolute URL `base` (RFC 3986, section 5.2) and
// normalises the result:
// lower-case scheme and host, default port dropped, fragment dropped, dot
// segments removed, unsafe bytes percent-encoded, IDN hosts in punycode.
// Returns nothing for URLs the crawler never fetches: other schemes
// (data:, javascript:, mailto:, ftp: ...), malformed URLs, URLs without a
// host and URLs longer than the API's 2048 characters.
std::optional<std::string> resolve_url(std::string_view base, std::string_view ref);

// resolve_url() for many references against one base: the base is parsed
// once, and a plain reference ("img/a.png", "/a/b?c=d") joined to it costs
// no parse at all: what a page of 40,000 links costs.  resolve_url(base, ref)
// is UrlResolver(base).resolve(ref).
class UrlResolver {
 public:
  explicit UrlResolver(std::string_view base);
  std::optional<std::string> resolve(std::string_view ref) const;

 private:
  std::string base_;
  std::string origin_;     // "scheme://authority" of the canonical base; empty: no fast path
  std::string directory_;  // the canonical base up to the last '/' of its path
};

// Normalises an absolute URL (same rules as resolve_url).
std::optional<std::string> normalize_url(std::string_view url);

// Parts of an absolute, normalised URL.
struct UrlParts {
  std::string scheme;
  std::string host;   // lower case, no port
  int port = 0;       // the effective port (80/443 when implicit)
  std::string path;   // path + query, at least "/"
};
std::optional<UrlParts> split_url(std::string_view url);

// "host" or "host:port" when the port is not the scheme's default: the key
// under which robots.txt and politeness are kept.
std::string host_key(const UrlParts& u);

// The last path segment, decoded only for display ("" when none).
std::string url_filename(std::string_view url);

}  // namespace crawler
