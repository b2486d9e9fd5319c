#include "crawler/image_info.hpp"

#include <dlfcn.h>
#include <gmodule.h>
#include <vips/vips.h>  // types and prototypes: the library itself is opened at run time

#include <cctype>
#include <cstring>
#include <mutex>
#include <type_traits>

namespace crawler {
namespace {

std::uint32_t le32(std::string_view s, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24);
}

bool starts(std::string_view s, std::string_view prefix, std::size_t at = 0) {
  return s.size() >= at + prefix.size() && s.compare(at, prefix.size(), prefix) == 0;
}

std::string lower_prefix(std::string_view s, std::size_t n) {
  std::string r(s.substr(0, n));
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// True when XML text (after BOM, whitespace, declarations, comments and a
// doctype) opens with an <svg> element.
bool is_svg(std::string_view s) {
  if (starts(s, "\xEF\xBB\xBF")) s.remove_prefix(3);
  for (int guard = 0; guard < 64; ++guard) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    if (starts(s, "<?")) {
      auto e = s.find("?>");
      if (e == s.npos) return false;
      s.remove_prefix(e + 2);
    } else if (starts(s, "<!--")) {
      auto e = s.find("-->");
      if (e == s.npos) return false;
      s.remove_prefix(e + 3);
    } else if (starts(s, "<!")) {
      auto e = s.find('>');
      if (e == s.npos) return false;
      s.remove_prefix(e + 1);
    } else {
      std::string tag = lower_prefix(s, 5);
      return tag == "<svg " || tag == "<svg>" || tag == "<svg\n" || tag == "<svg\t" ||
             tag == "<svg\r" || starts(s, "<svg:svg");
    }
  }
  return false;
}

// libvips and the hundred libraries behind it are opened on a file thread
// when the first image comes, not when the process starts (their loading
// and relocation took 10-15 ms of every start, before the first request).
struct Vips {
  decltype(&vips_init) init = nullptr;
  decltype(&vips_error_buffer) error_buffer = nullptr;
  decltype(&vips_error_clear) error_clear = nullptr;
  decltype(&vips_cache_set_max) cache_set_max = nullptr;
  decltype(&vips_concurrency_set) concurrency_set = nullptr;
  decltype(&vips_jpegload) jpegload = nullptr;
  decltype(&vips_pngload) pngload = nullptr;
  decltype(&vips_gifload) gifload = nullptr;
  decltype(&vips_webpload) webpload = nullptr;
  decltype(&vips_svgload) svgload = nullptr;
  decltype(&vips_heifload) heifload = nullptr;
  decltype(&vips_image_get_width) image_get_width = nullptr;
  decltype(&vips_image_get_height) image_get_height = nullptr;
  decltype(&g_object_unref) object_unref = nullptr;
  decltype(&g_log_set_handler) log_set_handler = nullptr;
  decltype(&g_module_open) module_open = nullptr;
  std::string error;  // why libvips is not usable
};
Vips g_vips;

template <typename F>
bool bind(void* lib, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

void open_vips() {
  const std::string soname = "libvips.so." + std::to_string(VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE);
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    g_vips.error = std::string("libvips is not available: ") + dlerror();
    return;
  }
  Vips& v = g_vips;
  // dlsym on the handle also finds GLib's symbols (libvips' dependencies).
  bool ok = bind(lib, v.init, "vips_init") && bind(lib, v.error_buffer, "vips_error_buffer") &&
            bind(lib, v.error_clear, "vips_error_clear") && bind(lib, v.cache_set_max, "vips_cache_set_max") &&
            bind(lib, v.concurrency_set, "vips_concurrency_set") && bind(lib, v.jpegload, "vips_jpegload") &&
            bind(lib, v.pngload, "vips_pngload") && bind(lib, v.gifload, "vips_gifload") &&
            bind(lib, v.webpload, "vips_webpload") && bind(lib, v.svgload, "vips_svgload") &&
            bind(lib, v.heifload, "vips_heifload") && bind(lib, v.image_get_width, "vips_image_get_width") &&
            bind(lib, v.image_get_height, "vips_image_get_height") &&
            bind(lib, v.object_unref, "g_object_unref") && bind(lib, v.log_set_handler, "g_log_set_handler") &&
            bind(lib, v.module_open, "g_module_open");
  if (!ok) g_vips.error = std::string("libvips is not usable: ") + dlerror();
}

// The HEIF/AVIF loader is a libvips module; it is opened when the first
// such image comes (see kSkipVipsModules in main.cpp).
void open_heif_module() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string path = std::string(CRAWLER_VIPS_LIBDIR) + "/vips-modules-" + std::to_string(VIPS_MAJOR_VERSION) + "." +
                       std::to_string(VIPS_MINOR_VERSION) + "/vips-heif.so";
    g_vips.module_open(path.c_str(), G_MODULE_BIND_LAZY);  // registers heifload (kept resident)
  });
}

