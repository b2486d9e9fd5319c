// Content-addressed file store: bytes streamed to a temporary file in the
// store while hashed (sha256, OpenSSL EVP), fsynced, renamed atomically into
// ab/cd/<sha256>.<ext>. A temporary file never outlives its PendingFile, so
// no partial file is ever left behind; the same bytes make one file. The
// temporary file is made when the first 64 KiB buffer is full, or by
// finish(): a small image's file is made off the event loop (making an inode
// can take a millisecond).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace crawler {

class Sha256;

// Where a blob lives under the store root: ab/cd/<sha256>.<ext> (the first
// two hex digits, the next two). `sha256` is 64 hex digits.
std::filesystem::path blob_relative_path(const std::string& sha256, const std::string& ext);

class PendingFile {
 public:
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile();  // removes the temporary file unless committed

  // Appends bytes; false (with error()) when the disk refuses them.
  bool write(const char* data, std::size_t n);
  std::uint64_t size() const { return size_; }
  const std::string& head() const { return head_; }  // the first 4 KiB
  const std::filesystem::path& temp_path() const { return temp_; }  // empty until made
  const std::string& error() const { return error_; }

  // Flushes and (unless `sync` is false) fsyncs the data, returns the hex
  // sha256 (call once).
  bool finish(std::string* sha256_hex, bool sync = true);
  // finish() without sync, except that a body still all in the buffer (at
  // most 64 KiB) stays there and no file is made, as long as the bodies
  // all PendingFiles of the process keep so stay within `budget` bytes:
  // memory() holds it and temp_path() stays empty. For bytes that go
  // elsewhere (an upload to the node agent): a small file made and removed
  // per image costs more than its bytes. commit() still works (it writes
  // the file first).
  bool finish_in_memory(std::string* sha256_hex, std::uint64_t budget);
  // The bytes PendingFiles of this process keep in memory now.
  static std::uint64_t memory_held();
  // The whole body after finish_in_memory() kept it, else nullptr.
  const std::string* memory() const { return in_memory_ ? &buffer_ : nullptr; }
  // Makes the directory ab/cd/ of the finished file (commit does it too).
  bool prepare();
  // Moves the finished file to ab/cd/<sha256>.<ext> (or drops it when that
  // file exists: same bytes) and (unless `sync` is false) fsyncs the
  // directory. Returns the path relative to the store root. Unsynced
  // finishes and commits are made durable by FileStore::sync().
  bool commit(const std::string& ext, std::string* relative_path, bool sync = true);

 private:
  friend class FileStore;
  PendingFile(std::filesystem::path root, std::filesystem::path tmp_dir);
  bool open();
  bool flush();
  std::filesystem::path root_, tmp_dir_, temp_;
  int fd_ = -1;
  std::unique_ptr<Sha256> md_;
  std::string buffer_, head_, sha_, error_;
  std::uint64_t size_ = 0;
  bool committed_ = false;
  bool in_memory_ = false;
};

class FileStore {
 public:
  explicit FileStore(std::filesystem::path root);  // throws when unusable
  const std::filesystem::path& root() const { return root_; }
  // A new pending file (its temporary file is made when needed); nullptr
  // with *error set when it cannot be started.
  std::unique_ptr<PendingFile> create(std::string* error);
  // The stored file of a blob, whatever its extension; nullopt when the
  // store does not hold it or `sha256` is not 64 lower-case hex digits.
  std::optional<std::filesystem::path> find(const std::string& sha256) const;
  // Removes temporary files of processes that are gone (after a crash).
  int remove_stale_temporaries();
  // Everything written to the store's file system so far, on disk
  // (syncfs): one call for a whole batch instead of two fsyncs per file.
  bool sync(std::string* error);

 private:
  std::filesystem::path root_, tmp_;
};

}  // namespace crawler
