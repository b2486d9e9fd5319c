#include "crawler/thumbnail.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "vips_library.hpp"

namespace crawler {
namespace {

bool name_ok(const std::string& n) {
  if (n.empty() || n.size() > 32 || n[0] < 'a' || n[0] > 'z') return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// Takes a new reference into `ref`, dropping the one it had.
void replace(VipsImageRef& ref, VipsImage* next) {
  VipsImageRef old;
  old.img = ref.img;
  ref.img = next;
}

// Encodes `img` by the rule in thumbnail.hpp, in sRGB (a CMYK, Lab or
// 16-bit image converted; grey stays grey); "" or why not.
std::string encode(VipsImage* img, Thumbnail& out) {
  const VipsApi& v = vips();
  VipsImageRef converted;
  VipsInterpretation i = v.image_guess_interpretation(img);
  if (i != VIPS_INTERPRETATION_sRGB && i != VIPS_INTERPRETATION_B_W) {
    if (v.colourspace(img, &converted.img, VIPS_INTERPRETATION_sRGB, nullptr) != 0) return vips_error_text();
    img = converted.img;
  }
  void* buf = nullptr;
  size_t len = 0;
  int rc;
  if (v.image_hasalpha(img)) {
    out.format = "png";
    out.ext = "png";
    rc = v.pngsave_buffer(img, &buf, &len, "compression", 6, "strip", TRUE, nullptr);
  } else {
    out.format = "jpeg";
    out.ext = "jpg";
    rc = v.jpegsave_buffer(img, &buf, &len, "Q", 85, "strip", TRUE, "optimize_coding", TRUE, nullptr);
  }
  if (rc != 0 || !buf) return vips_error_text();
  out.bytes.assign(static_cast<const char*>(buf), len);
  v.free(buf);
  out.width = v.image_get_width(img);
  out.height = v.image_get_height(img);
  return "";
}

}  // namespace

std::variant<std::vector<ThumbnailSize>, std::string> parse_thumbnail_sizes(const std::string& json) {
  std::vector<ThumbnailSize> sizes;
  if (json.empty()) return sizes;
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return std::string("thumbnails is not a JSON object");
  for (const auto& [name, box] : j.items()) {
    if (!name_ok(name)) return "invalid thumbnail name \"" + name.substr(0, 40) + "\"";
    if (!box.is_number_integer() || box.get<long long>() < 1 || box.get<long long>() > 100000)
      return "thumbnail size " + name + " is not a number of pixels";
    sizes.push_back({name, box.get<int>()});
  }
  if (sizes.size() > 8) return std::string("more than 8 thumbnail sizes");
  return sizes;
}

std::variant<std::vector<Thumbnail>, std::string> make_thumbnails(const std::filesystem::path& path,
                                                                  const ImageInfo& info,
                                                                  const std::vector<ThumbnailSize>& sizes,
                                                                  std::uint64_t max_pixels) {
  std::vector<Thumbnail> made;
  if (sizes.empty()) return made;
  // The loader libvips must pick: vips_thumbnail() finds its loader by the
  // file's magic bytes, the same bytes the crawler sniffed; the loader it
  // found is checked against this one.
  const char* loader = vips_loader(info.format).name;
  if (!loader) return "no thumbnail: libvips has no " + info.format + " loader here";
  // The original's own limit: a pixel bomb is not decoded for a thumbnail
  // either (PNG and GIF cannot shrink on load: all its pixels would be).
  if (static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) > max_pixels)
    return "no thumbnail: " + std::to_string(info.width) + "x" + std::to_string(info.height) +
           " is over max_pixels " + std::to_string(max_pixels);
  init_image_library(nullptr);
  const VipsApi& v = vips();
  if (!v.error.empty()) return v.error;
  if (info.format == "avif" || info.format == "heic") open_heif_module();

  int largest = 0;
  for (const auto& s : sizes) largest = std::max(largest, s.box);
  // Decoded once, at the largest box (shrink-on-load where the format has
  // it), into memory when smaller sizes are made from it: the lazy
  // pipeline would decode the file again for each.
  VipsImageRef big;
  if (v.thumbnail(path.c_str(), &big.img, largest, "height", largest, "size", VIPS_SIZE_DOWN, nullptr) != 0)
    return "thumbnail: " + vips_error_text();
  const char* used = nullptr;
  if (v.image_get_string(big.img, "vips-loader", &used) != 0 || !used || std::string(used) != loader) {
    v.error_clear();
    return std::string("thumbnail: libvips chose another loader than ") + loader;
  }
  if (sizes.size() > 1) {
    VipsImage* mem = v.image_copy_memory(big.img);
    if (!mem) return "thumbnail: " + vips_error_text();
    replace(big, mem);
  }
  for (const auto& s : sizes) {
    Thumbnail t;
    t.name = s.name;
    VipsImageRef smaller;
    if (s.box < largest &&
        v.thumbnail_image(big.img, &smaller.img, s.box, "height", s.box, "size", VIPS_SIZE_DOWN, nullptr) != 0)
      return "thumbnail " + s.name + ": " + vips_error_text();
    if (std::string e = encode(smaller.img ? smaller.img : big.img, t); !e.empty())
      return "thumbnail " + s.name + ": " + e;
    made.push_back(std::move(t));
  }
  return made;
}

}  // namespace crawler