struct VipsImageRef {
  VipsImage* img = nullptr;
  ~VipsImageRef() {
    if (img) g_vips.object_unref(img);
  }
};

std::string vips_error_text() {
  std::string e = g_vips.error_buffer();
  g_vips.error_clear();
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  auto nl = e.find('\n');
  return nl == std::string::npos ? e : e.substr(0, nl);
}

}  // namespace

namespace {
// libvips and its loaders warn about every damaged file on stderr; for a
// crawler a damaged file is an ordinary per-URL error, reported as such.
void quiet_vips(const gchar* domain, GLogLevelFlags, const gchar* message, gpointer) {
  (void)domain;
  (void)message;
}
}  // namespace

void init_image_library(const char* argv0) {
  static std::once_flag once;
  std::call_once(once, [argv0] {
    open_vips();
    if (!g_vips.error.empty()) return;
    if (g_vips.init(argv0 ? argv0 : "crawler-worker") != 0) {
      g_vips.error = "libvips failed to start: " + vips_error_text();
      return;
    }
    g_vips.log_set_handler("VIPS", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO),
                           quiet_vips, nullptr);
    g_vips.cache_set_max(0);  // headers only, nothing worth caching
    g_vips.concurrency_set(1);
  });
}

// The first 4 KiB are what the crawler keeps of a download
// (PendingFile::head). Nothing past them counts, so that the format never
// depends on how much of a file a caller passes: an ISO-BMFF ftyp box
// declaring 4 GiB had its brands read as far as the bytes went.
constexpr std::size_t kSniffBytes = 4096;

std::optional<std::string> sniff_format(std::string_view whole) {
  const std::string_view h = whole.substr(0, kSniffBytes);
  if (starts(h, "\xFF\xD8\xFF")) return "jpeg";
  if (starts(h, "\x89PNG\r\n\x1A\n")) return "png";
  if (starts(h, "GIF87a") || starts(h, "GIF89a")) return "gif";
  if (starts(h, "RIFF") && starts(h, "WEBP", 8)) return "webp";
  if (starts(h, "BM") && h.size() >= 26 && le32(h, 2) >= 26) return "bmp";
  if (h.size() >= 22 && starts(h, std::string_view("\0\0\1\0", 4))) return "ico";
  if (h.size() >= 12 && starts(h, "ftyp", 4)) {
    // ISO-BMFF: the major brand and the compatible brands name the format.
    std::uint32_t box = (static_cast<unsigned char>(h[0]) << 24) | (static_cast<unsigned char>(h[1]) << 16) |
                        (static_cast<unsigned char>(h[2]) << 8) | static_cast<unsigned char>(h[3]);
    std::size_t end = std::min<std::size_t>(box, h.size());
    bool avif = false, heic = false;
    for (std::size_t at = 8; at + 4 <= end; at += 4) {
      if (at == 12) continue;  // minor version
      auto brand = h.substr(at, 4);
      if (brand == "avif" || brand == "avis") avif = true;
      if (brand == "heic" || brand == "heix" || brand == "heim" || brand == "heis" ||
          brand == "mif1" || brand == "msf1")
        heic = true;
    }
    if (avif) return "avif";
    if (heic) return "heic";
    return std::nullopt;
  }
  if (is_svg(h)) return "svg";
  return std::nullopt;
}

