// Fuzz target: read_image_info (src/image_info.cpp) on whole files, and
// read_image_info_in_memory on the same bytes (a small image bound for the
// agent is read from memory by libvips' buffer loaders): the
// header checks of its own (BMP, ICO) and the libvips loader chosen by the
// sniffed format (JPEG, PNG, GIF, WebP, SVG, HEIF/AVIF), opened at run time
// as in the worker. libvips and the codec libraries behind it are system
// libraries without instrumentation: this finds what the crawler does with
// their answers, and crashes in them on headers, not their internal bugs.
//
// Input: a downloaded file; its first 4 KiB are the head, as in the crawler.
// The file is a memfd named by /proc/self/fd/N (no disk writes).
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour or crash;
//   - each answer (file, memory) is either an image with a known format,
//     its extension and MIME type and a positive width and height, or a
//     non-empty error;
//   - bytes sniff_format rejects are always an error.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "crawler/image_info.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

int g_fd = -1;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char*** argv) {
  crawler::init_image_library((*argv)[0]);
  g_fd = memfd_create("fuzz_image_file", 0);
  if (g_fd < 0) __builtin_trap();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != static_cast<ssize_t>(size)) __builtin_trap();
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string_view head = bytes.substr(0, 4096);
  for (const auto& r : {crawler::read_image_info("/proc/self/fd/" + std::to_string(g_fd), head),
                         crawler::read_image_info_in_memory(bytes)}) {
    if (auto* info = std::get_if<crawler::ImageInfo>(&r)) {
      check(!info->format.empty() && !info->ext.empty() && !info->mime.empty());
      check(info->width > 0 && info->height > 0);
      check(crawler::sniff_format(head) == info->format);
    } else {
      check(!std::get<std::string>(r).empty());
    }
  }
  return 0;
}
