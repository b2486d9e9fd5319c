// The thumbnail maker against real files made by libvips: sizes and
// formats, the cache, concurrent requests, the queue's bound, input that is
// no raster image or too large, and a failing disk, which must leave no
// file behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <random>
#include <thread>

#include "crawler/agent/server/thumbnailer.hpp"
#include "crawler/sha256.hpp"

using crawler::agent::Thumbnailer;
using Result = Thumbnailer::Result;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::vector<int> kSizes = {64, 128, 256, 512};
constexpr std::uint64_t kMaxPixels = 100'000'000;

std::string kind_name(Result::Kind k) {
  switch (k) {
    case Result::ok: return "ok";
    case Result::not_image: return "not_image";
    case Result::too_large: return "too_large";
    case Result::busy: return "busy";
    case Result::failed: return "failed";
  }
  return "?";
}

::testing::AssertionResult is_kind(const Result& r, Result::Kind want) {
  if (r.kind == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << kind_name(r.kind) << " (" << r.error << "), wanted "
                                       << kind_name(want);
}

// get() and wait for its answer. The promise is shared: a pool thread that
// answers after a timeout must not write into a dead frame.
Result get_sync(Thumbnailer& t, const std::string& sha, const fs::path& source, int size) {
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  t.get(sha, source, size, [p](Result r) { p->set_value(std::move(r)); });
  if (f.wait_for(120s) != std::future_status::ready) {
    ADD_FAILURE() << "no answer";
    return {};
  }
  return f.get();
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << p;
}

// Regular files below `dir`, as paths relative to it.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) out.push_back(fs::relative(it->path(), dir).string());
  return out;
}

struct Decoded {
  int width = 0, height = 0, bands = 0;
  bool alpha = false;
  std::string loader;
  bool has_exif = false, has_icc = false, has_xmp = false;
};

// Decodes every pixel of `file` (a damaged file fails here, not just its
// header).
std::optional<Decoded> decode(const fs::path& file) {
  VipsImage* img = vips_image_new_from_file(file.c_str(), nullptr);
  if (!img) {
    ADD_FAILURE() << "cannot open " << file << ": " << vips_error_buffer();
    vips_error_clear();
    return std::nullopt;
  }
  Decoded d;
  d.width = vips_image_get_width(img);
  d.height = vips_image_get_height(img);
  d.bands = vips_image_get_bands(img);
  d.alpha = vips_image_hasalpha(img);
  const char* loader = nullptr;
  if (vips_image_get_string(img, "vips-loader", &loader) == 0 && loader) d.loader = loader;
  d.has_exif = vips_image_get_typeof(img, VIPS_META_EXIF_NAME) != 0;
  d.has_icc = vips_image_get_typeof(img, VIPS_META_ICC_NAME) != 0;
  d.has_xmp = vips_image_get_typeof(img, VIPS_META_XMP_NAME) != 0;
  double avg = 0;
  bool ok = vips_avg(img, &avg, nullptr) == 0;
  if (!ok) {
    ADD_FAILURE() << "cannot decode " << file << ": " << vips_error_buffer();
    vips_error_clear();
  }
  g_object_unref(img);
  if (!ok) return std::nullopt;
  return d;
}

// A PNG of a 60000x60000 grey image that is all header: a valid IHDR
// (its CRC right), a token IDAT and IEND. Decoding it would need 3.6 GB.
std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

std::string huge_png_header(std::uint32_t width, std::uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey
  return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", ihdr) +
         png_chunk("IDAT", std::string("\x78\x9C\x03\x00\x00\x00\x00\x01", 8)) + png_chunk("IEND", "");
}

class ThumbnailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(VIPS_INIT("thumbnailer-test"), 0) << vips_error_buffer();
    char tmpl[] = "/tmp/thumbnailer-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    root_ = base_ / "store";
    scratch_ = base_ / "scratch";
    fs::create_directories(root_ / ".tmp");
    fs::create_directories(scratch_);
  }

  void TearDown() override {
    for (const auto& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(base_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_directory(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(base_, ec);
  }

  // A flat image of `bands` bands (3: RGB, 4: RGBA with alpha 128) saved by
  // libvips to a scratch file named by `name` (its suffix picks the format).
  fs::path make_image(const std::string& name, int width, int height, int bands) {
    VipsImage* black = nullptr;
    VipsImage* lit = nullptr;
    VipsImage* tagged = nullptr;
    double a[4] = {1, 1, 1, 1}, b[4] = {200, 120, 40, 128};
    fs::path file = scratch_ / name;
    bool ok = vips_black(&black, width, height, "bands", bands, nullptr) == 0 &&
              vips_linear(black, &lit, a, b, bands, "uchar", TRUE, nullptr) == 0 &&
              vips_copy(lit, &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr) == 0 &&
              vips_image_write_to_file(tagged, file.c_str(), nullptr) == 0;
    for (VipsImage* i : {black, lit, tagged})
      if (i) g_object_unref(i);
    EXPECT_TRUE(ok) << name << ": " << vips_error_buffer();
    vips_error_clear();
    return file;
  }

  // Moves `file` into the store under its sha256, as a blob; returns the
  // sha256 and sets *blob to its path.
  std::string store(const fs::path& file, const std::string& ext, fs::path* blob) {
    std::string error;
    auto sha = crawler::sha256_file(file, &error);
    EXPECT_TRUE(sha) << error;
    if (!sha) return std::string(64, '0');
    *blob = root_ / sha->substr(0, 2) / sha->substr(2, 2) / (*sha + "." + ext);
    fs::create_directories(blob->parent_path());
    fs::rename(file, *blob);
    return *sha;
  }

  std::string store_bytes(const std::string& bytes, const std::string& ext, fs::path* blob) {
    fs::path f = scratch_ / ("bytes." + ext);
    write_all(f, bytes);
    return store(f, ext, blob);
  }

  std::string jpeg_1000x500(fs::path* blob) { return store(make_image("wide.jpg", 1000, 500, 3), "jpg", blob); }

  std::unique_ptr<Thumbnailer> make(int threads = 2, std::size_t max_queue = 16,
                                    std::uint64_t max_pixels = kMaxPixels) {
    return std::make_unique<Thumbnailer>(root_, kSizes, threads, max_queue, max_pixels);
  }

  fs::path base_, root_, scratch_;
  std::vector<fs::path> mounts_;
};

TEST_F(ThumbnailerTest, ShrinksAJpegToTheSizeKeepingItsAspect) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make();
  for (int size : {256, 64}) {
    Result r = get_sync(*t, sha, blob, size);
    ASSERT_TRUE(is_kind(r, Result::ok)) << size;
    EXPECT_EQ(r.content_type, "image/jpeg");
    EXPECT_EQ(r.path, root_ / ".thumbnails" / std::to_string(size) / sha.substr(0, 2) / (sha + ".jpg"));
    auto d = decode(r.path);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->loader, "jpegload");
    EXPECT_EQ(d->width, size);
    EXPECT_EQ(d->height, size / 2);
    EXPECT_EQ(d->bands, 3);
  }
  EXPECT_EQ(t->cache_root(), root_ / ".thumbnails");
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
}

TEST_F(ThumbnailerTest, ImagesWithAlphaBecomePng) {
  fs::path blob;
  std::string sha = store(make_image("tall.png", 300, 600, 4), "png", &blob);
  auto t = make();
  Result r = get_sync(*t, sha, blob, 128);
  ASSERT_TRUE(is_kind(r, Result::ok));
  EXPECT_EQ(r.content_type, "image/png");
  EXPECT_EQ(r.path.filename(), sha + ".png");
  auto d = decode(r.path);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->loader, "pngload");
  EXPECT_EQ(d->width, 64);
  EXPECT_EQ(d->height, 128);
  EXPECT_TRUE(d->alpha);
}

TEST_F(ThumbnailerTest, NeverEnlargesASmallImage) {
  fs::path blob;
  std::string sha = store(make_image("small.jpg", 10, 7, 3), "jpg", &blob);
  auto t = make();
  Result r = get_sync(*t, sha, blob, 512);
  ASSERT_TRUE(is_kind(r, Result::ok));
  auto d = decode(r.path);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->width, 10);
  EXPECT_EQ(d->height, 7);
}

TEST_F(ThumbnailerTest, ReadsWebpTiffAndGif) {
  auto t = make();
  for (const char* ext : {"webp", "tif", "gif"}) {
    fs::path blob;
    std::string sha = store(make_image(std::string("wide.") + ext, 1000, 500, 3), ext, &blob);
    Result r = get_sync(*t, sha, blob, 128);
    ASSERT_TRUE(is_kind(r, Result::ok)) << ext;
    auto d = decode(r.path);
    ASSERT_TRUE(d) << ext;
    EXPECT_EQ(d->width, 128) << ext;
    EXPECT_EQ(d->height, 64) << ext;
    // libvips' GIF loader always gives RGBA.
    EXPECT_EQ(r.content_type, std::string(ext) == "gif" ? "image/png" : "image/jpeg") << ext;
  }
}

