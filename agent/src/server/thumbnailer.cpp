#include "crawler/agent/server/thumbnailer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <stdexcept>

#include "crawler/log.hpp"
#include "crawler/sha256.hpp"

namespace crawler::agent {
namespace {

namespace fs = std::filesystem;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// libvips and its loaders warn about every damaged file; here a damaged file
// is one request's answer, and its warnings would come between the agent's
// own log lines in another format.
void forward_vips_log(const gchar* domain, GLogLevelFlags, const gchar* message, gpointer) {
  CRAWLER_LOG(debug) << "thumbnails: " << (domain ? domain : "libvips") << ": " << (message ? message : "");
}

// Starts libvips once per process; returns why it cannot be used, or empty.
const std::string& start_vips() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    if (VIPS_INIT("crawler-ha") != 0) {
      char* text = vips_error_buffer_copy();
      error = std::string("libvips failed to start: ") + (text ? text : "");
      g_free(text);
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      return;
    }
    g_log_set_handler("VIPS", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO),
                      forward_vips_log, nullptr);
    // Every source is read once per size: cached operations would only hold
    // memory (and open files) for nothing.
    vips_cache_set_max(0);
    // The pool's threads are the parallelism; libvips' own workers per
    // image would multiply them behind the bound the pool sets.
    vips_concurrency_set(1);
    // Loaders of formats nobody fuzzes for hostile input (SVG, PDF,
    // ImageMagick, Matlab, FITS...) are refused by libvips itself, besides
    // the allow-list below.
    vips_block_untrusted_set(TRUE);
  });
  return error;
}

// libvips' message, copied and cleared in one step under its lock (two
// pool threads may fail at once), one line, the store's path reduced to the
// file's name: the text may be shown to a client.
std::string vips_error_text(const fs::path& source) {
  char* copy = vips_error_buffer_copy();
  std::string raw = copy ? copy : "";
  g_free(copy);
  const std::string path = source.string(), name = source.filename().string();
  if (!path.empty())
    for (std::size_t at = raw.find(path); at != std::string::npos; at = raw.find(path, at + name.size()))
      raw.replace(at, path.size(), name);
  std::string text;
  std::size_t start = 0;
  while (start < raw.size()) {
    std::size_t end = raw.find('\n', start);
    if (end == std::string::npos) end = raw.size();
    std::string line = raw.substr(start, end - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) text += (text.empty() ? "" : "; ") + line;
    start = end + 1;
  }
  if (text.size() > 400) text.resize(400);
  return text.empty() ? "no reason given by libvips" : text;
}

struct ImageRef {
  VipsImage* image = nullptr;
  ~ImageRef() {
    if (image) g_object_unref(image);
  }
};

struct GFree {
  void operator()(void* p) const { g_free(p); }
};

// Raster formats whose loaders are built for untrusted input, by libvips
// nickname (stable across versions, unlike the class names). Anything else
// libvips could read (SVG, PDF, matrix text, CSV, its own format...) is not
// an image a thumbnail is made of.
bool allowed_loader(std::string_view nickname) {
  for (std::string_view ok : {"jpegload", "pngload", "gifload", "webpload", "tiffload", "heifload"})
    if (nickname == ok) return true;
  return false;
}

// Runs a caller's `done`: an exception must not end a pool thread (nor
// unwind into the caller of get() for a cached answer).
void answer(const std::function<void(Thumbnailer::Result)>& done, Thumbnailer::Result result) {
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    CRAWLER_LOG(error) << "thumbnails: a caller's completion threw: " << e.what();
  } catch (...) {
    CRAWLER_LOG(error) << "thumbnails: a caller's completion threw";
  }
}

Thumbnailer::Result refusal(Thumbnailer::Result::Kind kind, std::string error) {
  Thumbnailer::Result r;
  r.kind = kind;
  r.error = std::move(error);
  return r;
}

// Removes the temporary file unless it was renamed into place, on every
// path out (an error, an exception).
struct TempFile {
  std::string path;
  int fd = -1;
  bool renamed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty() && !renamed) ::unlink(path.c_str());
  }
};

