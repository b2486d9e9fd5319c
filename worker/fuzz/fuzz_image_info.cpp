// Fuzz target: what the crawler makes of the first bytes of a downloaded
// file (src/image_info.cpp): sniff_format (the format by magic bytes, which
// decides the loader and the stored extension) and describe_bytes (the
// error text for bytes that are not an image). Pure functions of the head.
//
// Input: the first bytes of a response body (the crawler passes up to 4 KiB).
//
// Contract checked (a violation traps, so libFuzzer keeps the input):
//   - no memory error, undefined behaviour or crash;
//   - sniff_format names one of the nine accepted formats or nothing, and
//     depends on the first 4 KiB only (the head the crawler keeps);
//   - describe_bytes is never empty and is printable ASCII (it goes into
//     the frontier's last_error and the logs).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crawler/image_info.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  auto fmt = crawler::sniff_format(head);
  if (fmt) {
    static const std::string_view kFormats[] = {"jpeg", "png", "gif", "webp", "bmp",
                                                "svg",  "avif", "heic", "ico"};
    bool known = false;
    for (auto f : kFormats) known = known || *fmt == f;
    check(known);
  }
  if (size > 4096) check(crawler::sniff_format(head.substr(0, 4096)) == fmt);
  std::string d = crawler::describe_bytes(head);
  check(!d.empty());
  for (unsigned char c : d) check(c >= 0x20 && c < 0x7f);
  return 0;
}
