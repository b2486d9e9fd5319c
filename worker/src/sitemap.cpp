#include "crawler/sitemap.hpp"

#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "crawler/url.hpp"

namespace crawler {
namespace {

constexpr std::string_view kImageNs = "http://www.google.com/schemas/sitemap-image/1.1";
// A <loc> longer than this is no URL the frontier takes (2,048 bytes);
// its text is not collected further.
constexpr std::size_t kMaxLocBytes = 4096;

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string_view view(const xmlChar* s) {
  return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

// Collects the entries, unique per list, counting URLs against the limit.
class Collector {
 public:
  Collector(SitemapEntries& out, const SitemapLimits& limits) : out_(out), limits_(limits) {}

  // false when the URL limit left no room for it (the caller stops reading).
  bool page(std::string_view loc, const std::vector<std::string>& images) {
    if (!room()) return false;
    auto url = take(loc);
    if (!url) return true;
    if (pages_.insert(*url).second) out_.pages.push_back(*url);
    std::size_t taken = 0;
    for (const auto& i : images) {
      if (taken == limits_.max_images_per_page) break;
      auto image = normalize_url(trim(i));
      if (!image) {
        ++out_.skipped;
        continue;
      }
      ++taken;
      if (images_.insert(*image).second) out_.images.push_back({std::move(*image), *url});
    }
    return true;
  }

  bool sitemap(std::string_view loc) {
    if (!room()) return false;
    auto url = take(loc);
    if (!url) return true;
    if (sitemaps_.insert(*url).second) out_.sitemaps.push_back(std::move(*url));
    return true;
  }

 private:
  // The URL a <loc> names, counted against the limit; none (counted as
  // skipped) when it is no URL the crawler takes.
  std::optional<std::string> take(std::string_view loc) {
    auto url = normalize_url(trim(loc));
    if (!url) {
      ++out_.skipped;
      return std::nullopt;
    }
    ++urls_;
    return url;
  }

  bool room() {
    if (urls_ < limits_.max_urls) return true;
    out_.cut = "more than " + std::to_string(limits_.max_urls) + " URLs: the rest was not read";
    return false;
  }

  SitemapEntries& out_;
  const SitemapLimits& limits_;
  std::size_t urls_ = 0;
  std::unordered_set<std::string> pages_, images_, sitemaps_;
};

// The first error libxml2 reports for a reader, kept instead of printed.
void keep_error(void* arg, xmlErrorPtr e) {
  auto* first = static_cast<std::string*>(arg);
  if (!first->empty() || !e || e->level < XML_ERR_ERROR) return;
  std::string m = e->message ? e->message : "XML error";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  std::replace(m.begin(), m.end(), '\n', ' ');  // "Input is not proper UTF-8 ...\nBytes: ..."
  *first = m + " (line " + std::to_string(e->line) + ")";
}

struct ReaderFree {
  void operator()(xmlTextReaderPtr r) const { xmlFreeTextReader(r); }
};

// Where the reader is, by the elements that matter: the root, an entry
// (<url> or <sitemap>), the entry's <loc>, an <image:image> and its <loc>.
enum class At { kNone, kEntry, kLoc, kImage, kImageLoc };

void parse_xml(std::string_view xml, bool truncated, const SitemapLimits& limits, SitemapEntries& out) {
  // No network (an external DTD or entity would be fetched), no DTD loaded
  // or checked, no entity substituted; a document with a DOCTYPE is refused
  // below before anything of it is used. libxml2's own caps (10 MB of text
  // per node, 256 levels of nesting) stay on: no XML_PARSE_HUGE.
  std::unique_ptr<xmlTextReader, ReaderFree> reader(xmlReaderForMemory(
      xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA));
  if (!reader) {
    out.error = "not XML: the reader could not start";
    return;
  }
  std::string error;
  xmlTextReaderSetStructuredErrorHandler(reader.get(), keep_error, &error);
  Collector collect(out, limits);
  bool rooted = false;
  At at = At::kNone;
  int entry_depth = -1;
  std::string loc, image_loc;
  std::vector<std::string> images;
  int rc;
  while ((rc = xmlTextReaderRead(reader.get())) == 1) {
    int type = xmlTextReaderNodeType(reader.get());
    int depth = xmlTextReaderDepth(reader.get());
    if (type == XML_READER_TYPE_DOCUMENT_TYPE || type == XML_READER_TYPE_ENTITY_REFERENCE) {
      out.error = "a DTD or an entity: a sitemap has neither";
      return;
    }
    if (type == XML_READER_TYPE_ELEMENT) {
      std::string_view name = view(xmlTextReaderConstLocalName(reader.get()));
      bool empty = xmlTextReaderIsEmptyElement(reader.get()) == 1;
      if (!rooted) {
        rooted = true;
        // The sitemaps.org namespace is not required: sitemaps in the wild
        // carry Google's old one, or none.
        if (name == "sitemapindex") out.index = true;
        else if (name != "urlset") {
          out.error = "not a sitemap: the root element is <" + std::string(name.substr(0, 100)) + ">";
          return;
        }
        continue;
      }
      std::string_view ns = view(xmlTextReaderConstNamespaceUri(reader.get()));
      if (at == At::kNone && depth == 1 && name == (out.index ? "sitemap" : "url")) {
        at = At::kEntry;
        entry_depth = depth;
        loc.clear();
        images.clear();
      } else if (at == At::kEntry && depth == entry_depth + 1 && name == "loc" && ns != kImageNs) {
        at = At::kLoc;
      } else if (at == At::kEntry && depth == entry_depth + 1 && !out.index && name == "image" && ns == kImageNs) {
        at = At::kImage;
        image_loc.clear();
      } else if (at == At::kImage && depth == entry_depth + 2 && name == "loc" && ns == kImageNs) {
        at = At::kImageLoc;
      }
      if (!empty) continue;
      // <loc/>: no end element comes; it ends here, empty.
      type = XML_READER_TYPE_END_ELEMENT;
    }
    if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA) {
      std::string& into = at == At::kLoc ? loc : image_loc;
      if (at == At::kLoc || at == At::kImageLoc) {
        std::string_view text = view(xmlTextReaderConstValue(reader.get()));
        into.append(text.substr(0, kMaxLocBytes - std::min(kMaxLocBytes, into.size())));
      }
      continue;
    }
    if (type != XML_READER_TYPE_END_ELEMENT) continue;
    if (at == At::kLoc && depth == entry_depth + 1) {
      at = At::kEntry;
    } else if (at == At::kImageLoc && depth == entry_depth + 2) {
      at = At::kImage;
    } else if (at == At::kImage && depth == entry_depth + 1) {
      if (!trim(image_loc).empty()) images.push_back(image_loc);
      at = At::kEntry;
    } else if (at == At::kEntry && depth == entry_depth) {
      at = At::kNone;
      bool more;
      if (trim(loc).empty()) {
        // An entry without its <loc> names nothing (its images are on no page).
        ++out.skipped;
        more = true;
      } else {
        more = out.index ? collect.sitemap(loc) : collect.page(loc, images);
      }
      if (!more) return;  // the protocol's URL limit: the rest is not read
    }
  }
  if (rc < 0) {
    if (truncated && rooted) return;  // the end is missing because the file was cut: not its fault
    out.error = "not well-formed XML: " + (error.empty() ? std::string("read error") : error);
    return;
  }
  if (!rooted) out.error = "not XML: no element in it";
}

// A text sitemap: one absolute URL a line, UTF-8. Its first line must be
// one (anything else is not a sitemap); later lines that are not are
// skipped, as the protocol's readers skip them.
void parse_text(std::string_view text, bool truncated, const SitemapLimits& limits, SitemapEntries& out) {
  // A cut file's last line may be the start of a URL: not taken.
  if (truncated && !text.empty() && text.back() != '\n') text = text.substr(0, text.rfind('\n') + 1);
  Collector collect(out, limits);
  bool first = true;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    if (first) {
      first = false;
      if (!normalize_url(line)) {
        out.error = "not a sitemap: neither XML nor a list of URLs";
        return;
      }
    }
    if (!collect.page(line, {})) return;
  }
  if (first) out.error = "not a sitemap: empty";
}

}  // namespace

