// The last segment of a blob route: <sha256>.<ext> or <sha256>.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace crawler::agent {

struct BlobName {
  std::string sha256;  // 64 lower-case hex digits
  std::string ext;     // empty when the name had none
};

// Whether `ext` is a stored file's extension: 1 to 16 of [a-z0-9] (the
// extension's rule for images.file_path, so every stored name is one a row
// can point at).
bool is_blob_extension(std::string_view ext);

// Parses a route segment. Anything else than exactly the sha256, a dot and
// an extension (or the sha256 alone, unless `ext_required`) is refused:
// upper case, path separators, dots, NUL, percent escapes, any length.
std::optional<BlobName> parse_blob_name(std::string_view segment, bool ext_required);

// The Content-Type a blob is served with, from its extension: the common
// image types, else application/octet-stream.
std::string content_type_for_extension(std::string_view ext);

}  // namespace crawler::agent
