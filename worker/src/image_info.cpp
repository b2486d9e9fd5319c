#include "crawler/image_info.hpp"

#include <cctype>
#include <cstring>

#include "vips_library.hpp"

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

}  // namespace

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

namespace {
// Format and size from the header, read by `load` (the file's or the
// buffer's loader of libvips for the sniffed format) unless the header
// alone says them.
template <typename Load>
std::variant<ImageInfo, std::string> describe_image(std::string_view head, Load&& load) {
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

  if (!vips().error.empty()) return vips().error;
  if (info.format == "avif" || info.format == "heic") open_heif_module();
  VipsImageRef ref;
  // A loader may leave a message even when it succeeds (the HEIF loader's
  // "bad seek"): without this, the next image refused was reported with it.
  vips().error_clear();
  // The loader for the sniffed format only: bytes never reach an unrelated
  // (or untrusted) loader. Loading is lazy: only the header is read here.
  int rc = load(info.format, &ref.img);
  if (rc != 0 || !ref.img) return "corrupt " + info.format + " image: " + vips_error_text();
  info.width = vips().image_get_width(ref.img);
  info.height = vips().image_get_height(ref.img);
  if (info.width <= 0 || info.height <= 0) return "corrupt " + info.format + " image: no size";
  return info;
}
}  // namespace

std::variant<ImageInfo, std::string> read_image_info(const std::filesystem::path& path,
                                                     std::string_view head) {
  const std::string file = path.string();
  return describe_image(head, [&](const std::string& format, VipsImage** out) {
    auto load = vips_loader(format).file;
    return load ? load(file.c_str(), out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr) : -1;
  });
}

std::variant<ImageInfo, std::string> read_image_info_in_memory(std::string_view bytes) {
  return describe_image(bytes.substr(0, kSniffBytes), [&](const std::string& format, VipsImage** out) {
    auto load = vips_loader(format).buffer;
    // libvips does not write through the pointer; its buffer loaders take
    // a void* only because they may also adopt a buffer.
    void* b = const_cast<char*>(bytes.data());
    return load ? load(b, bytes.size(), out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr) : -1;
  });
}

}  // namespace crawler