std::string describe_bytes(std::string_view h) {
  std::string l = lower_prefix(h.substr(h.find_first_not_of(" \t\r\n") == h.npos ? 0 : h.find_first_not_of(" \t\r\n")), 64);
  if (h.empty()) return "an empty body";
  if (starts(l, "<!doctype html") || starts(l, "<html") || l.find("<head") != l.npos ||
      l.find("<body") != l.npos)
    return "HTML text";
  if (starts(l, "<?xml") || starts(l, "<")) return "XML/markup text without an <svg> root";
  if (starts(h, "PK\3\4")) return "a ZIP archive";
  if (starts(h, "%PDF")) return "a PDF document";
  if (starts(h, "\x1F\x8B")) return "gzip-compressed data";
  if (starts(h, "II*") || starts(h, "MM\0*")) return "a TIFF image (not accepted)";
  bool text = true;
  for (unsigned char c : h.substr(0, 64))
    if (c < 9 || (c > 13 && c < 32)) text = false;
  if (text) return "plain text";
  static const char* hex = "0123456789abcdef";
  std::string out = "bytes";
  for (unsigned char c : h.substr(0, 8)) {
    out += ' ';
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::variant<ImageInfo, std::string> read_image_info(const std::filesystem::path& path,
                                                     std::string_view head) {
  init_image_library(nullptr);  // once; usually done already
  auto fmt = sniff_format(head);
  if (!fmt) return "not an image: the content is " + describe_bytes(head);
  ImageInfo info;
  info.format = *fmt;
  static const struct {
    const char* format;
    const char* ext;
    const char* mime;
  } kTypes[] = {{"jpeg", "jpg", "image/jpeg"}, {"png", "png", "image/png"},
                {"gif", "gif", "image/gif"},   {"webp", "webp", "image/webp"},
                {"bmp", "bmp", "image/bmp"},   {"svg", "svg", "image/svg+xml"},
                {"avif", "avif", "image/avif"}, {"heic", "heic", "image/heic"},
                {"ico", "ico", "image/vnd.microsoft.icon"}};
  for (const auto& t : kTypes)
    if (info.format == t.format) {
      info.ext = t.ext;
      info.mime = t.mime;
    }

  if (info.format == "bmp") {  // libvips has no BMP loader without ImageMagick
    auto w = static_cast<std::int32_t>(le32(head, 18));
    auto hh = static_cast<std::int32_t>(le32(head, 22));
    if (w <= 0 || hh == 0 || hh == INT32_MIN) return "corrupt BMP header";
    info.width = w;
    info.height = hh < 0 ? -hh : hh;
    return info;
  }
  if (info.format == "ico") {  // nor one for Windows icons: the first entry
    int count = static_cast<unsigned char>(head[4]) | (static_cast<unsigned char>(head[5]) << 8);
    if (count == 0) return "corrupt ICO header: no images";
    info.width = static_cast<unsigned char>(head[6]) ? static_cast<unsigned char>(head[6]) : 256;
    info.height = static_cast<unsigned char>(head[7]) ? static_cast<unsigned char>(head[7]) : 256;
    return info;
  }

  if (!g_vips.error.empty()) return g_vips.error;
  VipsImageRef ref;
  const std::string file = path.string();
  int rc = -1;
  // The loader for the sniffed format only: bytes never reach an unrelated
  // (or untrusted) loader. Loading is lazy: only the header is read here.
  if (info.format == "jpeg")
    rc = g_vips.jpegload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  else if (info.format == "png")
    rc = g_vips.pngload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  else if (info.format == "gif")
    rc = g_vips.gifload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  else if (info.format == "webp")
    rc = g_vips.webpload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  else if (info.format == "svg")
    rc = g_vips.svgload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  else if (info.format == "avif" || info.format == "heic") {
    open_heif_module();
    rc = g_vips.heifload(file.c_str(), &ref.img, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  }
  if (rc != 0 || !ref.img) return "corrupt " + info.format + " image: " + vips_error_text();
  info.width = g_vips.image_get_width(ref.img);
  info.height = g_vips.image_get_height(ref.img);
  if (info.width <= 0 || info.height <= 0) return "corrupt " + info.format + " image: no size";
  return info;
}

}  // namespace crawler
