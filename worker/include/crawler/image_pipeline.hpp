// A fetched image's file, from its last byte to its place in the store, off
// the loop: on a file thread the file is flushed and hashed, its header read
// (image_info.hpp) and judged against the session's limits; then the
// committer thread renames the files of a whole batch with one syncfs before
// the renames and one after, so a name in the store always has all its
// bytes and image_record() never names a file that a crash could lose.
// The session's thumbnails are made on the same file thread and go the same
// way, in the same batch, as the image's own file.
// With the agent as the store (--storage-agent) nothing is renamed: the
// judged file stays in the spool, and goes with the result to the uploader
// (blob_uploader.hpp), which makes it durable where it belongs.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crawler/fetch_result.hpp"
#include "crawler/image_info.hpp"
#include "crawler/store.hpp"
#include "crawler/thumbnail.hpp"

namespace crawler {

// The session's limits on an image.
struct ImageLimits {
  std::uint64_t max_pixels;  // more is an error (a decompression bomb)
  int min_width, min_height;  // less is skipped, not stored
  std::vector<ThumbnailSize> thumbnails;  // made of each image stored
};

// A thumbnail of a stored image, in the same store (or spool).
struct StoredThumbnail {
  std::string name, sha256, ext;
  std::string file_path;  // relative to the store's root, once committed (or to be uploaded)
  int width = 0, height = 0;
  std::uint64_t bytes = 0;
  // Its file until committed (or, in spool mode, until uploaded).
  std::shared_ptr<PendingFile> file;
};

// What became of a fetched image.
struct StoredImage {
  FetchResult r;  // its transfer (the body went to the file)
  ImageInfo info;
  std::string sha256;
  std::string file_path;  // relative to the store's root; "" unless stored (or to be uploaded)
  // The file itself, left in the spool for the uploader (spool mode only).
  std::shared_ptr<PendingFile> spooled;
  std::string error;      // "" unless it failed
  // Its kind, for the counts by kind: "store" (the store or spool could
  // not take it), "not_an_image" (unreadable as an image) or "too_large"
  // (too many pixels).
  std::string error_kind;
  bool too_small = false;  // under min_width/min_height: not stored, not an error
  // The session's thumbnails: asked for, made (stored like the image, in
  // the same batch), or why not (the image is stored and recorded without
  // them: its bytes are good, only a thumbnail could not be made).
  bool thumbnails_asked = false;
  std::vector<StoredThumbnail> thumbnails;
  std::string thumbnail_error;
};

class ImagePipeline {
 public:
  // Runs on the loop once per stored() image.
  using Done = std::function<void(std::int64_t item, StoredImage&& image)>;
  // `spool`: the files are not renamed into `store` but handed over in
  // StoredImage::spooled, with the path the agent will store them under.
  ImagePipeline(boost::asio::io_context& io, FileStore& store, bool spool, Done done);
  ~ImagePipeline();  // waits for the files under way
  ImagePipeline(const ImagePipeline&) = delete;
  ImagePipeline& operator=(const ImagePipeline&) = delete;

  // Starts libvips (on a thread of its own, at the lowest priority: 2-40 ms
  // of CPU the first pages need more) and removes temporary files a crash
  // left in the store.
  void start();
  // Takes item `item`'s finished transfer and its file; done() says what
  // became of it. The file is removed unless it was committed.
  void store(std::int64_t item, std::shared_ptr<PendingFile> file, FetchResult&& r, ImageLimits limits);

 private:
  struct ToCommit {
    std::int64_t item;
    std::shared_ptr<PendingFile> file;
    StoredImage image;
  };
  // On a file thread: the file flushed, hashed, read and judged; true when
  // it goes on to the committer.
  bool prepare(const std::shared_ptr<PendingFile>& file, StoredImage& image, const ImageLimits& limits);
  // On a file thread, after prepare(): the thumbnails made and written to
  // pending files of the store; false only when the store refused them.
  bool add_thumbnails(const std::shared_ptr<PendingFile>& file, StoredImage& image, const ImageLimits& limits);
  void commit_loop();
  void finished(std::int64_t item, StoredImage&& image);

  boost::asio::io_context& io_;
  FileStore& store_;
  bool spool_;
  Done done_;
  boost::asio::thread_pool files_{8};  // flush, header reading, directories
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::vector<ToCommit> to_commit_;
  bool commit_stop_ = false;
  std::thread committer_;
  std::thread vips_starter_;
};

}  // namespace crawler
