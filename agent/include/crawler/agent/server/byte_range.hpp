// The Range request header of a blob GET (RFC 9110, section 14): one byte
// range of a file of known size.
#pragma once
#include <cstdint>
#include <string_view>

namespace crawler::agent {

struct RangeAnswer {
  enum Kind {
    whole,          // serve the whole file, 200 (no range, or one ignored)
    partial,        // serve [first, last], 206 with Content-Range
    unsatisfiable,  // 416 with Content-Range: bytes */size
  };
  Kind kind = whole;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

// How to answer `header` (the Range value) for a file of `size` bytes.
// "bytes=a-b", "bytes=a-" and "bytes=-n" are served (b past the end means
// to the end; -n larger than the file means all of it). A header that does
// not parse (another unit, a sign, garbage, b < a) is ignored, as RFC 9110
// allows: the whole file. Several ranges are ignored too (the whole file,
// 200): blobs are images fetched whole or resumed from one offset, and a
// multipart answer would serve nobody. A single range starting at or past
// the end, or "-0", or any range of an empty file, is unsatisfiable.
// Numbers too large for 64 bits count as "past any end".
RangeAnswer parse_range(std::string_view header, std::uint64_t size);

}  // namespace crawler::agent
