// The blob objects' format: zstd (libzstd) inside AES-256-GCM (OpenSSL
// EVP), key from PBKDF2-HMAC-SHA256. See blob_crypto.hpp for the layout.
#include "crawler/agent/blob_crypto.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zstd.h>

#include <cstring>
#include <stdexcept>

namespace crawler::agent {
namespace {

constexpr char kMagic[4] = {'C', 'H', 'A', 'B'};
constexpr unsigned char kVersion = 1;
constexpr std::size_t kNonceBytes = 12;
constexpr const char* kAdPrefix = "crawler_ha-blob-v1:";

std::string associated_data(const std::string& header, const std::string& name) {
  return header + kAdPrefix + name;
}

}  // namespace

BlobKey derive_blob_key(const std::string& passphrase, const std::string& salt, int iterations) {
  BlobKey k;
  if (iterations < 1 ||
      PKCS5_PBKDF2_HMAC(passphrase.data(), static_cast<int>(passphrase.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(k.bytes.size()), k.bytes.data()) != 1)
    throw std::runtime_error("PBKDF2 failed (OpenSSL)");
  return k;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("no random bytes (OpenSSL RAND_bytes failed)");
  return out;
}

bool zstd_helps(std::string_view sample) {
  if (sample.empty()) return false;
  std::string out(ZSTD_compressBound(sample.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), sample.data(), sample.size(), kZstdLevel);
  if (ZSTD_isError(n)) return false;
  return static_cast<double>(n) <= static_cast<double>(sample.size()) * (1.0 - kCompressionMinGain);
}

// ---------------------------------------------------------------------------

struct ObjectSealer::Impl {
  EVP_CIPHER_CTX* cipher = nullptr;
  ZSTD_CCtx* zc = nullptr;
  ~Impl() {
    EVP_CIPHER_CTX_free(cipher);
    ZSTD_freeCCtx(zc);
  }
};

ObjectSealer::ObjectSealer(const BlobKey& key, const std::string& name, Compression c)
    : impl_(std::make_unique<Impl>()), compression_(c) {
  const std::string nonce = random_bytes(kNonceBytes);
  header_.assign(kMagic, 4);
  header_ += static_cast<char>(kVersion);
  header_ += static_cast<char>(c);
  header_ += std::string(2, '\0');
  header_ += nonce;
  impl_->cipher = EVP_CIPHER_CTX_new();
  const std::string ad = associated_data(header_, name);
  int len = 0;
  if (!impl_->cipher || EVP_EncryptInit_ex(impl_->cipher, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(impl_->cipher, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(impl_->cipher, nullptr, nullptr, key.bytes.data(),
                         reinterpret_cast<const unsigned char*>(nonce.data())) != 1 ||
      EVP_EncryptUpdate(impl_->cipher, nullptr, &len, reinterpret_cast<const unsigned char*>(ad.data()),
                        static_cast<int>(ad.size())) != 1)
    throw std::runtime_error("AES-256-GCM cannot start (OpenSSL)");
  if (c == Compression::zstd) {
    impl_->zc = ZSTD_createCCtx();
    if (!impl_->zc || ZSTD_isError(ZSTD_CCtx_setParameter(impl_->zc, ZSTD_c_compressionLevel, kZstdLevel)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(impl_->zc, ZSTD_c_checksumFlag, 0)))
      throw std::runtime_error("zstd cannot start");
  }
}

ObjectSealer::~ObjectSealer() = default;

void ObjectSealer::encrypt(const char* data, std::size_t n, std::string* out) {
  // EVP lengths are ints: feed at most 1 GiB at a time.
  while (n > 0) {
    const int chunk = static_cast<int>(std::min<std::size_t>(n, 1u << 30));
    const std::size_t at = out->size();
    out->resize(at + chunk + 16);
    int len = 0;
    if (EVP_EncryptUpdate(impl_->cipher, reinterpret_cast<unsigned char*>(out->data() + at), &len,
                          reinterpret_cast<const unsigned char*>(data), chunk) != 1)
      throw std::runtime_error("AES-256-GCM failed (OpenSSL)");
    out->resize(at + len);
    data += chunk;
    n -= chunk;
  }
}

void ObjectSealer::compress(const char* data, std::size_t n, bool end, std::string* out) {
  ZSTD_inBuffer in{data, n, 0};
  std::string buf(ZSTD_CStreamOutSize(), '\0');
  for (;;) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    const std::size_t left = ZSTD_compressStream2(impl_->zc, &o, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(left)) throw std::runtime_error(std::string("zstd failed: ") + ZSTD_getErrorName(left));
    encrypt(buf.data(), o.pos, out);
    // continue: done when the input is consumed; end: when the frame is flushed
    if (end ? left == 0 : in.pos == in.size) break;
  }
}

void ObjectSealer::update(const char* data, std::size_t n, std::string* out) {
  if (compression_ == Compression::zstd)
    compress(data, n, false, out);
  else
    encrypt(data, n, out);
}

void ObjectSealer::finish(std::string* out) {
  if (compression_ == Compression::zstd) compress(nullptr, 0, true, out);
  unsigned char rest[32];
  int len = 0;
  unsigned char tag[kBlobTagBytes];
  if (EVP_EncryptFinal_ex(impl_->cipher, rest, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(impl_->cipher, EVP_CTRL_GCM_GET_TAG, kBlobTagBytes, tag) != 1)
    throw std::runtime_error("AES-256-GCM failed at the end (OpenSSL)");
  out->append(reinterpret_cast<char*>(rest), len);
  out->append(reinterpret_cast<char*>(tag), kBlobTagBytes);
}

// ---------------------------------------------------------------------------

struct ObjectOpener::Impl {
  EVP_CIPHER_CTX* cipher = nullptr;
  ZSTD_DCtx* zd = nullptr;
  std::size_t frame_left = 0;  // ZSTD_decompressStream's last hint: 0 when a frame is complete
  bool any_compressed = false;
  ~Impl() {
    EVP_CIPHER_CTX_free(cipher);
    ZSTD_freeDCtx(zd);
  }
};

ObjectOpener::ObjectOpener(const BlobKey& key, const std::string& name)
    : impl_(std::make_unique<Impl>()), key_(key), name_(name) {}

ObjectOpener::~ObjectOpener() = default;

bool ObjectOpener::decrypt(const char* data, std::size_t n, std::string* out, std::string* error) {
  std::string plain;
  while (n > 0) {
    const int chunk = static_cast<int>(std::min<std::size_t>(n, 1u << 30));
    const std::size_t at = plain.size();
    plain.resize(at + chunk + 16);
    int len = 0;
    if (EVP_DecryptUpdate(impl_->cipher, reinterpret_cast<unsigned char*>(plain.data() + at), &len,
                          reinterpret_cast<const unsigned char*>(data), chunk) != 1) {
      *error = "AES-256-GCM failed (OpenSSL)";
      return false;
    }
    plain.resize(at + len);
    data += chunk;
    n -= chunk;
  }
  if (compression_ == Compression::none) {
    out->append(plain);
    return true;
  }
  ZSTD_inBuffer in{plain.data(), plain.size(), 0};
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    const std::size_t r = ZSTD_decompressStream(impl_->zd, &o, &in);
    if (ZSTD_isError(r)) {
      // A wrong key or a changed byte gives garbage here before the tag
      // is checked: say what the tag would have said.
      *error = std::string("authentication failed or damaged data (zstd: ") + ZSTD_getErrorName(r) + ")";
      return false;
    }
    impl_->frame_left = r;
    impl_->any_compressed = true;
    out->append(buf.data(), o.pos);
  }
  return true;
}

bool ObjectOpener::update(const char* data, std::size_t n, std::string* out, std::string* error) {
  if (!started_) {
    const std::size_t take = std::min(n, kBlobHeaderBytes - header_.size());
    header_.append(data, take);
    data += take;
    n -= take;
    if (header_.size() < kBlobHeaderBytes) return true;
    if (std::memcmp(header_.data(), kMagic, 4) != 0 || static_cast<unsigned char>(header_[4]) != kVersion ||
        header_[6] != 0 || header_[7] != 0 ||
        (header_[5] != static_cast<char>(Compression::none) && header_[5] != static_cast<char>(Compression::zstd))) {
      *error = "not a crawler_ha blob object (bad header)";
      return false;
    }
    compression_ = static_cast<Compression>(header_[5]);
    const std::string ad = associated_data(header_, name_);
    impl_->cipher = EVP_CIPHER_CTX_new();
    int len = 0;
    if (!impl_->cipher || EVP_DecryptInit_ex(impl_->cipher, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(impl_->cipher, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_DecryptInit_ex(impl_->cipher, nullptr, nullptr, key_.bytes.data(),
                           reinterpret_cast<const unsigned char*>(header_.data() + 8)) != 1 ||
        EVP_DecryptUpdate(impl_->cipher, nullptr, &len, reinterpret_cast<const unsigned char*>(ad.data()),
                          static_cast<int>(ad.size())) != 1) {
      *error = "AES-256-GCM cannot start (OpenSSL)";
      return false;
    }
    if (compression_ == Compression::zstd && !(impl_->zd = ZSTD_createDCtx())) {
      *error = "zstd cannot start";
      return false;
    }
    started_ = true;
  }
  // The last 16 bytes seen may be the tag: hold them back.
  held_.append(data, n);
  if (held_.size() <= kBlobTagBytes) return true;
  const std::size_t ready = held_.size() - kBlobTagBytes;
  if (!decrypt(held_.data(), ready, out, error)) return false;
  held_.erase(0, ready);
  return true;
}

bool ObjectOpener::finish(std::string* out, std::string* error) {
  if (!started_ || held_.size() != kBlobTagBytes) {
    *error = "truncated object";
    return false;
  }
  unsigned char rest[32];
  int len = 0;
  if (EVP_CIPHER_CTX_ctrl(impl_->cipher, EVP_CTRL_GCM_SET_TAG, kBlobTagBytes, held_.data()) != 1 ||
      EVP_DecryptFinal_ex(impl_->cipher, rest, &len) != 1) {
    *error = "authentication failed (a wrong passphrase, a changed byte, or another object's content)";
    return false;
  }
  if (len > 0 && !decrypt(reinterpret_cast<char*>(rest), len, out, error)) return false;
  if (compression_ == Compression::zstd && (!impl_->any_compressed || impl_->frame_left != 0)) {
    *error = "truncated compressed data";
    return false;
  }
  return true;
}

std::string seal_object(const BlobKey& key, const std::string& name, std::string_view plain, Compression c) {
  ObjectSealer s(key, name, c);
  std::string out = s.header();
  s.update(plain.data(), plain.size(), &out);
  s.finish(&out);
  return out;
}

std::optional<std::string> open_object(const BlobKey& key, const std::string& name, std::string_view sealed,
                                       std::string* error) {
  ObjectOpener o(key, name);
  std::string out;
  if (!o.update(sealed.data(), sealed.size(), &out, error) || !o.finish(&out, error)) return std::nullopt;
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int a = v(hex[i]), b = v(hex[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    out += static_cast<char>(a * 16 + b);
  }
  return out;
}

}  // namespace crawler::agent
