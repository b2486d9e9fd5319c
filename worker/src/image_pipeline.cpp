#include "crawler/image_pipeline.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include "crawler/log.hpp"
#include "crawler/media_type.hpp"
#include "crawler/thumbnail.hpp"

namespace crawler {
namespace asio = boost::asio;

namespace {
// The most the small images waiting for the agent keep in memory (the
// rest wait in spool files): about a thousand images of up to 64 KiB,
// however long the agent stays away; --max-spool-bytes bounds them all.
constexpr std::uint64_t kUploadMemoryBudget = 64ull << 20;
}  // namespace

ImagePipeline::ImagePipeline(asio::io_context& io, FileStore& store, bool spool, Done done)
    : io_(io), store_(store), spool_(spool), done_(std::move(done)) {
  committer_ = std::thread([this] { commit_loop(); });
}

ImagePipeline::~ImagePipeline() {
  if (vips_starter_.joinable()) vips_starter_.join();
  files_.join();
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.notify_all();
  committer_.join();
}

void ImagePipeline::start() {
  vips_starter_ = std::thread([] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    init_image_library("crawler-worker");
  });
  int stale = store_.remove_stale_temporaries();
  if (stale) CRAWLER_LOG(info) << "removed " << stale << " temporary file(s) left by a crash";
}

void ImagePipeline::store(std::int64_t item, std::shared_ptr<PendingFile> file, FetchResult&& r,
                          ImageLimits limits) {
  // Off the loop: writing, header reading and directories may block on
  // disk; the committer thread syncs and renames (unless spooling).
  asio::post(files_, [this, item, file = std::move(file), limits, r = std::move(r)]() mutable {
    StoredImage image;
    image.r = std::move(r);
    if (!prepare(file, image, limits) || !add_thumbnails(file, image, limits)) {
      image.thumbnails.clear();  // their uncommitted temporary files are removed here too
      file.reset();  // an uncommitted temporary file is removed here
      finished(item, std::move(image));
      return;
    }
    if (spool_) {
      // No fsync, no rename: a spooled file that a crash loses is fetched
      // again (its lease expires); only the agent's copy must be durable.
      image.file_path = blob_relative_path(image.sha256, image.info.ext).string();
      image.spooled = std::move(file);
      finished(item, std::move(image));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(commit_mu_);
      to_commit_.push_back(ToCommit{item, std::move(file), std::move(image)});
    }
    commit_cv_.notify_one();
  });
}

bool ImagePipeline::prepare(const std::shared_ptr<PendingFile>& file, StoredImage& image,
                            const ImageLimits& limits) {
  // Bytes bound for the agent that need no thumbnail stay in memory when
  // they fit the buffer: no spool file is made and removed for each small
  // image (the file made, written, read back and unlinked cost the worker
  // more than the upload itself).
  const bool in_memory = spool_ && limits.thumbnails.empty();
  if (!(in_memory ? file->finish_in_memory(&image.sha256, kUploadMemoryBudget) : file->finish(&image.sha256, false))) {
    image.error = "store: " + file->error();
    image.error_kind = "store";
    return false;
  }
  auto res = file->memory() ? read_image_info_in_memory(*file->memory()) : read_image_info(file->temp_path(), file->head());
  if (auto* e = std::get_if<std::string>(&res)) {
    image.error = *e;
    image.error_kind = "not_an_image";
    if (!image.r.content_type.empty()) image.error += " (Content-Type " + media_type(image.r.content_type) + ")";
    return false;
  }
  image.info = std::get<ImageInfo>(res);
  const ImageInfo& info = image.info;
  std::uint64_t pixels = static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height);
  if (pixels > limits.max_pixels) {
    image.error_kind = "too_large";
    image.error = "too many pixels: " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                  " is over max_pixels " + std::to_string(limits.max_pixels);
    return false;
  }
  if (info.width < limits.min_width || info.height < limits.min_height) {
    image.too_small = true;
    return false;
  }
  if (!spool_ && !file->prepare()) {
    image.error = "store: " + file->error();
    image.error_kind = "store";
    return false;
  }
  return true;
}

bool ImagePipeline::add_thumbnails(const std::shared_ptr<PendingFile>& file, StoredImage& image,
                                   const ImageLimits& limits) {
  if (limits.thumbnails.empty()) return true;
  image.thumbnails_asked = true;
  auto made = make_thumbnails(file->temp_path(), image.info, limits.thumbnails, limits.max_pixels);
  if (auto* e = std::get_if<std::string>(&made)) {
    image.thumbnail_error = *e;  // the image itself is good: stored and recorded without them
    return true;
  }
  for (Thumbnail& t : std::get<std::vector<Thumbnail>>(made)) {
    StoredThumbnail st{t.name, "", t.ext, "", t.width, t.height, t.bytes.size(), nullptr};
    std::string err;
    std::shared_ptr<PendingFile> f = store_.create(&err);
    if (f && f->write(t.bytes.data(), t.bytes.size()) && f->finish(&st.sha256, false) && (spool_ || f->prepare())) {
      if (spool_) st.file_path = blob_relative_path(st.sha256, st.ext).string();
      st.file = std::move(f);
      image.thumbnails.push_back(std::move(st));
      continue;
    }
    // The store that refused a thumbnail refuses the image: the same disk.
    image.error = "store: " + (f ? f->error() : err);
    image.error_kind = "store";
    return false;
  }
  return true;
}

void ImagePipeline::commit_loop() {
  for (;;) {
    std::vector<ToCommit> batch;
    {
      std::unique_lock<std::mutex> lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return commit_stop_ || !to_commit_.empty(); });
      if (to_commit_.empty()) return;
      batch.swap(to_commit_);
    }
    // The bytes of every file are on disk before any is renamed (a name in
    // the store always has all its bytes), and the renames before
    // image_record() names them: two syncfs for the whole batch.
    std::string err;
    bool synced = store_.sync(&err);
    for (auto& t : batch) {
      if (!synced) t.image.error = "store: " + err;
      else if (!t.file->commit(t.image.info.ext, &t.image.file_path, false))
        t.image.error = "store: " + t.file->error();
      else
        for (StoredThumbnail& th : t.image.thumbnails)
          if (!th.file->commit(th.ext, &th.file_path, false)) {
            t.image.error = "store: " + th.file->error();
            break;
          }
      if (!t.image.error.empty()) t.image.error_kind = "store";
    }
    if (synced && !store_.sync(&err))
      for (auto& t : batch)
        if (t.image.error.empty()) {
          t.image.error = "store: " + err;
          t.image.error_kind = "store";
        }
    for (auto& t : batch) {
      if (!t.image.error.empty()) {
        t.image.file_path.clear();
        t.image.thumbnails.clear();
      }
      for (StoredThumbnail& th : t.image.thumbnails) th.file.reset();
      t.file.reset();  // an uncommitted temporary file is removed here
      finished(t.item, std::move(t.image));
    }
  }
}

void ImagePipeline::finished(std::int64_t item, StoredImage&& image) {
  asio::post(io_, [this, item, image = std::move(image)]() mutable { done_(item, std::move(image)); });
}

}  // namespace crawler
