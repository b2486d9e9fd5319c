// The blobs of a backup in the repository: the layout, the lock, the key,
// writing and checking objects, manifests, and retention. See
// blob_backup.hpp for the layout and docs/backup.md for the why.
#include "crawler/agent/blob_backup.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "crawler/agent/store_ops.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"

namespace fs = std::filesystem;

namespace crawler::agent {
namespace {

constexpr std::size_t kPiece = 1 << 20;
constexpr const char* kKeyCheckName = "key-check";
constexpr const char* kKeyCheckText = "crawler_ha blob repository key check";
constexpr const char* kTempPrefix = ".tmp-";

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Makes `dir` and its parents, mode 0750 (the repository's, as pgBackRest's).
bool make_dirs(const fs::path& dir, std::string* error) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return true;
  if (!make_dirs(dir.parent_path(), error)) return false;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    *error = errno_text("cannot create the directory " + dir.string());
    return false;
  }
  // the new entry in its parent must survive a crash as the files in it do
  fsync_directory(dir.parent_path());
  return true;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// A temporary file beside `path`, removed unless kept.
struct TempFile {
  fs::path path;
  int fd = -1;
  bool keep = false;
  explicit TempFile(const fs::path& target)
      : path(target.parent_path() / (kTempPrefix + target.filename().string() + "." + std::to_string(::getpid()))) {
    ::unlink(path.c_str());
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
  }
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep) ::unlink(path.c_str());
  }
  // fsync, drop it from the page cache (so that reading it back reads the
  // disk), close, rename over `target`, fsync the directory.
  bool install(const fs::path& target, std::string* error) {
    if (::fsync(fd) != 0) {
      *error = errno_text("cannot fsync " + path.string());
      return false;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    int r = ::close(fd);
    fd = -1;
    if (r != 0 || ::rename(path.c_str(), target.c_str()) != 0) {
      *error = errno_text("cannot write " + target.string());
      return false;
    }
    keep = true;
    if (!fsync_directory(target.parent_path())) {
      *error = errno_text("cannot fsync the directory " + target.parent_path().string());
      return false;
    }
    return true;
  }
};

bool read_whole(const fs::path& path, std::string* out, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = errno_text(path.string());
    return false;
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = errno_text(path.string());
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, n);
  }
  ::close(fd);
  return true;
}

bool safe_name_part(const std::string& s) {
  if (s.empty() || s.size() > 63 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; });
}

}  // namespace

// ---------------------------------------------------------------------------
// manifests

bool blob_ref_ok(const BlobRef& b) {
  return is_sha256_hex(b.sha256) && b.file_path.size() > 71 && b.file_path.size() <= 100 &&
         b.file_path.rfind(blob_relative_path(b.sha256, "").string(), 0) == 0 &&
         b.file_path.find('/', 71) == std::string::npos;
}

std::string manifest_to_json(const BlobManifest& m) {
  nlohmann::ordered_json blobs = nlohmann::ordered_json::array();
  std::uint64_t bytes = 0;
  for (const auto& b : m.blobs) {
    blobs.push_back({b.sha256, b.file_path, b.size});
    bytes += b.size;
  }
  nlohmann::ordered_json doc = {{"format", 1},           {"stanza", m.stanza},
                                {"label", m.label},      {"node", m.node},
                                {"count", m.blobs.size()}, {"bytes", bytes},
                                {"blobs", blobs}};
  return doc.dump();
}

BlobManifest manifest_from_json(const std::string& text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", 0) != 1 || !doc.contains("blobs") ||
      !doc["blobs"].is_array() || !doc.contains("stanza") || !doc["stanza"].is_string() || !doc.contains("label") ||
      !doc["label"].is_string())
    throw std::runtime_error("not a blob manifest of format 1");
  BlobManifest m;
  m.stanza = doc["stanza"].get<std::string>();
  m.label = doc["label"].get<std::string>();
  if (doc.contains("node") && doc["node"].is_string()) m.node = doc["node"].get<std::string>();
  for (const auto& e : doc["blobs"]) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_string() || !e[1].is_string() || !e[2].is_number_unsigned())
      throw std::runtime_error("a malformed blob entry in the manifest");
    BlobRef b{e[0].get<std::string>(), e[1].get<std::string>(), e[2].get<std::uint64_t>()};
    if (!blob_ref_ok(b))
      throw std::runtime_error("a malformed blob entry in the manifest: " + b.sha256.substr(0, 64));
    m.blobs.push_back(std::move(b));
  }
  if (doc.value("count", static_cast<std::size_t>(-1)) != m.blobs.size())
    throw std::runtime_error("the manifest's count is not its number of blobs");
  return m;
}