bool make_dir(const fs::path& dir, std::string* error) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return true;
  *error = errno_text("cannot create " + dir.string());
  return false;
}

}  // namespace

Thumbnailer::Thumbnailer(fs::path store_root, std::vector<int> sizes, int threads, std::size_t max_queue,
                         std::uint64_t max_pixels)
    : root_(std::move(store_root)), sizes_(std::move(sizes)), max_queue_(max_queue), max_pixels_(max_pixels) {
  if (sizes_.empty()) throw std::invalid_argument("thumbnails: no sizes allowed");
  for (int s : sizes_)
    if (s < 1 || s > kMaxSize)
      throw std::invalid_argument("thumbnails: size " + std::to_string(s) + " is not between 1 and " +
                                  std::to_string(kMaxSize));
  if (threads < 1) throw std::invalid_argument("thumbnails: at least one thread is needed");
  if (max_pixels_ == 0) throw std::invalid_argument("thumbnails: the pixel limit must be at least 1");
  std::sort(sizes_.begin(), sizes_.end());
  sizes_.erase(std::unique(sizes_.begin(), sizes_.end()), sizes_.end());

  // libvips starts on the pool's first thread, not here: loading its
  // modules takes tens of milliseconds, which the agent's start (its ports,
  // file sync's catch-up) need not wait for. Requests that come meanwhile
  // wait in the queue.
  try {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  } catch (...) {
    // The destructor does not run for a constructor that throws: the
    // threads started must still be joined.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    throw;
  }
}

Thumbnailer::~Thumbnailer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  std::vector<std::function<void(Result)>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, callers] : waiting_)
      for (auto& done : callers) left.push_back(std::move(done));
    waiting_.clear();
    queue_.clear();
  }
  for (auto& done : left) answer(done, refusal(Result::failed, "the thumbnailer is stopping"));
}

bool Thumbnailer::size_allowed(int size) const {
  return std::binary_search(sizes_.begin(), sizes_.end(), size);
}

const std::vector<int>& Thumbnailer::sizes() const { return sizes_; }

fs::path Thumbnailer::cache_root() const { return root_ / ".thumbnails"; }

std::optional<Thumbnailer::Result> Thumbnailer::cached(const std::string& sha256, int size) const {
  const fs::path dir = cache_root() / std::to_string(size) / sha256.substr(0, 2);
  // Both names: the format depends on the source's alpha, known only once
  // it is opened. Only one of them is ever made for a blob.
  for (const char* ext : {"jpg", "png"}) {
    fs::path file = dir / (sha256 + "." + ext);
    struct stat st;
    // A name in the cache is a whole file (it was renamed there after its
    // fsync); an empty one would be damage, made again.
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      Result r;
      r.kind = Result::ok;
      r.path = std::move(file);
      r.content_type = ext[0] == 'j' ? "image/jpeg" : "image/png";
      return r;
    }
  }
  return std::nullopt;
}

void Thumbnailer::get(const std::string& sha256, const fs::path& source, int size,
                      std::function<void(Result)> done) {
  // The sha256 names files below the store's root: nothing else may.
  if (!crawler::is_sha256_hex(sha256))
    return answer(done, refusal(Result::failed, "not a blob name: " + sha256.substr(0, 80)));
  if (!size_allowed(size)) {
    std::string list;
    for (int s : sizes_) list += (list.empty() ? "" : ", ") + std::to_string(s);
    return answer(done, refusal(Result::failed, "size " + std::to_string(size) + " is not one of " + list));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!start_error_.empty()) return answer(done, refusal(Result::failed, start_error_));
  }
  if (auto hit = cached(sha256, size)) return answer(done, std::move(*hit));

  Job job{std::to_string(size) + "/" + sha256, sha256, source, size};
  Result refused;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      refused = refusal(Result::failed, "the thumbnailer is stopping");
    } else if (!start_error_.empty()) {  // libvips failed since the check above: no thread takes jobs
      refused = refusal(Result::failed, start_error_);
    } else if (auto same = waiting_.find(job.key); same != waiting_.end()) {
      same->second.push_back(std::move(done));
      return;
    } else if (queue_.size() >= threads_.size() - working_ + max_queue_) {
      // As many jobs as threads are free are about to be taken, not
      // waiting: with max_queue 0 an idle pool still accepts work (free is
      // counted, not waiting in wait(), which a new thread is not yet).
      refused = refusal(Result::busy, "too many thumbnails waiting (" + std::to_string(max_queue_) + ")");
    } else {
      waiting_[job.key].push_back(std::move(done));
      queue_.push_back(std::move(job));
      queued = true;
    }
  }
  if (queued)
    wake_.notify_one();
  else
    answer(done, std::move(refused));
}