TEST_F(ThumbnailerTest, StripsMetadata) {
  VipsImage* black = nullptr;
  VipsImage* with_meta = nullptr;
  ASSERT_EQ(vips_black(&black, 400, 300, "bands", 3, nullptr), 0);
  ASSERT_EQ(vips_copy(black, &with_meta, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
  g_object_unref(black);
  const std::string xmp =
      "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">"
      "</rdf:RDF></x:xmpmeta>";
  vips_image_set_blob_copy(with_meta, VIPS_META_XMP_NAME, xmp.data(), xmp.size());
  fs::path file = scratch_ / "meta.jpg";
  ASSERT_EQ(vips_image_write_to_file(with_meta, file.c_str(), nullptr), 0) << vips_error_buffer();
  g_object_unref(with_meta);
  auto source = decode(file);
  ASSERT_TRUE(source);
  ASSERT_TRUE(source->has_xmp);  // else the test proves nothing

  fs::path blob;
  std::string sha = store(file, "jpg", &blob);
  auto t = make();
  Result r = get_sync(*t, sha, blob, 64);
  ASSERT_TRUE(is_kind(r, Result::ok));
  auto d = decode(r.path);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->has_xmp);
  EXPECT_FALSE(d->has_exif);
  EXPECT_FALSE(d->has_icc);
}

TEST_F(ThumbnailerTest, ACacheHitAnswersAtOnceAndDoesNotRewriteTheFile) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make();
  Result first = get_sync(*t, sha, blob, 256);
  ASSERT_TRUE(is_kind(first, Result::ok));
  struct stat before {};
  ASSERT_EQ(::stat(first.path.c_str(), &before), 0);
  std::this_thread::sleep_for(20ms);  // a rewrite would show in the mtime too

  bool answered = false;
  Result again;
  const auto caller = std::this_thread::get_id();
  t->get(sha, blob, 256, [&](Result r) {
    answered = std::this_thread::get_id() == caller;
    again = std::move(r);
  });
  ASSERT_TRUE(answered) << "a cached thumbnail is answered on the caller's thread, before get() returns";
  ASSERT_TRUE(is_kind(again, Result::ok));
  EXPECT_EQ(again.path, first.path);
  EXPECT_EQ(again.content_type, "image/jpeg");
  struct stat after {};
  ASSERT_EQ(::stat(again.path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);

  // A new Thumbnailer (the agent restarted) finds it too.
  t.reset();
  auto t2 = make();
  Result third = get_sync(*t2, sha, blob, 256);
  ASSERT_TRUE(is_kind(third, Result::ok));
  ASSERT_EQ(::stat(third.path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
}

TEST_F(ThumbnailerTest, ConcurrentRequestsForOneThumbnailAllGetAGoodFile) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  // Two thumbnailers on one store: requests within one share the work,
  // the two race each other's rename.
  auto a = make(2, 1);
  auto b = make(2, 1);
  std::atomic<int> ready{0};
  std::vector<Result> results(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready < 8) std::this_thread::yield();
      results[i] = get_sync(i % 2 ? *a : *b, sha, blob, 512);
    });
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(is_kind(results[i], Result::ok)) << i;
    EXPECT_EQ(results[i].path, results[0].path);
  }
  auto d = decode(results[0].path);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->width, 512);
  EXPECT_EQ(d->height, 256);
  EXPECT_EQ(files_under(root_ / ".thumbnails"),
            std::vector<std::string>{"512/" + sha.substr(0, 2) + "/" + sha + ".jpg"});
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
}

