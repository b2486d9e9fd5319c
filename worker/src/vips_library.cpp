#include "vips_library.hpp"

#include <dlfcn.h>

#include <mutex>

#include "crawler/image_info.hpp"

namespace crawler {
namespace {

VipsApi g_api;

template <typename F>
bool bind(void* lib, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

void open_vips() {
  const std::string soname = "libvips.so." + std::to_string(VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE);
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    g_api.error = std::string("libvips is not available: ") + dlerror();
    return;
  }
  VipsApi& v = g_api;
  // dlsym on the handle also finds GLib's symbols (libvips' dependencies).
  bool ok = bind(lib, v.init, "vips_init") && bind(lib, v.error_buffer, "vips_error_buffer") &&
            bind(lib, v.error_clear, "vips_error_clear") && bind(lib, v.cache_set_max, "vips_cache_set_max") &&
            bind(lib, v.concurrency_set, "vips_concurrency_set") && bind(lib, v.jpegload, "vips_jpegload") &&
            bind(lib, v.pngload, "vips_pngload") && bind(lib, v.gifload, "vips_gifload") &&
            bind(lib, v.webpload, "vips_webpload") && bind(lib, v.svgload, "vips_svgload") &&
            bind(lib, v.heifload, "vips_heifload") && bind(lib, v.jpegload_buffer, "vips_jpegload_buffer") &&
            bind(lib, v.pngload_buffer, "vips_pngload_buffer") && bind(lib, v.gifload_buffer, "vips_gifload_buffer") &&
            bind(lib, v.webpload_buffer, "vips_webpload_buffer") && bind(lib, v.svgload_buffer, "vips_svgload_buffer") &&
            bind(lib, v.heifload_buffer, "vips_heifload_buffer") && bind(lib, v.image_get_width, "vips_image_get_width") &&
            bind(lib, v.image_get_height, "vips_image_get_height") && bind(lib, v.thumbnail, "vips_thumbnail") &&
            bind(lib, v.thumbnail_image, "vips_thumbnail_image") && bind(lib, v.image_hasalpha, "vips_image_hasalpha") &&
            bind(lib, v.image_guess_interpretation, "vips_image_guess_interpretation") &&
            bind(lib, v.colourspace, "vips_colourspace") &&
            bind(lib, v.image_copy_memory, "vips_image_copy_memory") && bind(lib, v.image_get_string, "vips_image_get_string") &&
            bind(lib, v.jpegsave_buffer, "vips_jpegsave_buffer") && bind(lib, v.pngsave_buffer, "vips_pngsave_buffer") &&
            bind(lib, v.free, "g_free") &&
            bind(lib, v.object_unref, "g_object_unref") && bind(lib, v.log_set_handler, "g_log_set_handler") &&
            bind(lib, v.module_open, "g_module_open");
  if (!ok) g_api.error = std::string("libvips is not usable: ") + dlerror();
}

}  // namespace

// The HEIF/AVIF loader is a libvips module; it is opened when the first
// such image comes (see kSkipVipsModules in main.cpp).
void open_heif_module() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string path = std::string(CRAWLER_VIPS_LIBDIR) + "/vips-modules-" + std::to_string(VIPS_MAJOR_VERSION) + "." +
                       std::to_string(VIPS_MINOR_VERSION) + "/vips-heif.so";
    g_api.module_open(path.c_str(), G_MODULE_BIND_LAZY);  // registers heifload (kept resident)
  });
}

VipsImageRef::~VipsImageRef() {
  if (img) g_api.object_unref(img);
}

std::string vips_error_text() {
  std::string e = g_api.error_buffer();
  g_api.error_clear();
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  auto nl = e.find('\n');
  return nl == std::string::npos ? e : e.substr(0, nl);
}

const VipsApi& vips() { return g_api; }

VipsLoader vips_loader(const std::string& format) {
  const VipsApi& v = g_api;
  if (format == "jpeg") return {"jpegload", v.jpegload, v.jpegload_buffer};
  if (format == "png") return {"pngload", v.pngload, v.pngload_buffer};
  if (format == "gif") return {"gifload", v.gifload, v.gifload_buffer};
  if (format == "webp") return {"webpload", v.webpload, v.webpload_buffer};
  if (format == "svg") return {"svgload", v.svgload, v.svgload_buffer};
  if (format == "avif" || format == "heic") return {"heifload", v.heifload, v.heifload_buffer};
  return {};
}

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
    if (!g_api.error.empty()) return;
    if (g_api.init(argv0 ? argv0 : "crawler-worker") != 0) {
      g_api.error = "libvips failed to start: " + vips_error_text();
      return;
    }
    g_api.log_set_handler("VIPS", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO),
                           quiet_vips, nullptr);
    g_api.cache_set_max(0);  // each image is decoded once: nothing worth caching
    g_api.concurrency_set(1);
  });
}


}  // namespace crawler
