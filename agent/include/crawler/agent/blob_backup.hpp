// The blobs of a backup in the repository (docs/backup.md, "The blobs"):
//   <repo>/crawler_ha/blobs/key.json              salt, iterations, key check
//   <repo>/crawler_ha/blobs/lock                  flock: one writer at a time
//   <repo>/crawler_ha/blobs/ab/cd/<sha256>        one object per blob, ever
//   <repo>/crawler_ha/blobs/manifests/<stanza>/<label>.json.enc
// Objects are shared by every stanza of the repository (both nodes' backups
// reference the same images), so a blob is copied once whichever node
// backed it up, and one is removed only when no kept backup's manifest of
// any stanza names it. Object format: blob_crypto.hpp. Unit-tested in
// agent/tests/blob_backup_test.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crawler/agent/blob_crypto.hpp"

namespace crawler::agent {

// One blob a backup's rows reference.
struct BlobRef {
  std::string sha256;     // 64 lower-case hex digits
  std::string file_path;  // the store's ab/cd/<sha256>.<ext> (the extension a restore puts back)
  std::uint64_t size = 0;
};

// Whether `b` names a blob and a store path of it: a sha256, and a path
// ab/cd/<sha256>.<ext> of that sha256 (so it stays inside a store).
bool blob_ref_ok(const BlobRef& b);

// The list of a backup's blobs, as written (encrypted) into the repository.
struct BlobManifest {
  std::string stanza, label, node;
  std::vector<BlobRef> blobs;  // sha256 order, each once
};
// Its JSON text, and back. manifest_from_json throws std::runtime_error on
// anything malformed (a sha256, a path not the blob's, a missing field).
std::string manifest_to_json(const BlobManifest& m);
BlobManifest manifest_from_json(const std::string& text);

// key.json's text for a new repository: a random 32-byte salt, the
// iteration count, and a key check (a sealed known text, so that a wrong
// passphrase is told at once rather than as every object failing). Neither
// the passphrase nor the key is in it.
std::string new_key_file_text(const std::string& passphrase, int iterations);
// The key key.json's text and the passphrase give; nothing, with *error,
// when the text is malformed or the passphrase does not pass the check.
std::optional<BlobKey> key_from_file_text(const std::string& text, const std::string& passphrase,
                                          std::string* error);
// PBKDF2 rounds for a new repository: about a third of a second on one
// core, once per command (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
constexpr int kKeyIterations = 600000;

// Writes `bytes` to `path` durably and atomically: a temporary file beside
// it, fsynced, renamed over it, the directory fsynced. Mode 0640 (the
// repository's: pgBackRest's files are the same). False with *error.
bool write_file_durably(const std::filesystem::path& path, const std::string& bytes, std::string* error);

class BlobRepository {
 public:
  // `repo`: the repository directory (pgBackRest's repo1-path).
  explicit BlobRepository(std::filesystem::path repo);
  ~BlobRepository();
  BlobRepository(const BlobRepository&) = delete;
  BlobRepository& operator=(const BlobRepository&) = delete;

  // <repo>/crawler_ha/blobs: everything of the blobs is under it.
  const std::filesystem::path& dir() const { return dir_; }
  // Where the object of a blob is: <dir>/ab/cd/<sha256> (no extension: the
  // manifest keeps the row's file_path).
  std::filesystem::path object_path(const std::string& sha256) const;
  // crawler_ha/blobs/manifests/<stanza>/<label>.json.enc: relative to the
  // repository (the name ha_backups records).
  static std::string manifest_name(const std::string& stanza, const std::string& label);
  std::filesystem::path manifest_path(const std::string& stanza, const std::string& label) const;

  // Takes the repository's lock (flock on <dir>/lock, made when missing):
  // exclusive for a writer (copy, manifest, expiry), shared for a reader
  // (verify), waiting for it. Held until this object goes. So a node's
  // expiry never removes an object another node's run just copied and has
  // not named in its manifest yet. False with *error.
  bool lock(bool exclusive, std::string* error);

  // The objects' key from key.json and the passphrase; with `create`, a
  // repository without key.json gets one (under the exclusive lock). False
  // with *error: no key.json (and not create), malformed, wrong passphrase.
  std::optional<BlobKey> key(const std::string& passphrase, bool create, std::string* error);

  // The sha256 of every object present, sorted; temporary files are not
  // objects. Throws std::runtime_error when a directory cannot be read.
  std::vector<std::string> objects() const;
  // (stanza, label) of every manifest present, sorted. Throws
  // std::runtime_error (std::filesystem_error) when a directory cannot be read.
  std::vector<std::pair<std::string, std::string>> manifests() const;