// ---------------------------------------------------------------------------
// the key

std::string new_key_file_text(const std::string& passphrase, int iterations) {
  const std::string salt = random_bytes(32);
  const BlobKey key = derive_blob_key(passphrase, salt, iterations);
  nlohmann::ordered_json doc = {
      {"format", 1},
      {"kdf", "pbkdf2-hmac-sha256"},
      {"iterations", iterations},
      {"salt", to_hex(salt)},
      {"cipher", "aes-256-gcm"},
      {"check", to_hex(seal_object(key, kKeyCheckName, kKeyCheckText, Compression::none))}};
  return doc.dump(2) + "\n";
}

std::optional<BlobKey> key_from_file_text(const std::string& text, const std::string& passphrase,
                                          std::string* error) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  std::optional<std::string> salt, check;
  if (!doc.is_discarded() && doc.is_object() && doc.value("format", 0) == 1 &&
      doc.value("kdf", "") == "pbkdf2-hmac-sha256" && doc.value("cipher", "") == "aes-256-gcm" &&
      doc.contains("salt") && doc["salt"].is_string() && doc.contains("check") && doc["check"].is_string()) {
    salt = from_hex(doc["salt"].get<std::string>());
    check = from_hex(doc["check"].get<std::string>());
  }
  const int iterations = doc.is_object() ? doc.value("iterations", 0) : 0;
  if (!salt || !check || salt->size() < 16 || iterations < 1000) {
    *error = "key.json is not a crawler_ha blob key file of format 1";
    return std::nullopt;
  }
  BlobKey key = derive_blob_key(passphrase, *salt, iterations);
  std::string why;
  auto plain = open_object(key, kKeyCheckName, *check, &why);
  if (!plain || *plain != kKeyCheckText) {
    *error = "the passphrase does not open this repository's blobs (key.json's check fails): another passphrase's "
             "repository";
    return std::nullopt;
  }
  return key;
}

bool write_file_durably(const fs::path& path, const std::string& bytes, std::string* error) {
  if (!make_dirs(path.parent_path(), error)) return false;
  TempFile t(path);
  if (t.fd < 0) {
    *error = errno_text("cannot create " + t.path.string());
    return false;
  }
  if (!write_all(t.fd, bytes.data(), bytes.size())) {
    *error = errno_text("cannot write " + t.path.string());
    return false;
  }
  return t.install(path, error);
}

// ---------------------------------------------------------------------------
// the repository

BlobRepository::BlobRepository(fs::path repo) : repo_(std::move(repo)), dir_(repo_ / "crawler_ha" / "blobs") {}

BlobRepository::~BlobRepository() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

fs::path BlobRepository::object_path(const std::string& sha256) const {
  return dir_ / sha256.substr(0, 2) / sha256.substr(2, 2) / sha256;
}

std::string BlobRepository::manifest_name(const std::string& stanza, const std::string& label) {
  return "crawler_ha/blobs/manifests/" + stanza + "/" + label + ".json.enc";
}

fs::path BlobRepository::manifest_path(const std::string& stanza, const std::string& label) const {
  return repo_ / manifest_name(stanza, label);
}

bool BlobRepository::lock(bool exclusive, std::string* error) {
  if (lock_fd_ < 0) {
    if (!make_dirs(dir_, error)) return false;
    const fs::path p = dir_ / "lock";
    lock_fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (lock_fd_ < 0) {
      *error = errno_text("cannot open " + p.string());
      return false;
    }
  }
  int r;
  do r = ::flock(lock_fd_, exclusive ? LOCK_EX : LOCK_SH);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    *error = errno_text("cannot lock " + (dir_ / "lock").string());
    return false;
  }
  return true;
}

