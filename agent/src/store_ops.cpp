#include "crawler/agent/store_ops.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace crawler::agent {
namespace fs = std::filesystem;

bool fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

namespace {
// Makes `dir` (and its missing parents under `root`), fsyncing the parent
// of each one made so that the new entries are durable.
bool make_dirs(const fs::path& root, const fs::path& dir, std::string* error) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return true;
  if (dir != root && dir.has_parent_path() && !make_dirs(root, dir.parent_path(), error)) return false;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = "cannot create " + dir.string() + ": " + std::strerror(errno);
    return false;
  }
  if (!fsync_directory(dir.parent_path())) {
    *error = "cannot fsync " + dir.parent_path().string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}
}  // namespace

bool make_blob_directory(const fs::path& root, const fs::path& relative, std::string* error) {
  const fs::path dir = (root / relative).parent_path();  // <root>/ab/cd
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return true;
  if (errno == ENOENT && (::mkdir(dir.parent_path().c_str(), 0755) == 0 || errno == EEXIST) &&
      (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST))
    return true;
  *error = "cannot create " + dir.string() + ": " + std::strerror(errno);
  return false;
}

bool install_file(const fs::path& from, const fs::path& root, const fs::path& relative, std::string* error) {
  fs::path dest = root / relative;
  // The rename is tried first: ab/cd/ exists for all but the first blobs
  // of a store, and a stat per blob is a system call a catch-up of
  // thousands of blobs pays for nothing.
  int rc = ::rename(from.c_str(), dest.c_str());
  if (rc != 0 && errno == ENOENT) {
    if (!make_blob_directory(root, relative, error)) return false;
    rc = ::rename(from.c_str(), dest.c_str());
  }
  if (rc != 0) {
    *error = "cannot rename " + from.string() + " to " + dest.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

fs::path move_aside(const fs::path& root, const fs::path& file, std::string* error) {
  fs::path dir = root / ".corrupt";
  if (!make_dirs(root, dir, error)) return {};
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fs::path dest = dir / (file.filename().string() + "." + stamp);
  if (::rename(file.c_str(), dest.c_str()) != 0) {
    *error = "cannot move " + file.string() + " to " + dest.string() + ": " + std::strerror(errno);
    return {};
  }
  fsync_directory(file.parent_path());
  fsync_directory(dir);
  return dest;
}

bool remove_durably(const fs::path& file, std::string* error) {
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    *error = "cannot remove " + file.string() + ": " + std::strerror(errno);
    return false;
  }
  if (!fsync_directory(file.parent_path())) {
    *error = "cannot fsync " + file.parent_path().string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace crawler::agent
