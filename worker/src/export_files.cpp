#include "crawler/export_files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace crawler {
namespace {

// Writes that reach the kernel in pieces of about this size: a row is a
// few hundred bytes, a write(2) each would cost more than making them.
constexpr std::size_t kFlushBytes = 1 << 20;

void write_all(int fd, std::string_view bytes, const std::string& name) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("cannot write " + name + ": " + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), temp_(path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot create " + temp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view bytes) {
  buffer_.append(bytes);
  written_ += static_cast<long long>(bytes.size());
  if (buffer_.size() >= kFlushBytes) flush();
}

void AtomicFile::flush() {
  write_all(fd_, buffer_, temp_);
  buffer_.clear();
}

long long AtomicFile::commit() {
  flush();
  // Durable before it is visible: after a crash the name holds the whole
  // file or the one it replaced, never a file of zeros.
  if (::fsync(fd_) != 0) throw std::runtime_error("cannot write " + temp_ + ": " + std::strerror(errno));
  struct stat st;
  long long size = ::fstat(fd_, &st) == 0 ? static_cast<long long>(st.st_size) : written_;
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw std::runtime_error("cannot write " + temp_ + ": " + std::strerror(errno));
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    throw std::runtime_error("cannot rename " + temp_ + " to " + path_ + ": " + std::strerror(errno));
  committed_ = true;
  return size;
}

void StdoutWriter::write(std::string_view bytes) {
  buffer_.append(bytes);
  written_ += static_cast<long long>(bytes.size());
  if (buffer_.size() >= kFlushBytes) finish();
}

long long StdoutWriter::finish() {
  write_all(1, buffer_, "standard output");
  buffer_.clear();
  return written_;
}

TarShard::TarShard(const std::string& path, std::time_t mtime) : file_(path), mtime_(mtime) {
  archive_ = archive_write_new();
  if (!archive_) throw std::runtime_error("cannot write " + path + ": libarchive: out of memory");
  // ustar headers unless a member needs more (pax): what tar(1), Python's
  // tarfile and the webdataset readers all read.
  if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
      archive_write_open_fd(archive_, file_.fd()) != ARCHIVE_OK) {
    std::string why = archive_error_string(archive_) ? archive_error_string(archive_) : "libarchive failed";
    archive_write_free(archive_);
    archive_ = nullptr;
    throw std::runtime_error("cannot write " + path + ": " + why);
  }
}

TarShard::~TarShard() {
  // Freeing an archive still open writes its end; the file is removed anyway.
  if (archive_) archive_write_free(archive_);
}

void TarShard::add(const std::string& name, std::string_view bytes) {
  archive_entry* e = archive_entry_new();
  if (!e) throw std::runtime_error("cannot write " + file_.path() + ": libarchive: out of memory");
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
  archive_entry_set_mtime(e, mtime_, 0);
  bool ok = archive_write_header(archive_, e) == ARCHIVE_OK &&
            (bytes.empty() || archive_write_data(archive_, bytes.data(), bytes.size()) ==
                                  static_cast<la_ssize_t>(bytes.size())) &&
            archive_write_finish_entry(archive_) == ARCHIVE_OK;
  archive_entry_free(e);
  if (!ok) {
    const char* why = archive_error_string(archive_);
    throw std::runtime_error("cannot write " + file_.path() + ": " + (why ? why : "libarchive failed"));
  }
}

long long TarShard::commit() {
  int rc = archive_write_close(archive_);
  std::string why = rc == ARCHIVE_OK ? "" : (archive_error_string(archive_) ? archive_error_string(archive_) : "libarchive failed");
  archive_write_free(archive_);
  archive_ = nullptr;
  if (rc != ARCHIVE_OK) throw std::runtime_error("cannot write " + file_.path() + ": " + why);
  return file_.commit();
}

}  // namespace crawler
