// sha256 (OpenSSL EVP) for the content-addressed store: the hash names a
// blob, so every place that names, checks or re-hashes one uses these.
#pragma once
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace crawler {

// An incremental sha256. Throws std::runtime_error when OpenSSL cannot start
// one (out of memory).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  // The digest as 64 lower-case hex digits; the hash cannot be updated after.
  std::string hex_digest();

 private:
  evp_md_ctx_st* md_;
};

// Whether `s` is a blob name: exactly 64 lower-case hex digits.
bool is_sha256_hex(std::string_view s);

// The sha256 of a whole file, read in 256 KiB pieces; nullopt with *error
// set when it cannot be read. `bytes_read`, when given, counts what was read
// (a rate limiter's input).
std::optional<std::string> sha256_file(const std::filesystem::path& file, std::string* error,
                                       std::uint64_t* bytes_read = nullptr);

}  // namespace crawler