void prepare_sitemap_parser() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

bool is_gzip(std::string_view body) {
  return body.size() >= 2 && static_cast<unsigned char>(body[0]) == 0x1f &&
         static_cast<unsigned char>(body[1]) == 0x8b;
}

std::string gunzip(std::string_view gz, std::size_t max_bytes, std::string& out) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return "zlib could not start";
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(gz.size(), UINT_MAX));
  out.clear();
  // Grown as it inflates, a block at a time, never past max_bytes: a gzip
  // bomb (a thousandfold ratio) costs max_bytes of memory and no more.
  constexpr std::size_t kBlock = 256 * 1024;
  for (;;) {
    if (out.size() >= max_bytes) return "cut";
    std::size_t room = std::min(kBlock, max_bytes - out.size());
    std::size_t at = out.size();
    out.resize(at + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
    z.avail_out = static_cast<uInt>(room);
    int rc = inflate(&z, Z_NO_FLUSH);
    out.resize(at + room - z.avail_out);
    if (rc == Z_STREAM_END) return "";
    if (rc == Z_BUF_ERROR && z.avail_in == 0) return "the gzip stream is truncated";
    if (rc != Z_OK && rc != Z_BUF_ERROR) return std::string("corrupt gzip stream: ") + (z.msg ? z.msg : "zlib error");
  }
}

SitemapEntries parse_sitemap(std::string_view body, bool truncated, const SitemapLimits& limits) {
  prepare_sitemap_parser();
  SitemapEntries out;
  std::string inflated;
  if (is_gzip(body)) {
    std::string why = gunzip(body, limits.max_bytes, inflated);
    if (why == "cut") {
      out.cut = "larger than " + std::to_string(limits.max_bytes) + " bytes uncompressed: cut off there";
      truncated = true;
    } else if (!why.empty()) {
      if (!truncated) {
        out.error = why;
        return out;
      }
      // The transfer was cut: so is its gzip stream; what it gave is read.
    }
    body = inflated;
  } else if (body.size() > limits.max_bytes) {
    body = body.substr(0, limits.max_bytes);
    out.cut = "larger than " + std::to_string(limits.max_bytes) + " bytes: cut off there";
    truncated = true;
  }
  // A UTF-8 byte order mark, then blanks, before the first '<' of XML.
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  std::string_view start = trim(body);
  std::string cut = std::move(out.cut);
  out.cut.clear();
  if (!start.empty() && start.front() == '<') parse_xml(body, truncated, limits, out);
  else parse_text(body, truncated, limits, out);
  if (!cut.empty()) out.cut = out.cut.empty() ? cut : cut + "; " + out.cut;
  if (!out.error.empty()) {
    // Not a sitemap: nothing of it counts, whatever was read before the
    // error (entries before an entity reference or a broken end tag).
    SitemapEntries refused;
    refused.error = std::move(out.error);
    return refused;
  }
  if (truncated && out.cut.empty()) {
    out.cut = "the body was cut off at the transfer's byte limit";
  }
  return out;
}

}  // namespace crawler
