// What an image file is: format by magic bytes (never by name), width and
// height from its header (libvips reads headers without decoding pixels).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace crawler {

struct ImageInfo {
  std::string format;  // jpeg, png, gif, webp, bmp, svg, avif, heic, ico
  std::string ext;     // file extension used in the store
  std::string mime;
  int width = 0;
  int height = 0;
};

// Format named by the first bytes of a file, or nothing.
std::optional<std::string> sniff_format(std::string_view head);

// A human-readable description of bytes that are not an image, for errors:
// "HTML text", "a ZIP archive", "bytes 4a 75 6e 6b".
std::string describe_bytes(std::string_view head);

// Reads format and dimensions of the file at `path` whose first bytes are
// `head` (at least the first 4 KiB when the file is that long). Returns an
// error message when the bytes are not an image the crawler accepts.
std::variant<ImageInfo, std::string> read_image_info(const std::filesystem::path& path,
                                                     std::string_view head);
// The same for a whole image held in memory (`bytes` must outlive the call
// only). Same answers as read_image_info() for the same bytes.
std::variant<ImageInfo, std::string> read_image_info_in_memory(std::string_view bytes);

// Initialises libvips once per process (idempotent, thread-safe).
void init_image_library(const char* argv0);

}  // namespace crawler
