// Thumbnails of a stored image (Scrapy's IMAGES_THUMBS), made with libvips:
// each named size is a square box in pixels the thumbnail fits in, the
// aspect ratio kept, never enlarged (an image smaller than the box keeps
// its size). The sizes are the session's `thumbnails` setting, which the
// extension validated (crawl_thumbnail_sizes()).
//
// Encoding, one rule: an image with an alpha channel becomes a PNG (its
// transparency kept, and every reader has PNG), any other a JPEG at quality
// 85 (a tenth of a PNG's bytes for photographs). Both in sRGB (a CMYK or
// 16-bit image is converted), without metadata (no EXIF, no profile).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "crawler/image_info.hpp"

namespace crawler {

struct ThumbnailSize {
  std::string name;  // ^[a-z][a-z0-9_]{0,31}$
  int box = 0;       // the side of the box, in pixels
};

// One thumbnail made, encoded, not yet stored.
struct Thumbnail {
  std::string name;
  std::string bytes;   // the encoded file
  std::string format;  // "jpeg" or "png"
  std::string ext;     // its extension in the store: "jpg" or "png"
  int width = 0;
  int height = 0;
};

// The session's setting as crawl_session_settings() gives it: a JSON
// object {"name": box, ...}; "" (NULL) is no thumbnails. An error names
// what is wrong (a setting the extension would have refused).
std::variant<std::vector<ThumbnailSize>, std::string> parse_thumbnail_sizes(const std::string& json);

// Makes every size of the image file at `path`, which read_image_info()
// judged as `info`, in the order of `sizes`; or says why it cannot (a
// format libvips does not decode here, BMP and ICO; more than `max_pixels`
// pixels, refused as the original is; a decoding or encoding error).
// The file is decoded once, at the largest size (shrinking on load where
// the format allows: JPEG, WebP, SVG, HEIF), and the smaller sizes are made
// from that; an animated image gives its first frame. Runs on any thread.
std::variant<std::vector<Thumbnail>, std::string> make_thumbnails(const std::filesystem::path& path,
                                                                  const ImageInfo& info,
                                                                  const std::vector<ThumbnailSize>& sizes,
                                                                  std::uint64_t max_pixels);

}  // namespace crawler