  // Removes temporary files left by a run that died (call under the
  // exclusive lock, where no other writer can be making one). Returns how many.
  int remove_temporaries();

 private:
  std::filesystem::path repo_, dir_;
  int lock_fd_ = -1;
};

// What writing one object did.
struct ObjectWrite {
  bool ok = false;
  bool hash_mismatch = false;     // the source's bytes do not hash to the name: nothing written
  bool compressed = false;
  std::uint64_t plain_bytes = 0;  // read from the source
  std::uint64_t stored_bytes = 0; // the object's size
  std::string error;
};
// Seals the file `source` as the object of `sha256`: read once in 1 MiB
// pieces, hashed as it is read, compressed when zstd_helps() its first MiB,
// encrypted; written to a temporary file, fsynced, renamed into place, the
// directory fsynced. An existing object is replaced (the caller copies
// only missing ones). A wrong hash leaves nothing behind.
ObjectWrite write_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256,
                         const std::filesystem::path& source);

// What reading one object back found.
struct ObjectCheck {
  bool ok = false;
  bool missing = false;
  std::uint64_t plain_bytes = 0;
  std::string error;
};
// Reads the object of `sha256`, decrypts, decompresses and hashes it: ok
// when the tag holds and the hash is the name.
ObjectCheck check_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256);
// The same, writing the bytes to `target` (a store's ab/cd/<sha256>.<ext>):
// through a temporary file beside it, installed (fsynced, renamed, the
// directory fsynced) only when the tag holds and the hash is the name, so
// a damaged object never leaves a file. Parent directories are made.
ObjectCheck restore_object(const BlobRepository& repo, const BlobKey& key, const std::string& sha256,
                           const std::filesystem::path& target);

// Writes the manifest (compressed, sealed under its own name) durably.
bool write_manifest(const BlobRepository& repo, const BlobKey& key, const BlobManifest& m, std::string* error);
// Reads and opens one; nothing with *error.
std::optional<BlobManifest> read_manifest(const BlobRepository& repo, const BlobKey& key, const std::string& stanza,
                                          const std::string& label, std::string* error);

// Copying a backup's blobs: which were there already, which were copied,
// and every problem (a blob missing from the store, a store file whose
// hash is wrong, a write that failed), each a line naming the sha256.
struct CopyReport {
  std::size_t referenced = 0, present = 0, copied = 0, compressed = 0;
  std::uint64_t read_bytes = 0, stored_bytes = 0;
  std::vector<std::string> written;   // the sha256 of the objects this run wrote
  std::vector<std::string> problems;
};
// Copies every blob of `blobs` the repository lacks from the store rooted at
// `store_root` (the file <root>/<file_path>, else <root>/ab/cd/<sha256>.*),
// going on after a problem so that one bad file does not leave the rest
// unprotected. Call under the exclusive lock.
CopyReport copy_blobs(const BlobRepository& repo, const BlobKey& key, const std::filesystem::path& store_root,
                      const std::vector<BlobRef>& blobs);

// Retention's arithmetic. A manifest is expired when pgBackRest's info of its
// stanza could be read and no longer lists its label; every other manifest
// is kept (a stanza info could not read keeps all of its). An object is
// removed when no kept manifest names it. A kept manifest whose list could
// not be read (blobs nullopt) makes the plan remove no object at all (what
// it needs is unknown), only expired manifests, with `refused` saying why.
struct ManifestRefs {
  std::string stanza, label;
  std::optional<std::set<std::string>> blobs;
};
struct ExpiryPlan {
  std::vector<std::pair<std::string, std::string>> manifests;  // (stanza, label) to remove
  std::vector<std::string> objects;                            // sha256 to remove
  std::size_t kept_manifests = 0, kept_objects = 0;
  std::string refused;
};
ExpiryPlan plan_blob_expiry(const std::map<std::string, std::set<std::string>>& kept_labels,
                            const std::vector<ManifestRefs>& manifests, const std::vector<std::string>& objects);

// Expiry done: what went, and any object or manifest that could not be
// removed (said, not fatal: the next expiry tries again).
struct ExpiryReport {
  ExpiryPlan plan;
  std::uint64_t removed_bytes = 0;
  std::vector<std::string> problems;
};
// Reads every manifest still kept (by `kept_labels`, as plan_blob_expiry
// says), plans, and removes. A repository that cannot be listed removes
// nothing (a problem says why). Call under the exclusive lock.
ExpiryReport expire_blobs(BlobRepository& repo, const BlobKey& key,
                          const std::map<std::string, std::set<std::string>>& kept_labels);

}  // namespace crawler::agent
