#include "crawler/store.hpp"

#include "crawler/sha256.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace crawler {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kBufferSize = 64 * 1024;
constexpr std::size_t kHeadSize = 4096;

// The bytes of the bodies PendingFiles keep in memory (finish_in_memory).
std::atomic<std::uint64_t> g_memory_held{0};

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

PendingFile::PendingFile(fs::path root, fs::path tmp_dir)
    : root_(std::move(root)), tmp_dir_(std::move(tmp_dir)), md_(std::make_unique<Sha256>()) {}

PendingFile::~PendingFile() {
  if (in_memory_) g_memory_held -= size_;
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

bool PendingFile::write(const char* data, std::size_t n) {
  if (head_.size() < kHeadSize) head_.append(data, std::min(n, kHeadSize - head_.size()));
  md_->update(data, n);
  size_ += n;
  buffer_.append(data, n);
  return buffer_.size() < kBufferSize || flush();
}

bool PendingFile::open() {
  // The process id in the name tells a crashed worker's leftovers apart.
  std::string name = (tmp_dir_ / ("part-" + std::to_string(::getpid()) + "-XXXXXX")).string();
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) {
    error_ = errno_text("cannot create a temporary file in the store");
    return false;
  }
  temp_ = name;
  return true;
}

bool PendingFile::flush() {
  if (fd_ < 0 && (!temp_.empty() || !open())) return false;
  std::size_t off = 0;
  while (off < buffer_.size()) {
    ssize_t w = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      error_ = errno_text("write to the store");
      return false;
    }
    off += static_cast<std::size_t>(w);
  }
  buffer_.clear();
  return true;
}

bool PendingFile::finish(std::string* sha256_hex, bool sync) {
  if (!flush()) return false;
  if (sync && ::fsync(fd_) != 0) {
    error_ = errno_text("fsync");
    return false;
  }
  sha_ = md_->hex_digest();
  *sha256_hex = sha_;
  return true;
}

std::uint64_t PendingFile::memory_held() { return g_memory_held.load(); }

bool PendingFile::finish_in_memory(std::string* sha256_hex, std::uint64_t budget) {
  if (fd_ >= 0 || !temp_.empty()) return finish(sha256_hex, false);
  std::uint64_t held = g_memory_held.load();
  do {
    if (held + size_ > budget) return finish(sha256_hex, false);
  } while (!g_memory_held.compare_exchange_weak(held, held + size_));
  in_memory_ = true;
  sha_ = md_->hex_digest();
  *sha256_hex = sha_;
  return true;
}

bool PendingFile::prepare() {
  if (sha_.empty()) {
    error_ = "commit before finish";
    return false;
  }
  fs::path dir = (root_ / blob_relative_path(sha_, "x")).parent_path();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return true;
  fs::create_directories(dir, ec);
  if (ec) {
    error_ = "cannot create " + dir.string() + ": " + ec.message();
    return false;
  }
  return true;
}

bool PendingFile::commit(const std::string& ext, std::string* relative_path, bool sync) {
  if (!prepare()) return false;
  if (in_memory_) {
    // The bytes go to a file after all: written now (and synced below).
    in_memory_ = false;
    g_memory_held -= size_;
    if (!flush() || (sync && ::fsync(fd_) != 0)) {
      if (error_.empty()) error_ = errno_text("fsync");
      return false;
    }
  }
  fs::path rel = blob_relative_path(sha_, ext);
  fs::path dest = root_ / rel;
  ::close(fd_);
  fd_ = -1;
  struct stat st;
  if (::stat(dest.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == size_) {
    // Same name is same sha256: the bytes are already here.
    ::unlink(temp_.c_str());
  } else {
    ::chmod(temp_.c_str(), 0644);
    if (::rename(temp_.c_str(), dest.c_str()) != 0) {
      error_ = errno_text("rename into the store");
      return false;
    }
    if (sync && !fsync_dir(dest.parent_path())) {
      error_ = errno_text("fsync of the store directory");
      return false;
    }
  }
  committed_ = true;
  *relative_path = rel.string();
  return true;
}

FileStore::FileStore(fs::path root) : root_(std::move(root)), tmp_(root_ / ".tmp") {
  std::error_code ec;
  fs::create_directories(tmp_, ec);
  if (ec) throw std::runtime_error("storage " + tmp_.string() + ": " + ec.message());
  if (::access(tmp_.c_str(), W_OK) != 0)
    throw std::runtime_error(errno_text(("storage " + tmp_.string()).c_str()));
}

fs::path blob_relative_path(const std::string& sha256, const std::string& ext) {
  return fs::path(sha256.substr(0, 2)) / sha256.substr(2, 2) / (sha256 + "." + ext);
}

std::optional<fs::path> FileStore::find(const std::string& sha256) const {
  if (!is_sha256_hex(sha256)) return std::nullopt;
  fs::path dir = (root_ / blob_relative_path(sha256, "x")).parent_path();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // <sha256>.<ext>: the name, a dot, then the extension.
    if (name.size() > 65 && name.compare(0, 64, sha256) == 0 && name[64] == '.' &&
        e.is_regular_file(ec))
      return e.path();
  }
  return std::nullopt;
}

std::unique_ptr<PendingFile> FileStore::create(std::string* error) {
  try {
    return std::unique_ptr<PendingFile>(new PendingFile(root_, tmp_));
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
}

bool FileStore::sync(std::string* error) {
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::syncfs(fd) != 0) {
    *error = errno_text("syncfs of the store");
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

int FileStore::remove_stale_temporaries() {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tmp_, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("part-", 0) != 0) continue;
    long pid = std::strtol(n.c_str() + 5, nullptr, 10);
    // Several workers may share one store: only files of dead processes go.
    if (pid == ::getpid()) continue;
    if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace crawler
