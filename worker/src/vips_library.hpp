// libvips, opened at run time: the entry points the worker uses, bound
// once (dlopen), and libvips started once. Private to the worker's sources
// that decode images (image_info.cpp, thumbnail.cpp).
#pragma once
#include <gmodule.h>
#include <vips/vips.h>  // types and prototypes: the library itself is opened at run time

#include <string>

namespace crawler {

// The bound entry points; `error` says why libvips is not usable ("" when
// it is). Filled by init_image_library() (image_info.hpp).
struct VipsApi {
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
  // The same loaders for bytes in memory (a small image kept unspooled).
  decltype(&vips_jpegload_buffer) jpegload_buffer = nullptr;
  decltype(&vips_pngload_buffer) pngload_buffer = nullptr;
  decltype(&vips_gifload_buffer) gifload_buffer = nullptr;
  decltype(&vips_webpload_buffer) webpload_buffer = nullptr;
  decltype(&vips_svgload_buffer) svgload_buffer = nullptr;
  decltype(&vips_heifload_buffer) heifload_buffer = nullptr;
  decltype(&vips_image_get_width) image_get_width = nullptr;
  decltype(&vips_image_get_height) image_get_height = nullptr;
  // Thumbnails (thumbnail.cpp).
  decltype(&vips_thumbnail) thumbnail = nullptr;
  decltype(&vips_thumbnail_image) thumbnail_image = nullptr;
  decltype(&vips_image_hasalpha) image_hasalpha = nullptr;
  decltype(&vips_image_guess_interpretation) image_guess_interpretation = nullptr;
  decltype(&vips_colourspace) colourspace = nullptr;
  decltype(&vips_image_copy_memory) image_copy_memory = nullptr;
  decltype(&vips_image_get_string) image_get_string = nullptr;
  decltype(&vips_jpegsave_buffer) jpegsave_buffer = nullptr;
  decltype(&vips_pngsave_buffer) pngsave_buffer = nullptr;
  decltype(&g_free) free = nullptr;
  decltype(&g_object_unref) object_unref = nullptr;
  decltype(&g_log_set_handler) log_set_handler = nullptr;
  decltype(&g_module_open) module_open = nullptr;
  std::string error;  // why libvips is not usable
};


// The entry points, once init_image_library() has run.
const VipsApi& vips();

// The libvips loader of a format sniff_format() names: the operation's name
// and its entry points for a file and for bytes in memory (null until
// init_image_library() has run). Every loader takes the same arguments.
// name is null for the formats libvips has no loader for here (bmp, ico:
// they would need ImageMagick).
struct VipsLoader {
  const char* name = nullptr;
  decltype(&vips_jpegload) file = nullptr;
  decltype(&vips_jpegload_buffer) buffer = nullptr;
};
VipsLoader vips_loader(const std::string& format);

// Opens libvips' HEIF/AVIF loader module once, when the first such image
// comes (see kSkipVipsModules in main.cpp).
void open_heif_module();

// libvips' last error, its first line, and the error buffer cleared.
std::string vips_error_text();

// An image reference dropped with its scope.
struct VipsImageRef {
  VipsImage* img = nullptr;
  VipsImageRef() = default;
  VipsImageRef(const VipsImageRef&) = delete;
  VipsImageRef& operator=(const VipsImageRef&) = delete;
  ~VipsImageRef();
};

}  // namespace crawler