// One pool thread held in a completion: what waits is then exactly known.
TEST_F(ThumbnailerTest, BusyOnceTheQueueIsFull) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make(1, 1);

  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  auto first = std::make_shared<std::promise<Result>>();
  auto first_done = first->get_future();
  t->get(sha, blob, 64, [&entered, released, first](Result r) {
    entered.set_value();
    released.wait_for(60s);  // bounded: a failed test must not hang
    first->set_value(std::move(r));
  });
  ASSERT_EQ(entered.get_future().wait_for(60s), std::future_status::ready);

  // The one place in the queue.
  std::atomic<int> queued_answers{0};
  std::vector<Result> queued(2);
  t->get(sha, blob, 128, [&](Result r) { queued[queued_answers++] = std::move(r); });
  // The same thumbnail again joins it instead of taking a place.
  t->get(sha, blob, 128, [&](Result r) { queued[queued_answers++] = std::move(r); });
  EXPECT_EQ(queued_answers, 0);

  // Anything else is refused at once.
  bool refused = false;
  t->get(sha, blob, 256, [&](Result r) {
    EXPECT_TRUE(is_kind(r, Result::busy));
    EXPECT_FALSE(r.error.empty());
    refused = true;
  });
  EXPECT_TRUE(refused);

  release.set_value();
  ASSERT_EQ(first_done.wait_for(60s), std::future_status::ready);
  EXPECT_TRUE(is_kind(first_done.get(), Result::ok));
  for (int i = 0; i < 600 && queued_answers < 2; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(queued_answers, 2);
  EXPECT_TRUE(is_kind(queued[0], Result::ok));
  EXPECT_TRUE(is_kind(queued[1], Result::ok));
  // With the queue empty again the refused one is made.
  EXPECT_TRUE(is_kind(get_sync(*t, sha, blob, 256), Result::ok));
}

TEST_F(ThumbnailerTest, NoQueueStillUsesAnIdleThread) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  // Asked at once after the start: a thread not yet waiting for work is
  // free all the same.
  auto t = make(1, 0);
  std::promise<Result::Kind> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  t->get(sha, blob, 128, [&entered, released, done](Result r) {
    entered.set_value(r.kind);
    if (r.kind == Result::ok) released.wait_for(60s);  // else this is the test's own thread
    done->set_value();
  });
  auto kind = entered.get_future();
  ASSERT_EQ(kind.wait_for(60s), std::future_status::ready);
  ASSERT_EQ(kind.get(), Result::ok);
  bool busy = false;
  t->get(sha, blob, 256, [&](Result r) { busy = r.kind == Result::busy; });
  EXPECT_TRUE(busy);
  release.set_value();
  ASSERT_EQ(finished.wait_for(60s), std::future_status::ready);
}

