// The format of a blob backup's objects (docs/backup.md, "The blobs"): each
// object in the repository is one blob (or one manifest), compressed with
// zstd where that helps and encrypted with AES-256-GCM under a key derived
// from the repository's passphrase. OpenSSL and libzstd do the work; this
// only puts their pieces in order.
//
// An object is
//   header (20 bytes, in clear, authenticated):
//     "CHAB"             magic
//     0x01               format version
//     0x00 or 0x01       compression: none, zstd
//     0x00 0x00          reserved, zero
//     nonce (12 bytes)   random, one per object
//   ciphertext of the (compressed) bytes
//   GCM tag (16 bytes)
// with the associated data header || "crawler_ha-blob-v1:" || name, where the
// name is the blob's sha256 (or the manifest's own name): an object moved
// to another blob's place, or a header edited to say "raw", fails the tag.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace crawler::agent {

constexpr std::size_t kBlobKeyBytes = 32;
constexpr std::size_t kBlobHeaderBytes = 20;
constexpr std::size_t kBlobTagBytes = 16;
// The sample the compression decision is taken on, and the gain it needs.
constexpr std::size_t kCompressionSample = 1 << 20;
constexpr double kCompressionMinGain = 0.05;
constexpr int kZstdLevel = 3;

// A key for the objects: 32 bytes, never written anywhere.
struct BlobKey {
  std::array<unsigned char, kBlobKeyBytes> bytes{};
};

// PBKDF2-HMAC-SHA256 of the passphrase with `salt`, `iterations` rounds.
// Throws std::runtime_error when OpenSSL fails.
BlobKey derive_blob_key(const std::string& passphrase, const std::string& salt, int iterations);

// `n` bytes from OpenSSL's CSPRNG. Throws std::runtime_error when it fails.
std::string random_bytes(std::size_t n);

enum class Compression : unsigned char { none = 0, zstd = 1 };

// Whether zstd at kZstdLevel makes `sample` (a file's first
// kCompressionSample bytes) smaller by at least kCompressionMinGain: JPEG,
// PNG or WebP bytes do not shrink, and compressing them would only cost
// CPU at backup and restore. An empty sample: no.
bool zstd_helps(std::string_view sample);

// Seals one object as it is streamed: header() first, then what update()
// and finish() append. The caller decides the compression.
class ObjectSealer {
 public:
  // `name`: the associated data (the blob's sha256, the manifest's name).
  // Throws std::runtime_error when OpenSSL or zstd cannot start.
  ObjectSealer(const BlobKey& key, const std::string& name, Compression c);
  ~ObjectSealer();
  ObjectSealer(const ObjectSealer&) = delete;
  ObjectSealer& operator=(const ObjectSealer&) = delete;
  // The 20-byte header (the first bytes of the object).
  const std::string& header() const { return header_; }
  // Appends to *out the sealed bytes of `n` more plain bytes (maybe none
  // yet: zstd buffers). Throws std::runtime_error on a library failure.
  void update(const char* data, std::size_t n, std::string* out);
  // Appends the rest and the tag; call once.
  void finish(std::string* out);

 private:
  void encrypt(const char* data, std::size_t n, std::string* out);
  void compress(const char* data, std::size_t n, bool end, std::string* out);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string header_;
  Compression compression_;
};

// Opens one object as it is streamed. The plain bytes update() gives are
// NOT authenticated until finish() has returned true: a caller hashes or
// spools them, and believes them only then.
class ObjectOpener {
 public:
  ObjectOpener(const BlobKey& key, const std::string& name);
  ~ObjectOpener();
  ObjectOpener(const ObjectOpener&) = delete;
  ObjectOpener& operator=(const ObjectOpener&) = delete;
  // Feeds `n` more bytes of the object; appends plain bytes to *out. False
  // with *error on a bad header or bad compressed data.
  bool update(const char* data, std::size_t n, std::string* out, std::string* error);
  // Checks the tag (and that the zstd frame is whole). False with *error
  // ("authentication failed": a wrong key, a changed byte, another
  // object's name; or a truncated object).
  bool finish(std::string* out, std::string* error);
  Compression compression() const { return compression_; }

 private:
  bool decrypt(const char* data, std::size_t n, std::string* out, std::string* error);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const BlobKey key_;
  const std::string name_;
  std::string header_, held_;  // the header until whole; the last 16 bytes (maybe the tag)
  Compression compression_ = Compression::none;
  bool started_ = false;
};

// The whole object of `plain`, in one call (manifests, the key check, tests).
std::string seal_object(const BlobKey& key, const std::string& name, std::string_view plain, Compression c);
// The plain bytes of a whole object, authenticated; nothing with *error.
std::optional<std::string> open_object(const BlobKey& key, const std::string& name, std::string_view sealed,
                                       std::string* error);

// Lower-case hex of bytes, and back (nothing for odd lengths or non-hex).
std::string to_hex(std::string_view bytes);
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace crawler::agent
