#include "crawler/thumbnail.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <vips/vips.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using crawler::Thumbnail;
using crawler::ThumbnailSize;

namespace {

// Real image files made at test time by libvips, thumbnailed, and the
// thumbnails read back (by the crawler's own header reader and by libvips).
class Thumbnails : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { crawler::init_image_library("crawler-tests"); }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("crawler-thumb-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A w x h image of `bands` bands (a gradient, so that it is not all one
  // colour), written as `name` with the saver's `options`.
  fs::path make(const std::string& name, int w, int h, int bands = 3, const char* options = "",
                VipsInterpretation interpretation = VIPS_INTERPRETATION_sRGB, int page_height = 0) {
    VipsImage *grey = nullptr, *img = nullptr, *typed = nullptr;
    EXPECT_EQ(vips_xyz(&grey, w, h, nullptr), 0);
    VipsImage* band = nullptr;
    EXPECT_EQ(vips_extract_band(grey, &band, 0, nullptr), 0);
    VipsImage* u8 = nullptr;
    EXPECT_EQ(vips_cast(band, &u8, VIPS_FORMAT_UCHAR, nullptr), 0);
    std::vector<VipsImage*> copies(static_cast<std::size_t>(bands), u8);
    EXPECT_EQ(vips_bandjoin(copies.data(), &img, bands, nullptr), 0);
    EXPECT_EQ(vips_copy(img, &typed, "interpretation", interpretation, nullptr), 0);
    if (page_height) vips_image_set_int(typed, "page-height", page_height);
    fs::path p = dir_ / name;
    EXPECT_EQ(vips_image_write_to_file(typed, (p.string() + options).c_str(), nullptr), 0) << vips_error_buffer();
    for (VipsImage* i : {grey, band, u8, img, typed}) g_object_unref(i);
    return p;
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  crawler::ImageInfo info(const fs::path& p) {
    auto r = crawler::read_image_info(p, slurp(p).substr(0, 4096));
    if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << p << ": " << *e;
    return std::holds_alternative<crawler::ImageInfo>(r) ? std::get<crawler::ImageInfo>(r) : crawler::ImageInfo{};
  }
  std::vector<Thumbnail> thumbs(const fs::path& p, const std::vector<ThumbnailSize>& sizes,
                                std::uint64_t max_pixels = 100000000) {
    auto r = crawler::make_thumbnails(p, info(p), sizes, max_pixels);
    if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << p << ": " << *e;
    return std::holds_alternative<std::vector<Thumbnail>>(r) ? std::get<std::vector<Thumbnail>>(r)
                                                             : std::vector<Thumbnail>{};
  }
  // The thumbnail's bytes as an image file: its header as the crawler reads
  // it must agree with what make_thumbnails() said.
  crawler::ImageInfo reread(const Thumbnail& t) {
    fs::path p = dir_ / ("out-" + t.name + "." + t.ext);
    std::ofstream(p, std::ios::binary) << t.bytes;
    crawler::ImageInfo i = info(p);
    EXPECT_EQ(i.format, t.format);
    EXPECT_EQ(i.width, t.width);
    EXPECT_EQ(i.height, t.height);
    return i;
  }
  static int bands_of(const Thumbnail& t) {
    VipsImage* img = vips_image_new_from_buffer(t.bytes.data(), t.bytes.size(), "", nullptr);
    EXPECT_NE(img, nullptr);
    int b = img ? vips_image_get_bands(img) : 0;
    if (img) g_object_unref(img);
    return b;
  }
  fs::path dir_;
};

TEST_F(Thumbnails, EachSizeFitsItsBoxWithTheAspectKept) {
  auto t = thumbs(make("photo.jpg", 800, 600), {{"small", 50}, {"big", 270}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "small");
  EXPECT_EQ(t[0].width, 50);
  EXPECT_EQ(t[0].height, 38);  // 37.5 rounded
  EXPECT_EQ(t[1].name, "big");
  EXPECT_EQ(t[1].width, 270);
  EXPECT_EQ(t[1].height, 203);
  for (const auto& x : t) {
    EXPECT_EQ(x.format, "jpeg");
    EXPECT_EQ(x.ext, "jpg");
    reread(x);
  }
  // Portrait: the height is the side that fits.
  auto p = thumbs(make("tall.png", 300, 900), {{"small", 60}});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].width, 20);
  EXPECT_EQ(p[0].height, 60);
}

TEST_F(Thumbnails, NeverEnlarged) {
  auto t = thumbs(make("icon.webp", 40, 30), {{"big", 270}, {"tiny", 20}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].width, 40);
  EXPECT_EQ(t[0].height, 30);
  EXPECT_EQ(t[1].width, 20);
  EXPECT_EQ(t[1].height, 15);
}

TEST_F(Thumbnails, AlphaBecomesAPngAndKeepsIt) {
  auto t = thumbs(make("logo.png", 200, 100, 4), {{"small", 50}});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].format, "png");
  EXPECT_EQ(t[0].ext, "png");
  EXPECT_EQ(bands_of(t[0]), 4);
  reread(t[0]);
  // Opaque: a JPEG.
  auto o = thumbs(make("opaque.png", 200, 100, 3), {{"small", 50}});
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].format, "jpeg");
}

