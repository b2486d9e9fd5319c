// Durability of a store's writes in shared syncfs() calls (group commit).
//
// A blob is safe once its bytes are on disk before its name is, and its
// name is on disk before anyone is told it is stored. Two fsyncs per file
// (the file, then its directory) give that one file at a time; each is a
// synchronous write and a disk cache flush of its own (ext4 without a
// journal shares nothing between them). Here every caller that needs "what
// I wrote so far is on disk" waits for one syncfs() of the store's file
// system, and everyone who asked while one was running shares the next: a
// cost per batch, not per file.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace crawler {

class StoreSync {
 public:
  using Done = std::function<void(bool ok, std::string error)>;

  // Opens the store's root directory `root` (throws std::runtime_error when
  // it cannot) and starts the thread that syncs.
  explicit StoreSync(const std::filesystem::path& root);
  // Serves the requests already made (one last syncfs), then joins.
  ~StoreSync();
  StoreSync(const StoreSync&) = delete;
  StoreSync& operator=(const StoreSync&) = delete;

  // Calls `done` once a syncfs() that began after this call has returned:
  // everything written to the file system before the call is then durable
  // (ok), or the kernel reported a write error (error says which). `done`
  // runs on the syncing thread, never inside request(); it must not block.
  void request(Done done);
  // The same, waiting for it: true when durable, else false with *error.
  bool wait(std::string* error);
  // syncfs() calls made so far (each may have served many requests).
  std::uint64_t syncs() const;

 private:
  void loop();
  int fd_ = -1;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::vector<Done> waiting_;
  std::uint64_t syncs_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace crawler
