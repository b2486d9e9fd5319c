// The files `crawler-worker export` writes, each whole or not at all: a
// file is written under a temporary name beside its own and renamed over it
// once complete and fsynced, so a reader never sees half of one (an
// interrupted export leaves nothing but the files it had finished); a
// webdataset shard is a tar archive written by libarchive.
#pragma once
#include <ctime>
#include <string>
#include <string_view>

struct archive;

namespace crawler {

// A file that appears at `path` only when commit() succeeds. Written as
// PATH.tmp.<pid>; the destructor removes that file unless committed.
// Writes are buffered. Every failure throws std::runtime_error naming the
// file and the reason (a full disk, a directory removed meanwhile).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  void write(std::string_view bytes);
  // Flushes, fsyncs, closes and renames into place; the bytes written.
  long long commit();
  // The descriptor, for a writer of its own (libarchive); call flush() first
  // when write() was used too.
  int fd() const { return fd_; }
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_, temp_;
  int fd_ = -1;
  std::string buffer_;
  long long written_ = 0;
  bool committed_ = false;
};

// The bytes of `text` to standard output, buffered; failures throw
// std::runtime_error (a closed pipe, a full disk).
class StdoutWriter {
 public:
  void write(std::string_view bytes);
  long long finish();  // flushes; the bytes written

 private:
  std::string buffer_;
  long long written_ = 0;
};

// One webdataset shard: a POSIX (pax) tar archive of regular files, each
// given whole, written into an AtomicFile. `mtime` is every member's time.
class TarShard {
 public:
  TarShard(const std::string& path, std::time_t mtime);
  TarShard(const TarShard&) = delete;
  TarShard& operator=(const TarShard&) = delete;
  ~TarShard();
  // A member `name` holding `bytes`; throws std::runtime_error when the
  // archive cannot be written.
  void add(const std::string& name, std::string_view bytes);
  // Ends the archive and renames it into place; the bytes of the tar file.
  long long commit();

 private:
  AtomicFile file_;
  ::archive* archive_ = nullptr;
  std::time_t mtime_;
};

}  // namespace crawler
