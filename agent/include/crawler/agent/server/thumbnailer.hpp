// Thumbnails of the store's images for GET /api/images/<id>/thumbnail:
// made by libvips on a small pool of threads of their own, so that decoding
// a large image never holds up a connection's thread, and kept in a cache
// beside the blobs (<root>/.thumbnails/<size>/<ab>/<sha256>.<jpg|png>):
// a blob never changes, so neither does its thumbnail of a given size.
// Safe to call from any thread.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace crawler::agent {

class Thumbnailer {
 public:
  struct Result {
    enum Kind {
      ok,         // path and content_type are set
      not_image,  // not a raster image libvips may read (SVG and PDF included), or one it cannot decode
      too_large,  // the source has more pixels than max_pixels
      busy,       // max_queue requests are waiting already: try again later
      failed,     // a disk or I/O error, a bad argument, or the thumbnailer is stopping
    };
    Kind kind = failed;
    std::filesystem::path path;  // ok: the cached thumbnail file
    std::string content_type;    // ok: "image/jpeg" or "image/png"
    // Otherwise: why. not_image and too_large name no server path (fit for
    // the client); failed may (a disk error names its directory): log it.
    std::string error;
  };

  // No thumbnail is larger than this (longer side): a larger "thumbnail"
  // is a full decode and re-encode that a request could ask for at will.
  static constexpr int kMaxSize = 4096;

  // `store_root` is the blob store's root: blobs are <root>/ab/cd/<sha256>.<ext>,
  // and <root>/.tmp (on the same file system) takes the thumbnails while
  // they are written; their temporary names are those of the store's
  // PendingFile (part-<pid>-...), so FileStore::remove_stale_temporaries()
  // removes what a crash left. `sizes` are the sizes a request may ask for
  // (longer side, pixels, 1 to kMaxSize); `threads` threads run libvips;
  // at most `max_queue` requests wait for one; a source whose width*height
  // (from its header) exceeds `max_pixels` is refused before it is decoded.
  // Throws std::invalid_argument for no sizes, a size out of range,
  // threads below 1 or max_pixels 0.
  // libvips is started once per process, by the pool's first thread, so
  // the constructor does not wait for it; requests made meanwhile wait in
  // the queue. If it cannot start, the agent still runs and every get()
  // (those waiting included) answers failed with the reason.
  Thumbnailer(std::filesystem::path store_root, std::vector<int> sizes, int threads, std::size_t max_queue,
              std::uint64_t max_pixels);

  // Waits for the thumbnails being made, then answers the requests still
  // waiting with failed: no `done` is left uncalled.
  ~Thumbnailer();

  Thumbnailer(const Thumbnailer&) = delete;
  Thumbnailer& operator=(const Thumbnailer&) = delete;

  // Whether a request may ask for `size` (one of the constructor's sizes).
  bool size_allowed(int size) const;

  // The allowed sizes, ascending, each once: what an error answer lists.
  const std::vector<int>& sizes() const;

  // The thumbnail of blob `sha256` (its file is `source`) whose longer side
  // is at most `size` pixels: never enlarged, aspect kept, EXIF orientation
  // applied. Opaque images become JPEG (quality 80), images with alpha PNG,
  // both without metadata.
  // A thumbnail made before is answered from the cache at once, on the
  // caller's thread, and so are busy and a bad argument (a sha256 that is
  // not 64 lower-case hex digits, a size not allowed). Otherwise `done`
  // runs later on a pool thread, once the thumbnail is written atomically
  // (temporary file in <root>/.tmp, fsync, rename) or has failed; a failure
  // leaves no file behind. Requests for a thumbnail already being made wait
  // for that one instead of queueing: they never count as busy.
  // `done` must not throw (an exception is logged and dropped) nor block
  // for long: it holds a pool thread.
  void get(const std::string& sha256, const std::filesystem::path& source, int size,
           std::function<void(Result)> done);

  // Where the thumbnails are kept: <root>/.thumbnails.
  std::filesystem::path cache_root() const;

 private:
  struct Job {
    std::string key;  // <size>/<sha256>
    std::string sha256;
    std::filesystem::path source;
    int size;
  };

  std::optional<Result> cached(const std::string& sha256, int size) const;
  Result make(const Job& job) const;
  Result make_or_fail(const Job& job) const;
  bool write_atomically(const void* data, std::size_t size, const std::filesystem::path& dest,
                        std::string* error) const;
  void run();

  const std::filesystem::path root_;
  std::vector<int> sizes_;
  const std::size_t max_queue_;
  const std::uint64_t max_pixels_;
  std::string start_error_;  // why libvips cannot be used; empty when it can (or not known yet); under mutex_

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  // The callers of each thumbnail queued or being made, by Job::key.
  std::map<std::string, std::vector<std::function<void(Result)>>> waiting_;
  std::size_t working_ = 0;  // pool threads making a thumbnail
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace crawler::agent
