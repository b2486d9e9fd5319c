#include "crawler/url.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

namespace crawler {
namespace {

constexpr std::size_t kMaxUrlLength = 2048;

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlStr {
  char* p = nullptr;
  ~CurlStr() { curl_free(p); }
};

std::string trim(std::string_view s) {
  // HTML attribute URLs are stripped of leading/trailing ASCII whitespace,
  // and tabs/newlines inside are removed (WHATWG URL parser).
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  std::size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  std::string out;
  out.reserve(e - b);
  for (std::size_t i = b; i < e; ++i)
    if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r') out.push_back(s[i]);
  return out;
}

bool has_scheme(std::string_view s, std::string* scheme) {
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':') {
      scheme->assign(s.substr(0, i));
      std::transform(scheme->begin(), scheme->end(), scheme->begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      return true;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'))
      return false;
  }
  return false;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Percent-encodes bytes outside printable ASCII and the characters that are
// never valid in a URL, leaving existing %XX escapes alone.
std::string encode_unsafe(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  // An international host name stays as it is: curl turns it into punycode.
  // There is a host only after "scheme://" or at the start of "//host":
  // in "a//b" the "//" is part of a relative path.
  std::size_t host_begin = std::string_view::npos, host_end = 0;
  std::string scheme;
  std::size_t authority = has_scheme(s, &scheme) ? scheme.size() + 1 : 0;
  if (s.substr(authority, 2) == "//") {
    auto sep = authority;
    host_begin = sep + 2;
    host_end = s.find_first_of("/?#", host_begin);
    if (host_end == std::string_view::npos) host_end = s.size();
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool in_host = host_begin != std::string_view::npos && i >= host_begin && i < host_end;
    if (in_host && c >= 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' ||
        c == '`' || c == '{' || c == '|' || c == '}') {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::optional<std::string> finish_once(CURLU* h) {
  CurlStr scheme;
  if (curl_url_get(h, CURLUPART_SCHEME, &scheme.p, 0) != CURLUE_OK) return std::nullopt;
  std::string sch = lower(scheme.p);
  if (sch != "http" && sch != "https") return std::nullopt;
  CurlStr host;
  if (curl_url_get(h, CURLUPART_HOST, &host.p, CURLU_PUNYCODE) != CURLUE_OK) return std::nullopt;
  std::string hs = lower(host.p);
  if (hs.empty()) return std::nullopt;
  if (curl_url_set(h, CURLUPART_HOST, hs.c_str(), 0) != CURLUE_OK) return std::nullopt;
  CurlStr port;
  // port 0 names no server
  if (curl_url_get(h, CURLUPART_PORT, &port.p, 0) == CURLUE_OK && port.p && std::atoi(port.p) == 0)
    return std::nullopt;
  curl_url_set(h, CURLUPART_FRAGMENT, nullptr, 0);
  CurlStr full;
  if (curl_url_get(h, CURLUPART_URL, &full.p, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
    return std::nullopt;
  std::string out = full.p;
  if (out.size() > kMaxUrlLength) return std::nullopt;
  for (unsigned char c : out)
    if (c <= 0x20 || c >= 0x7f) return std::nullopt;
  return out;
}

// The canonical form must be a fixed point: parsing it again gives it back.
// One pass is not always enough ("//8%2e4" decodes to host 8.4, which only a
// second parse reads as the IPv4 address 8.0.0.4), so parse the result
// again; a URL that still changes is refused rather than stored under two
// spellings.
// Whether a path reference (and query) is made only of characters curl
// never rewrites (unreserved ones, '/', and '=' and '&' in a query) and has
// no "." or ".." segment to remove.  `relative`: it continues a directory.
bool is_plain_reference(std::string_view ref, bool relative) {
  bool in_query = false;
  std::size_t segment_start = relative ? 0 : std::string_view::npos;
  auto dot_segment = [&](std::size_t end) {
    if (segment_start == std::string_view::npos) return false;
    std::string_view seg = ref.substr(segment_start, end - segment_start);
    return seg == "." || seg == "..";
  };
  for (std::size_t i = 0; i < ref.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(ref[i]);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') continue;
    if (in_query && (c == '=' || c == '&')) continue;
    if (c == '/' && !in_query) {
      if (dot_segment(i)) return false;
      segment_start = i + 1;
      continue;
    }
    if (c == '?' && !in_query) {
      if (dot_segment(i)) return false;
      in_query = true;
      segment_start = std::string_view::npos;
      continue;
    }
    return false;
  }
  // curl drops an empty query ("x?")
  if (in_query) return ref.back() != '?';
  return !dot_segment(ref.size());
}

std::optional<std::string> finish(CURLU* h, std::string_view parsed = {}) {
  auto once = finish_once(h);
  if (!once) return std::nullopt;
  // What was parsed came back unchanged: parsing it again gives it again.
  if (*once == parsed) return once;
  for (int pass = 0; pass < 2; ++pass) {
    UrlHandle again(curl_url());
    if (!again || curl_url_set(again.get(), CURLUPART_URL, once->c_str(), 0) != CURLUE_OK)
      return std::nullopt;
    auto next = finish_once(again.get());
    if (!next) return std::nullopt;
    if (*next == *once) return once;
    once = std::move(next);
  }
  return std::nullopt;
}

// curl's own resolution of a reference against a base, for the forms
// UrlResolver does not join itself.
std::optional<std::string> resolve_with_curl(std::string_view base, std::string_view ref) {
  std::string r = trim(ref);
  std::string scheme;
  if (has_scheme(r, &scheme) && scheme != "http" && scheme != "https") return std::nullopt;
  UrlHandle h(curl_url());
  if (!h) return std::nullopt;
  std::string b = encode_unsafe(trim(base));
  if (curl_url_set(h.get(), CURLUPART_URL, b.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return std::nullopt;
  std::string enc = encode_unsafe(r);
  // An empty or fragment-only reference is the base itself (curl 7.88 would
  // drop the base's path for "#x").
  if (enc.empty() || enc[0] == '#') return finish(h.get());
  if (curl_url_set(h.get(), CURLUPART_URL, enc.c_str(), 0) != CURLUE_OK) return std::nullopt;
  return finish(h.get());
}

}  // namespace

std::optional<std::string> resolve_url(std::string_view base, std::string_view ref) {
  return UrlResolver(base).resolve(ref);
}

std::optional<std::string> normalize_url(std::string_view url) {
  std::string r = trim(url);
  std::string scheme;
  if (!has_scheme(r, &scheme) || (scheme != "http" && scheme != "https")) return std::nullopt;
  UrlHandle h(curl_url());
  if (!h) return std::nullopt;
  std::string enc = encode_unsafe(r);
  if (curl_url_set(h.get(), CURLUPART_URL, enc.c_str(), 0) != CURLUE_OK) return std::nullopt;
  return finish(h.get());
}

UrlResolver::UrlResolver(std::string_view base) : base_(base) {
  auto canonical = normalize_url(base);
  if (!canonical) return;
  // A canonical URL is "scheme://authority/path[?query]": no fragment, and
  // always a path.
  std::size_t path = canonical->find('/', canonical->find("://") + 3);
  if (path == std::string::npos) return;
  std::size_t query = canonical->find('?', path);
  std::size_t last_slash = canonical->rfind('/', query == std::string::npos ? std::string::npos : query);
  origin_ = canonical->substr(0, path);
  directory_ = canonical->substr(0, last_slash + 1);
}

std::optional<std::string> UrlResolver::resolve(std::string_view ref_in) const {
  if (origin_.empty()) return resolve_with_curl(base_, ref_in);
  std::string ref = trim(ref_in);
  // The two commonest forms are joined here as RFC 3986 joins them
  // ("/abs/path" after the origin, "rel/path" after the base's directory;
  // curl removes the dot segments): curl's own relative resolution drops
  // the empty segment of ".//x".  Anything else (a scheme, "//host",
  // "?query", "#fragment", "", a leading backslash) curl resolves.  Either
  // way curl parses and normalises the result.
  std::string joined;
  const std::string* prefix = &directory_;
  if (!ref.empty() && ref[0] == '/' && (ref.size() == 1 || ref[1] != '/')) {
    prefix = &origin_;
    joined = origin_ + ref;
  } else {
    std::size_t end = ref.find_first_of("/?#");
    std::string_view head = std::string_view(ref).substr(0, end);
    if (ref.empty() || end == 0 || head.find(':') != std::string_view::npos || ref[0] == '\\')
      return resolve_with_curl(base_, ref_in);
    joined = directory_ + ref;
  }
  // Appended to a canonical prefix, a reference of plain characters
  // without dot segments is canonical as it stands: curl would give it back.
  if (is_plain_reference(ref, prefix == &directory_) && joined.size() <= kMaxUrlLength) return joined;
  std::string enc = encode_unsafe(joined);
  UrlHandle h(curl_url());
  if (!h || curl_url_set(h.get(), CURLUPART_URL, enc.c_str(), 0) != CURLUE_OK) return std::nullopt;
  return finish(h.get(), enc);
}

std::optional<UrlParts> split_url(std::string_view url) {
  UrlHandle h(curl_url());
  std::string u(url);
  if (curl_url_set(h.get(), CURLUPART_URL, u.c_str(), 0) != CURLUE_OK) return std::nullopt;
  UrlParts p;
  CurlStr s, host, port, path, query;
  if (curl_url_get(h.get(), CURLUPART_SCHEME, &s.p, 0) != CURLUE_OK) return std::nullopt;
  if (curl_url_get(h.get(), CURLUPART_HOST, &host.p, 0) != CURLUE_OK) return std::nullopt;
  if (curl_url_get(h.get(), CURLUPART_PORT, &port.p, CURLU_DEFAULT_PORT) != CURLUE_OK)
    return std::nullopt;
  p.scheme = lower(s.p);
  p.host = lower(host.p);
  p.port = std::atoi(port.p);
  if (curl_url_get(h.get(), CURLUPART_PATH, &path.p, 0) == CURLUE_OK) p.path = path.p;
  if (p.path.empty()) p.path = "/";
  if (curl_url_get(h.get(), CURLUPART_QUERY, &query.p, 0) == CURLUE_OK && query.p)
    p.path += std::string("?") + query.p;
  return p;
}

std::string host_key(const UrlParts& u) {
  bool default_port = (u.scheme == "http" && u.port == 80) || (u.scheme == "https" && u.port == 443);
  return default_port ? u.host : u.host + ":" + std::to_string(u.port);
}

std::string url_filename(std::string_view url) {
  auto p = split_url(url);
  if (!p) return {};
  std::string path = p->path.substr(0, p->path.find('?'));
  auto slash = path.rfind('/');
  std::string last = slash == std::string::npos ? path : path.substr(slash + 1);
  CurlStr dec;
  int len = 0;
  CURL* easy = nullptr;  // curl_easy_unescape accepts a NULL handle
  dec.p = curl_easy_unescape(easy, last.c_str(), static_cast<int>(last.size()), &len);
  if (!dec.p) return last;
  std::string out(dec.p, static_cast<std::size_t>(len));
  // Keep the name printable ASCII so it is always valid text: otherwise the
  // encoded form, which the URL guarantees to be printable ASCII.
  for (unsigned char c : out)
    if (c < 0x20 || c >= 0x7f) return last;
  return out;
}

}  // namespace crawler
