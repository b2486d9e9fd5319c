#include "crawler/blob_bundle.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "crawler/sha256.hpp"

namespace crawler {
namespace {
// "<64 hex> <20 digits at most>": anything longer is not a bundle line.
constexpr std::size_t kMaxLine = 64 + 1 + 20;
}  // namespace

std::string bundle_entry_line(const std::string& sha256, std::uint64_t size) {
  return sha256 + " " + std::to_string(size) + "\n";
}

std::string bundle_absent_line(const std::string& sha256) { return sha256 + " -\n"; }

BundleReader::BundleReader(std::vector<std::string> expected, Callbacks callbacks)
    : expected_(std::move(expected)), cb_(std::move(callbacks)) {}

bool BundleReader::take_line() {
  std::string line = std::move(line_);
  line_.clear();
  const std::string& want = expected_[next_];
  std::size_t space = line.find(' ');
  std::string_view name = std::string_view(line).substr(0, space);
  if (space == std::string_view::npos || !is_sha256_hex(name)) {
    error_ = "malformed bundle line for entry " + std::to_string(next_);
    return false;
  }
  if (name != want) {
    error_ = "bundle entry " + std::to_string(next_) + " is " + std::string(name) + ", not " + want;
    return false;
  }
  std::string_view rest = std::string_view(line).substr(space + 1);
  std::size_t index = next_++;
  if (rest == "-") return cb_.absent(index);
  std::uint64_t size = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), size);
  if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size()) {
    error_ = "malformed size in the bundle line for " + want;
    return false;
  }
  if (!cb_.begin(index, size)) return false;
  in_entry_ = true;
  remaining_ = size;
  if (size == 0) {
    in_entry_ = false;
    return cb_.end(index);
  }
  return true;
}

bool BundleReader::feed(const char* bytes, std::size_t n) {
  while (n > 0) {
    if (in_entry_) {
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n));
      if (!cb_.data(next_ - 1, bytes, take)) return false;
      bytes += take;
      n -= take;
      remaining_ -= take;
      if (remaining_ == 0) {
        in_entry_ = false;
        if (!cb_.end(next_ - 1)) return false;
      }
      continue;
    }
    if (next_ >= expected_.size()) {
      error_ = "bytes after the bundle's last entry";
      return false;
    }
    const char* nl = static_cast<const char*>(std::memchr(bytes, '\n', n));
    std::size_t take = nl ? static_cast<std::size_t>(nl - bytes) : n;
    if (line_.size() + take > kMaxLine) {
      error_ = "a bundle line longer than " + std::to_string(kMaxLine) + " bytes";
      return false;
    }
    line_.append(bytes, take);
    bytes += take;
    n -= take;
    if (!nl) continue;
    ++bytes;  // the newline
    --n;
    if (!take_line()) return false;
  }
  return true;
}

}  // namespace crawler
