// Several blobs in one HTTP body: a follower catching up on thousands of
// small images pays one request per bundle instead of one per blob. The
// agent's bundle route writes the body; the peer client reads it.
//
// For each name asked, in the order asked, the body holds either
//   "<sha256> <size>\n" and then exactly <size> bytes of the blob, or
//   "<sha256> -\n" when the store does not hold it.
// Nothing else: no trailer, and a body that ends early is broken.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace crawler {

// The line that introduces a held blob of `size` bytes.
std::string bundle_entry_line(const std::string& sha256, std::uint64_t size);
// The line that says the store does not hold `sha256`.
std::string bundle_absent_line(const std::string& sha256);

// Reads a bundle body as it arrives, in pieces cut anywhere, and checks it
// against the names asked for: an entry for another blob, out of order, a
// malformed line or bytes after the last entry are errors. Each callback
// returns false to stop reading (feed() then returns false with error()
// empty).
class BundleReader {
 public:
  struct Callbacks {
    std::function<bool(std::size_t index, std::uint64_t size)> begin;  // entry `index` follows
    std::function<bool(std::size_t index, const char* data, std::size_t n)> data;
    std::function<bool(std::size_t index)> end;     // all of entry `index`'s bytes were given
    std::function<bool(std::size_t index)> absent;  // the store does not hold entry `index`
  };

  // `expected`: the sha256 names asked for, in order.
  BundleReader(std::vector<std::string> expected, Callbacks callbacks);

  // Takes the next `n` bytes of the body; false when they break the format
  // (error() says how) or a callback stopped the reading.
  bool feed(const char* bytes, std::size_t n);
  // Whether every entry has been read in full.
  bool complete() const { return next_ == expected_.size() && !in_entry_; }
  // Entries read in full or answered absent so far.
  std::size_t entries_done() const { return next_ - (in_entry_ ? 1 : 0); }
  const std::string& error() const { return error_; }

 private:
  bool take_line();
  std::vector<std::string> expected_;
  Callbacks cb_;
  std::size_t next_ = 0;       // index of the entry whose line comes next (or whose bytes are read)
  bool in_entry_ = false;      // reading the bytes of entry next_ - 1
  std::uint64_t remaining_ = 0;
  std::string line_;
  std::string error_;
};

}  // namespace crawler