void Thumbnailer::run() {
  // Every thread waits here for the first one to start libvips.
  if (const std::string& error = start_vips(); !error.empty()) {
    std::vector<std::function<void(Result)>> callers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (start_error_.empty()) CRAWLER_LOG(error) << "thumbnails: " << error;
      start_error_ = error;
      for (auto& [key, waiting] : waiting_)
        for (auto& done : waiting) callers.push_back(std::move(done));
      waiting_.clear();
      queue_.clear();
    }
    for (auto& done : callers) answer(done, refusal(Result::failed, error));
    return;
  }
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++working_;
    }
    Result result = make_or_fail(job);
    std::vector<std::function<void(Result)>> callers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = waiting_.find(job.key); it != waiting_.end()) {
        callers = std::move(it->second);
        waiting_.erase(it);
      }
    }
    for (auto& done : callers) answer(done, result);
    // Free only now: a thread in a caller's completion takes no job.
    std::lock_guard<std::mutex> lock(mutex_);
    --working_;
  }
  // libvips keeps per-thread buffers until told the thread is ending.
  vips_thread_shutdown();
}

Thumbnailer::Result Thumbnailer::make_or_fail(const Job& job) const {
  try {
    return make(job);
  } catch (const std::exception& e) {
    return refusal(Result::failed, std::string("thumbnail failed: ") + e.what());
  } catch (...) {
    return refusal(Result::failed, "thumbnail failed");
  }
}