TEST_F(Thumbnails, AnimatedGifGivesItsFirstFrame) {
  // Three frames of 90 x 30, one above the other.
  fs::path gif = make("anim.gif", 90, 90, 3, "", VIPS_INTERPRETATION_sRGB, 30);
  auto t = thumbs(gif, {{"small", 45}});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].width, 45);
  EXPECT_EQ(t[0].height, 15);
}

TEST_F(Thumbnails, CmykJpegBecomesSrgb) {
  fs::path cmyk = make("print.jpg", 400, 200, 4, "", VIPS_INTERPRETATION_CMYK);
  auto t = thumbs(cmyk, {{"small", 100}});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].format, "jpeg");
  EXPECT_EQ(t[0].width, 100);
  EXPECT_EQ(t[0].height, 50);
  EXPECT_EQ(bands_of(t[0]), 3);
  reread(t[0]);
}

TEST_F(Thumbnails, APixelBombIsRefusedAsTheOriginalIs) {
  fs::path p = make("bomb.png", 400, 400);
  auto r = crawler::make_thumbnails(p, info(p), {{"small", 50}}, 400 * 400 - 1);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("over max_pixels"), std::string::npos);
}

TEST_F(Thumbnails, NoSizesNoWork) {
  fs::path p = make("any.jpg", 10, 10);
  auto r = crawler::make_thumbnails(p, info(p), {}, 100);
  ASSERT_TRUE(std::holds_alternative<std::vector<Thumbnail>>(r));
  EXPECT_TRUE(std::get<std::vector<Thumbnail>>(r).empty());
}

TEST_F(Thumbnails, FormatsWithoutALoaderAndDamagedFilesAreErrors) {
  crawler::ImageInfo bmp{"bmp", "bmp", "image/bmp", 10, 10};
  auto r = crawler::make_thumbnails(dir_ / "x.bmp", bmp, {{"small", 50}}, 1000);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  fs::path p = make("cut.jpg", 300, 300);
  crawler::ImageInfo i = info(p);
  fs::resize_file(p, 200);
  r = crawler::make_thumbnails(p, i, {{"small", 50}}, 1000000);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
}

TEST(ThumbnailSizes, ParsedFromTheSessionSetting) {
  auto s = crawler::parse_thumbnail_sizes(R"({"small": 50, "big": 270})");
  ASSERT_TRUE(std::holds_alternative<std::vector<ThumbnailSize>>(s));
  const auto& v = std::get<std::vector<ThumbnailSize>>(s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].name, "big");  // JSON object order: by name
  EXPECT_EQ(v[0].box, 270);
  EXPECT_TRUE(std::get<std::vector<ThumbnailSize>>(crawler::parse_thumbnail_sizes("")).empty());
  for (const char* bad : {"[]", "{\"Big\": 5}", "{\"a\": \"5\"}", "{\"a\": 0}", "{\"a\": 2.5}", "not json"})
    EXPECT_TRUE(std::holds_alternative<std::string>(crawler::parse_thumbnail_sizes(bad))) << bad;
}

}  // namespace
