// The bearer token the agents show each other, read from token_file and
// read again when the file changes (a rotated token is used without a
// restart). Thread-safe: every transfer thread asks it.
#pragma once
#include <ctime>
#include <filesystem>
#include <mutex>
#include <string>

namespace crawler::agent {

class TokenFile {
 public:
  // An empty path: no token (no Authorization header is sent).
  explicit TokenFile(std::filesystem::path path) : path_(std::move(path)) {}
  // The token (surrounding whitespace removed), read again when the file's
  // modification time or size changed; the last good one when the file
  // cannot be read now (logged once per failure).
  std::string get();

 private:
  std::filesystem::path path_;
  std::mutex m_;
  std::string token_;
  std::timespec mtime_{};
  long long size_ = -1;
  bool failing_ = false;
};

}  // namespace crawler::agent