std::optional<BlobKey> BlobRepository::key(const std::string& passphrase, bool create, std::string* error) {
  const fs::path p = dir_ / "key.json";
  std::string text;
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    if (!create) {
      *error = p.string() + " does not exist: no blob was ever backed up into this repository";
      return std::nullopt;
    }
    try {
      text = new_key_file_text(passphrase, kKeyIterations);
    } catch (const std::exception& e) {
      *error = e.what();
      return std::nullopt;
    }
    if (!write_file_durably(p, text, error)) return std::nullopt;
  } else if (!read_whole(p, &text, error)) {
    return std::nullopt;
  }
  auto k = key_from_file_text(text, passphrase, error);
  if (!k) *error = p.string() + ": " + *error;
  return k;
}

std::vector<std::string> BlobRepository::objects() const {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return out;
  auto hex2 = [](const std::string& s) {
    return s.size() == 2 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
  };
  for (const auto& a : fs::directory_iterator(dir_)) {
    if (!a.is_directory() || !hex2(a.path().filename().string())) continue;
    for (const auto& b : fs::directory_iterator(a.path())) {
      if (!b.is_directory() || !hex2(b.path().filename().string())) continue;
      for (const auto& f : fs::directory_iterator(b.path())) {
        const std::string name = f.path().filename().string();
        if (f.is_regular_file() && is_sha256_hex(name)) out.push_back(name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::string, std::string>> BlobRepository::manifests() const {
  std::vector<std::pair<std::string, std::string>> out;
  const fs::path root = dir_ / "manifests";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  const std::string suffix = ".json.enc";
  for (const auto& s : fs::directory_iterator(root)) {
    if (!s.is_directory() || !safe_name_part(s.path().filename().string())) continue;
    for (const auto& f : fs::directory_iterator(s.path())) {
      std::string name = f.path().filename().string();
      if (!f.is_regular_file() || name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      out.emplace_back(s.path().filename().string(), name.substr(0, name.size() - suffix.size()));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int BlobRepository::remove_temporaries() {
  int n = 0;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().filename().string().rfind(kTempPrefix, 0) == 0) {
      std::error_code rm;
      if (fs::remove(it->path(), rm)) ++n;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------
// objects

ObjectWrite write_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256,
                         const fs::path& source) {
  ObjectWrite w;
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    w.error = errno_text(source.string());
    return w;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{in};
  auto read_piece = [&](std::string* buf) -> bool {
    buf->resize(kPiece);
    std::size_t got = 0;
    while (got < kPiece) {
      ssize_t n = ::read(in, buf->data() + got, kPiece - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    buf->resize(got);
    return true;
  };
  std::string piece, sealed;
  if (!read_piece(&piece)) {
    w.error = errno_text(source.string());
    return w;
  }
  // the decision on the first MiB: kCompressionSample is that piece
  w.compressed = zstd_helps(piece);
  const fs::path target = repo.object_path(sha256);
  if (!make_dirs(target.parent_path(), &w.error)) return w;
  TempFile t(target);
  if (t.fd < 0) {
    w.error = errno_text("cannot create " + t.path.string());
    return w;
  }
  try {
    Sha256 hash;
    ObjectSealer s(key, sha256, w.compressed ? Compression::zstd : Compression::none);
    sealed = s.header();
    while (!piece.empty()) {
      hash.update(piece.data(), piece.size());
      w.plain_bytes += piece.size();
      s.update(piece.data(), piece.size(), &sealed);
      if (!write_all(t.fd, sealed.data(), sealed.size())) {
        w.error = errno_text("cannot write " + t.path.string());
        return w;
      }
      w.stored_bytes += sealed.size();
      sealed.clear();
      if (!read_piece(&piece)) {
        w.error = errno_text(source.string());
        return w;
      }
    }
    s.finish(&sealed);
    const std::string got = hash.hex_digest();
    if (got != sha256) {
      w.hash_mismatch = true;
      w.error = "the store's file " + source.string() + " hashes to " + got + ", not to its name";
      return w;
    }
    if (!write_all(t.fd, sealed.data(), sealed.size())) {
      w.error = errno_text("cannot write " + t.path.string());
      return w;
    }
    w.stored_bytes += sealed.size();
  } catch (const std::exception& e) {
    w.error = e.what();
    return w;
  }
  if (!t.install(target, &w.error)) return w;
  w.ok = true;
  return w;
}

namespace {

// Reads the object of `sha256`, decrypts, decompresses and hashes it,
// writing the plain bytes to `out` when it is not -1.
ObjectCheck open_object_into(const BlobRepository& repo, const BlobKey& key, const std::string& sha256, int out,
                             const std::string& out_name) {
  ObjectCheck c;
  const fs::path p = repo.object_path(sha256);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    c.missing = errno == ENOENT;
    c.error = c.missing ? "missing from the repository" : errno_text(p.string());
    return c;
  }
  ObjectOpener o(key, sha256);
  Sha256 hash;
  std::string buf(kPiece, '\0'), plain;
  auto take = [&]() -> bool {
    hash.update(plain.data(), plain.size());
    c.plain_bytes += plain.size();
    if (out >= 0 && !write_all(out, plain.data(), plain.size())) {
      c.error = errno_text("cannot write " + out_name);
      return false;
    }
    return true;
  };
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      c.error = errno_text(p.string());
      ok = false;
      break;
    }
    if (n == 0) break;
    plain.clear();
    if (!o.update(buf.data(), static_cast<std::size_t>(n), &plain, &c.error) || !take()) {
      ok = false;
      break;
    }
  }
  ::close(fd);
  if (!ok) return c;
  plain.clear();
  if (!o.finish(&plain, &c.error) || !take()) return c;
  const std::string got = hash.hex_digest();
  if (got != sha256) {
    c.error = "decrypts to bytes that hash to " + got;
    return c;
  }
  c.ok = true;
  return c;
}

}  // namespace

ObjectCheck check_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256) {
  return open_object_into(repo, key, sha256, -1, "");
}

ObjectCheck restore_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256,
                           const fs::path& target) {
  ObjectCheck c;
  std::string error;
  if (!make_dirs(target.parent_path(), &error)) {
    c.error = error;
    return c;
  }
  TempFile t(target);
  if (t.fd < 0) {
    c.error = errno_text("cannot create " + t.path.string());
    return c;
  }
  c = open_object_into(repo, key, sha256, t.fd, t.path.string());
  if (!c.ok) return c;  // the temporary file goes with t
  if (!t.install(target, &error)) {
    c.ok = false;
    c.error = error;
  }
  return c;
}

bool write_manifest(const BlobRepository& repo, const BlobKey& key, const BlobManifest& m, std::string* error) {
  const std::string name = BlobRepository::manifest_name(m.stanza, m.label);
  std::string sealed;
  try {
    sealed = seal_object(key, name, manifest_to_json(m), Compression::zstd);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  return write_file_durably(repo.manifest_path(m.stanza, m.label), sealed, error);
}

std::optional<BlobManifest> read_manifest(const BlobRepository& repo, const BlobKey& key, const std::string& stanza,
                                          const std::string& label, std::string* error) {
  const std::string name = BlobRepository::manifest_name(stanza, label);
  std::string sealed;
  if (!read_whole(repo.manifest_path(stanza, label), &sealed, error)) return std::nullopt;
  auto plain = open_object(key, name, sealed, error);
  if (!plain) {
    *error = name + ": " + *error;
    return std::nullopt;
  }
  try {
    BlobManifest m = manifest_from_json(*plain);
    if (m.stanza != stanza || m.label != label) throw std::runtime_error("it is another backup's");
    return m;
  } catch (const std::exception& e) {
    *error = name + ": " + e.what();
    return std::nullopt;
  }
}

// ---------------------------------------------------------------------------
// copying

CopyReport copy_blobs(const BlobRepository& repo, const BlobKey& key, const fs::path& store_root,
                      const std::vector<BlobRef>& blobs) {
  CopyReport r;
  for (const auto& b : blobs) {
    ++r.referenced;
    std::error_code ec;
    if (fs::exists(repo.object_path(b.sha256), ec)) {
      ++r.present;
      continue;
    }
    // The row's own path first; a store may hold the bytes under another
    // extension (the first upload named it), as FileStore::find() looks.
    fs::path source = store_root / b.file_path;
    if (!fs::is_regular_file(source, ec)) {
      source.clear();
      const fs::path dir = store_root / blob_relative_path(b.sha256, "x").parent_path();
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() > 65 && name.compare(0, 64, b.sha256) == 0 && name[64] == '.' && e.is_regular_file()) {
          source = e.path();
          break;
        }
      }
    }
    if (source.empty()) {
      r.problems.push_back("blob " + b.sha256 + " (" + b.file_path + ") is not in the store " + store_root.string() +
                           ": not backed up");
      continue;
    }
    ObjectWrite w = write_object(repo, key, b.sha256, source);
    r.read_bytes += w.plain_bytes;
    if (!w.ok) {
      r.problems.push_back("blob " + b.sha256 + ": " +
                           (w.hash_mismatch ? w.error + " (damaged in the store): not backed up" : w.error));
      continue;
    }
    ++r.copied;
    if (w.compressed) ++r.compressed;
    r.stored_bytes += w.stored_bytes;
    r.written.push_back(b.sha256);
  }
  return r;
}

// ---------------------------------------------------------------------------
// retention

ExpiryPlan plan_blob_expiry(const std::map<std::string, std::set<std::string>>& kept_labels,
                            const std::vector<ManifestRefs>& manifests, const std::vector<std::string>& objects) {
  ExpiryPlan p;
  std::set<std::string> needed;
  bool unknown = false;
  for (const auto& m : manifests) {
    auto s = kept_labels.find(m.stanza);
    if (s != kept_labels.end() && !s->second.count(m.label)) {
      p.manifests.emplace_back(m.stanza, m.label);
      continue;
    }
    ++p.kept_manifests;
    if (!m.blobs) {
      unknown = true;
      if (p.refused.empty())
        p.refused = "the manifest of backup " + m.label + " of stanza " + m.stanza +
                    " cannot be read: no object is removed while what a kept backup needs is unknown";
      continue;
    }
    needed.insert(m.blobs->begin(), m.blobs->end());
  }
  for (const auto& o : objects) {
    if (unknown || needed.count(o))
      ++p.kept_objects;
    else
      p.objects.push_back(o);
  }
  return p;
}

ExpiryReport expire_blobs(BlobRepository& repo, const BlobKey& key,
                          const std::map<std::string, std::set<std::string>>& kept_labels) {
  ExpiryReport r;
  std::vector<ManifestRefs> refs;
  std::vector<std::pair<std::string, std::string>> present;
  std::vector<std::string> objects;
  try {
    present = repo.manifests();
    objects = repo.objects();
  } catch (const std::exception& e) {
    // nothing is removed from a repository that cannot be listed whole
    r.problems.push_back(std::string("the repository cannot be listed: ") + e.what());
    return r;
  }
  for (const auto& [stanza, label] : present) {
    ManifestRefs m{stanza, label, std::nullopt};
    auto s = kept_labels.find(stanza);
    const bool expired = s != kept_labels.end() && !s->second.count(label);
    if (!expired) {
      std::string error;
      if (auto man = read_manifest(repo, key, stanza, label, &error)) {
        m.blobs.emplace();
        for (const auto& b : man->blobs) m.blobs->insert(b.sha256);
      } else {
        r.problems.push_back(error);
      }
    }
    refs.push_back(std::move(m));
  }
  r.plan = plan_blob_expiry(kept_labels, refs, objects);
  std::set<fs::path> dirs;
  for (const auto& sha : r.plan.objects) {
    const fs::path p = repo.object_path(sha);
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (::unlink(p.c_str()) != 0) {
      r.problems.push_back(errno_text("cannot remove " + p.string()));
      continue;
    }
    if (!ec) r.removed_bytes += size;
    dirs.insert(p.parent_path());
  }
  for (const auto& [stanza, label] : r.plan.manifests) {
    const fs::path p = repo.manifest_path(stanza, label);
    if (::unlink(p.c_str()) != 0) {
      r.problems.push_back(errno_text("cannot remove " + p.string()));
      continue;
    }
    dirs.insert(p.parent_path());
  }
  for (const auto& d : dirs) fsync_directory(d);
  return r;
}

}  // namespace crawler::agent