TEST_F(ThumbnailerTest, WhatIsNotARasterImageIsRefused) {
  std::mt19937 rng(42);
  std::string noise(5000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  std::string jpeg_head = read_all(make_image("cut.jpg", 300, 200, 3)).substr(0, 2);  // FF D8 and nothing
  struct Case {
    const char* what;
    std::string bytes;
    const char* ext;
  } cases[] = {
      {"random bytes", noise, "jpg"},
      {"an empty file", "", "png"},
      {"SVG", "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"200\">"
              "<rect width=\"300\" height=\"200\" fill=\"red\"/></svg>\n", "svg"},
      // libvips reads it (matrixload) and does not call it untrusted: the
      // loader allow-list must refuse it.
      {"a matrix text file", "2 2\n1 2\n3 4\n", "mat"},
      {"HTML", "<!doctype html><html><body>no</body></html>", "jpg"},
      {"two bytes of JPEG", jpeg_head, "jpg"},
      {"a PDF", "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "pdf"},
  };
  auto t = make();
  for (const auto& c : cases) {
    fs::path blob;
    std::string sha = store_bytes(c.bytes, c.ext, &blob);
    Result r = get_sync(*t, sha, blob, 128);
    EXPECT_TRUE(is_kind(r, Result::not_image)) << c.what;
    EXPECT_FALSE(r.error.empty()) << c.what;
    EXPECT_EQ(r.error.find(root_.string()), std::string::npos) << c.what << ": " << r.error;
  }
  EXPECT_TRUE(files_under(root_ / ".thumbnails").empty());
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
}

TEST_F(ThumbnailerTest, TooManyPixelsAreRefusedFromTheHeader) {
  fs::path blob;
  std::string sha = store_bytes(huge_png_header(60000, 60000), "png", &blob);
  auto t = make();
  auto start = std::chrono::steady_clock::now();
  Result r = get_sync(*t, sha, blob, 128);
  EXPECT_TRUE(is_kind(r, Result::too_large));
  EXPECT_NE(r.error.find("60000x60000"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "the header alone was to be read";

  // The limit is on width*height, inclusive.
  fs::path wide;
  std::string wide_sha = jpeg_1000x500(&wide);
  auto tight = make(1, 4, 499'999);
  EXPECT_TRUE(is_kind(get_sync(*tight, wide_sha, wide, 128), Result::too_large));
  auto exact = make(1, 4, 500'000);
  EXPECT_TRUE(is_kind(get_sync(*exact, wide_sha, wide, 128), Result::ok));
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
}

TEST_F(ThumbnailerTest, SizesAndArguments) {
  Thumbnailer t(root_, {256, 64, 128, 64}, 1, 4, kMaxPixels);
  EXPECT_EQ(t.sizes(), (std::vector<int>{64, 128, 256}));
  EXPECT_TRUE(t.size_allowed(64));
  EXPECT_TRUE(t.size_allowed(256));
  EXPECT_FALSE(t.size_allowed(512));
  EXPECT_FALSE(t.size_allowed(0));
  EXPECT_FALSE(t.size_allowed(-64));
  EXPECT_FALSE(t.size_allowed(100));

  EXPECT_THROW(Thumbnailer(root_, {}, 1, 4, kMaxPixels), std::invalid_argument);
  EXPECT_THROW(Thumbnailer(root_, {0}, 1, 4, kMaxPixels), std::invalid_argument);
  EXPECT_THROW(Thumbnailer(root_, {Thumbnailer::kMaxSize + 1}, 1, 4, kMaxPixels), std::invalid_argument);
  EXPECT_THROW(Thumbnailer(root_, {64}, 0, 4, kMaxPixels), std::invalid_argument);
  EXPECT_THROW(Thumbnailer(root_, {64}, 1, 4, 0), std::invalid_argument);

  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  // Refusals come at once, on the caller's thread.
  auto now = [&](const std::string& s, int size) {
    std::optional<Result> got;
    t.get(s, blob, size, [&](Result r) { got = std::move(r); });
    return got;
  };
  for (const std::string& bad : {std::string("../../etc/passwd"), sha.substr(1), sha + "0",
                                  std::string(64, 'A'), std::string()}) {
    auto r = now(bad, 64);
    ASSERT_TRUE(r) << bad;
    EXPECT_TRUE(is_kind(*r, Result::failed)) << bad;
  }
  auto r = now(sha, 100);
  ASSERT_TRUE(r);
  EXPECT_TRUE(is_kind(*r, Result::failed));
  EXPECT_NE(r->error.find("64, 128, 256"), std::string::npos) << r->error;
  EXPECT_FALSE(fs::exists(root_ / ".thumbnails"));
}

TEST_F(ThumbnailerTest, AMissingSourceFails) {
  auto t = make();
  Result r = get_sync(*t, std::string(64, 'e'), root_ / "ee" / "ee" / (std::string(64, 'e') + ".jpg"), 64);
  EXPECT_TRUE(is_kind(r, Result::failed));
  EXPECT_NE(r.error.find("No such file"), std::string::npos) << r.error;
}

// Each way the disk can fail a thumbnail: failed, and no file left in
// .tmp nor in .thumbnails.
class ThumbnailerDiskTest : public ThumbnailerTest {
 protected:
  void expect_failed_and_clean(const std::string& what) {
    fs::path blob;
    std::string sha = jpeg_1000x500(&blob);
    auto t = make();
    Result r = get_sync(*t, sha, blob, 256);
    EXPECT_TRUE(is_kind(r, Result::failed)) << what;
    EXPECT_FALSE(r.error.empty()) << what;
    EXPECT_TRUE(files_under(root_ / ".tmp").empty()) << what;
    std::error_code ec;
    if (fs::is_directory(root_ / ".thumbnails", ec)) {
      EXPECT_TRUE(files_under(root_ / ".thumbnails").empty()) << what;
    }
  }
};

TEST_F(ThumbnailerDiskTest, CacheDirectoryNotWritable) {
  const fs::path thumbs = root_ / ".thumbnails";
  fs::create_directories(thumbs);
  if (::geteuid() == 0) {
    // Root writes through permissions: a read-only file system stops it.
    if (::mount("tmpfs", thumbs.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0)
      GTEST_SKIP() << "root, but mount(tmpfs) failed: " << std::strerror(errno);
    mounts_.push_back(thumbs);
  } else {
    fs::permissions(thumbs, fs::perms::owner_read | fs::perms::owner_exec);
  }
  expect_failed_and_clean("read-only .thumbnails");
}

TEST_F(ThumbnailerDiskTest, CacheDirectoryIsAFile) {
  write_all(root_ / ".thumbnails", "not a directory");
  expect_failed_and_clean(".thumbnails is a file");
  EXPECT_EQ(read_all(root_ / ".thumbnails"), "not a directory");
}

TEST_F(ThumbnailerDiskTest, RenameFails) {
  // A directory (not empty) where the thumbnail goes: the rename fails
  // after the temporary file is written.
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  fs::path in_the_way = root_ / ".thumbnails" / "256" / sha.substr(0, 2) / (sha + ".jpg");
  fs::create_directories(in_the_way / "x");
  auto t = make();
  Result r = get_sync(*t, sha, blob, 256);
  EXPECT_TRUE(is_kind(r, Result::failed));
  EXPECT_NE(r.error.find("rename"), std::string::npos) << r.error;
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
  EXPECT_TRUE(files_under(root_ / ".thumbnails").empty());
  EXPECT_TRUE(fs::is_directory(in_the_way / "x"));
}

TEST_F(ThumbnailerDiskTest, WriteFails) {
  // A file size limit fails the write itself (EFBIG), as a full disk
  // would, whoever runs the test.
  struct Limit {
    rlimit old{};
    void (*old_handler)(int) = SIG_DFL;
    Limit() {
      ::getrlimit(RLIMIT_FSIZE, &old);
      old_handler = ::signal(SIGXFSZ, SIG_IGN);
      rlimit small = old;
      small.rlim_cur = 100;
      ::setrlimit(RLIMIT_FSIZE, &small);
    }
    ~Limit() {
      ::setrlimit(RLIMIT_FSIZE, &old);
      ::signal(SIGXFSZ, old_handler);
    }
  };
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make();
  Result r;
  {
    Limit limit;
    r = get_sync(*t, sha, blob, 256);
  }
  EXPECT_TRUE(is_kind(r, Result::failed));
  EXPECT_NE(r.error.find("write"), std::string::npos) << r.error;
  EXPECT_TRUE(files_under(root_ / ".tmp").empty());
  EXPECT_TRUE(files_under(root_ / ".thumbnails").empty());
  // Once the disk is back it is made.
  EXPECT_TRUE(is_kind(get_sync(*t, sha, blob, 256), Result::ok));
}

TEST_F(ThumbnailerDiskTest, NoTemporaryDirectory) {
  fs::remove(root_ / ".tmp");
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make();
  Result r = get_sync(*t, sha, blob, 256);
  EXPECT_TRUE(is_kind(r, Result::failed));
  EXPECT_NE(r.error.find(".tmp"), std::string::npos) << r.error;
  EXPECT_TRUE(files_under(root_ / ".thumbnails").empty());
}

TEST_F(ThumbnailerTest, AThrowingCompletionDoesNotEndThePool) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make(1, 4);
  auto threw = std::make_shared<std::promise<void>>();
  auto thrown = threw->get_future();
  t->get(sha, blob, 64, [threw](Result) {
    threw->set_value();
    throw std::runtime_error("a caller's bug");
  });
  ASSERT_EQ(thrown.wait_for(60s), std::future_status::ready);
  // The one pool thread still works; and a cached answer's exception does
  // not reach get()'s caller either.
  EXPECT_TRUE(is_kind(get_sync(*t, sha, blob, 128), Result::ok));
  EXPECT_NO_THROW(t->get(sha, blob, 64, [](Result) { throw std::runtime_error("again"); }));
}

TEST_F(ThumbnailerTest, StoppingAnswersEveryRequest) {
  fs::path blob;
  std::string sha = jpeg_1000x500(&blob);
  auto t = make(1, 4);
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  t->get(sha, blob, 64, [&entered, released, &calls](Result) {
    entered.set_value();
    released.wait_for(60s);  // bounded: a failed test must not hang
    ++calls;
  });
  ASSERT_EQ(entered.get_future().wait_for(60s), std::future_status::ready);
  std::vector<Result::Kind> queued;
  std::mutex m;
  for (int size : {128, 256, 512})
    t->get(sha, blob, size, [&](Result r) {
      std::lock_guard<std::mutex> lock(m);
      queued.push_back(r.kind);
      ++calls;
    });
  std::thread stopper([&] { t.reset(); });
  std::this_thread::sleep_for(50ms);
  release.set_value();
  stopper.join();
  EXPECT_EQ(calls, 4);
  // Those still queued when the destructor ran were answered failed; any
  // the pool took before were made.
  for (auto k : queued) EXPECT_TRUE(k == Result::failed || k == Result::ok) << kind_name(k);
}

}  // namespace