Thumbnailer::Result Thumbnailer::make(const Job& job) const {
  // Another request (or another Thumbnailer on the same store) may have
  // made it since get() looked.
  if (auto hit = cached(job.sha256, job.size)) return *hit;

  const std::string file = job.source.string();
  // A missing or unreadable blob is the store's trouble, not the image's:
  // libvips would only say "not a known file format".
  {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return refusal(Result::failed, errno_text("cannot open " + job.source.filename().string()));
    struct stat st;
    bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    if (!regular) return refusal(Result::failed, job.source.filename().string() + " is not a regular file");
  }

  // Only the loaders' sniffers run here (a few bytes each): an SVG or a
  // PDF is refused before any parser sees it.
  const char* loader = vips_foreign_find_load(file.c_str());
  if (!loader) return refusal(Result::not_image, "not an image: " + vips_error_text(job.source));
  GType type = g_type_from_name(loader);
  const char* nickname = type ? vips_nickname_find(type) : nullptr;
  if (!nickname || !allowed_loader(nickname))
    return refusal(Result::not_image, std::string("not a raster image thumbnails are made of (") +
                                          (nickname ? nickname : loader) +
                                          "): only JPEG, PNG, GIF, WebP, TIFF and HEIF/AVIF");

  // The header alone (loading is lazy): the pixel count of a decompression
  // bomb is known before anything is decoded.
  {
    ImageRef header;
    header.image = vips_image_new_from_file(file.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
    if (!header.image) return refusal(Result::not_image, "unreadable image: " + vips_error_text(job.source));
    const std::uint64_t width = static_cast<std::uint64_t>(std::max(0, vips_image_get_width(header.image)));
    const std::uint64_t height = static_cast<std::uint64_t>(std::max(0, vips_image_get_height(header.image)));
    if (width == 0 || height == 0) return refusal(Result::not_image, "unreadable image: no size");
    if (width * height > max_pixels_)
      return refusal(Result::too_large, "the image is " + std::to_string(width) + "x" + std::to_string(height) +
                                            " pixels, more than " + std::to_string(max_pixels_));
  }

  // vips_thumbnail shrinks while loading where the format allows (JPEG,
  // WebP, HEIF, TIFF pyramids) and applies the EXIF orientation, which the
  // stripped output could no longer carry.
  ImageRef thumb;
  if (vips_thumbnail(file.c_str(), &thumb.image, job.size, "height", job.size, "size", VIPS_SIZE_DOWN, nullptr) != 0)
    return refusal(Result::not_image, "cannot decode the image: " + vips_error_text(job.source));
  const bool alpha = vips_image_hasalpha(thumb.image);

  // Encoded in memory (a thumbnail is small), then written by us: an error
  // here is the image's (its pixels are decoded now), one while writing is
  // the disk's, and each write and the fsync are checked on our own
  // descriptor.
  void* bytes = nullptr;
  std::size_t length = 0;
  int rc = alpha ? vips_pngsave_buffer(thumb.image, &bytes, &length, "strip", TRUE, nullptr)
                 : vips_jpegsave_buffer(thumb.image, &bytes, &length, "Q", 80, "strip", TRUE, nullptr);
  std::unique_ptr<void, GFree> owned(bytes);
  if (rc != 0 || !bytes || length == 0)
    return refusal(Result::not_image, "cannot decode the image: " + vips_error_text(job.source));

  const char* ext = alpha ? "png" : "jpg";
  fs::path dest = cache_root() / std::to_string(job.size) / job.sha256.substr(0, 2) / (job.sha256 + "." + ext);
  std::string error;
  if (!write_atomically(bytes, length, dest, &error)) return refusal(Result::failed, error);
  Result r;
  r.kind = Result::ok;
  r.path = std::move(dest);
  r.content_type = alpha ? "image/png" : "image/jpeg";
  return r;
}

bool Thumbnailer::write_atomically(const void* data, std::size_t size, const fs::path& dest,
                                   std::string* error) const {
  TempFile temp;
  temp.path = (root_ / ".tmp" / ("part-" + std::to_string(::getpid()) + "-thumb-XXXXXX")).string();
  temp.fd = ::mkostemp(temp.path.data(), O_CLOEXEC);
  if (temp.fd < 0) {
    *error = errno_text("cannot create a temporary file in " + (root_ / ".tmp").string());
    temp.path.clear();  // nothing was made
    return false;
  }
  const char* p = static_cast<const char*>(data);
  for (std::size_t off = 0; off < size;) {
    ssize_t w = ::write(temp.fd, p + off, size - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      *error = errno_text("cannot write the thumbnail");
      return false;
    }
    off += static_cast<std::size_t>(w);
  }
  // mkostemp makes 0600; the store's files are readable like the blobs.
  // Without the fsync a crash after the rename could leave the name on an
  // empty file, which the cache would then serve.
  if (::fchmod(temp.fd, 0644) != 0 || ::fsync(temp.fd) != 0) {
    *error = errno_text("cannot write the thumbnail");
    return false;
  }
  int fd = temp.fd;
  temp.fd = -1;
  if (::close(fd) != 0) {
    *error = errno_text("cannot write the thumbnail");
    return false;
  }
  const fs::path sized = dest.parent_path().parent_path();
  if (!make_dir(cache_root(), error) || !make_dir(sized, error) || !make_dir(dest.parent_path(), error))
    return false;
  // Replacing a file another thread or process renamed there first is
  // harmless: both are whole thumbnails of the same bytes. The directory
  // is not fsynced: a name lost in a crash is a thumbnail made again.
  if (::rename(temp.path.c_str(), dest.c_str()) != 0) {
    *error = errno_text("cannot rename the thumbnail to " + dest.string());
    return false;
  }
  temp.renamed = true;
  return true;
}

}  // namespace crawler::agent
