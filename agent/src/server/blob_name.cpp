#include "crawler/agent/server/blob_name.hpp"

#include <array>
#include <utility>

#include "crawler/sha256.hpp"

namespace crawler::agent {

bool is_blob_extension(std::string_view ext) {
  if (ext.empty() || ext.size() > 16) return false;
  for (char c : ext)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

std::optional<BlobName> parse_blob_name(std::string_view segment, bool ext_required) {
  if (segment.size() < 64 || !is_sha256_hex(segment.substr(0, 64))) return std::nullopt;
  std::string_view rest = segment.substr(64);
  if (rest.empty()) {
    if (ext_required) return std::nullopt;
    return BlobName{std::string(segment), ""};
  }
  if (rest.front() != '.' || !is_blob_extension(rest.substr(1))) return std::nullopt;
  return BlobName{std::string(segment.substr(0, 64)), std::string(rest.substr(1))};
}

std::string content_type_for_extension(std::string_view ext) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 11> types{{
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"svg", "image/svg+xml"},
      {"avif", "image/avif"},
      {"bmp", "image/bmp"},
      {"ico", "image/x-icon"},
      {"tif", "image/tiff"},
      {"tiff", "image/tiff"},
  }};
  for (const auto& [e, type] : types)
    if (e == ext) return std::string(type);
  return "application/octet-stream";
}

}  // namespace crawler::agent
