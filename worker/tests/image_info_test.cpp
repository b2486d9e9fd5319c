#include <gtest/gtest.h>
#include <unistd.h>
#include <vips/vips.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crawler/image_info.hpp"

namespace fs = std::filesystem;

namespace {

// Real image files, made at test time by libvips (BMP and ICO by hand: this
// libvips has no saver for them).
class ImageFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { crawler::init_image_library("crawler-tests"); }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("crawler-img-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path make(const std::string& name, int w, int h, const char* options = "") {
    VipsImage* img = nullptr;
    EXPECT_EQ(vips_black(&img, w, h, "bands", 3, nullptr), 0);
    fs::path p = dir_ / name;
    EXPECT_EQ(vips_image_write_to_file(img, (p.string() + options).c_str(), nullptr), 0)
        << vips_error_buffer();
    g_object_unref(img);
    return p;
  }
  fs::path write(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str().substr(0, 4096);
  }
  static std::string slurp_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // The answer for the file, after checking that the same bytes in memory
  // get the same answer.
  static std::variant<crawler::ImageInfo, std::string> read_both(const fs::path& p) {
    auto r = crawler::read_image_info(p, slurp(p));
    auto m = crawler::read_image_info_in_memory(slurp_all(p));
    if (auto* e = std::get_if<std::string>(&r)) {
      EXPECT_TRUE(std::holds_alternative<std::string>(m)) << p << ": only the file is refused";
      if (auto* me = std::get_if<std::string>(&m)) {
        EXPECT_EQ(*me, *e) << p;
      }
    } else {
      const auto& i = std::get<crawler::ImageInfo>(r);
      EXPECT_TRUE(std::holds_alternative<crawler::ImageInfo>(m)) << p << ": only the bytes in memory are refused";
      if (auto* mi = std::get_if<crawler::ImageInfo>(&m)) {
        EXPECT_EQ(mi->format, i.format) << p;
        EXPECT_EQ(mi->ext, i.ext) << p;
        EXPECT_EQ(mi->mime, i.mime) << p;
        EXPECT_EQ(mi->width, i.width) << p;
        EXPECT_EQ(mi->height, i.height) << p;
      }
    }
    return r;
  }
  crawler::ImageInfo info(const fs::path& p) {
    auto r = read_both(p);
    if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << p << ": " << *e;
    return std::holds_alternative<crawler::ImageInfo>(r) ? std::get<crawler::ImageInfo>(r)
                                                         : crawler::ImageInfo{};
  }
  static std::string le(std::uint32_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  }
  fs::path dir_;
};

struct Case {
  const char* name;
  const char* options;
  const char* format;
  const char* ext;
};

}  // namespace

TEST_F(ImageFiles, HeadersOfEveryLibvipsFormat) {
  for (const Case& c : {Case{"a.jpg", "", "jpeg", "jpg"}, Case{"a.png", "", "png", "png"},
                        Case{"a.gif", "", "gif", "gif"}, Case{"a.webp", "", "webp", "webp"},
                        Case{"a.avif", "[compression=av1]", "avif", "avif"},
                        Case{"a.heic", "[compression=hevc]", "heic", "heic"}}) {
    fs::path p = make(c.name, 123, 45, c.options);
    auto i = info(p);
    EXPECT_EQ(i.format, c.format) << c.name;
    EXPECT_EQ(i.ext, c.ext) << c.name;
    EXPECT_EQ(i.width, 123) << c.name;
    EXPECT_EQ(i.height, 45) << c.name;
  }
}

TEST_F(ImageFiles, SvgWithXmlPrologueAndComments) {
  auto p = write("a.svg",
                 "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- drawn by hand -->\n"
                 "<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" "
                 "height=\"32\"><rect width=\"64\" height=\"32\"/></svg>\n");
  auto i = info(p);
  EXPECT_EQ(i.format, "svg");
  EXPECT_EQ(i.width, 64);
  EXPECT_EQ(i.height, 32);
}

TEST_F(ImageFiles, BmpBottomUpAndTopDown) {
  for (int sign : {1, -1}) {
    std::string px(4 * 2 * 3, '\0');  // 3x2, 24-bit rows padded to 12 bytes
    std::string bmp = "BM" + le(54 + 24, 4) + le(0, 4) + le(54, 4) + le(40, 4) + le(3, 4) +
                      le(static_cast<std::uint32_t>(2 * sign), 4) + le(1, 2) + le(24, 2) +
                      le(0, 4) + le(24, 4) + le(2835, 4) + le(2835, 4) + le(0, 4) + le(0, 4) + px;
    auto i = info(write("a.bmp", bmp));
    EXPECT_EQ(i.format, "bmp");
    EXPECT_EQ(i.width, 3);
    EXPECT_EQ(i.height, 2);
  }
}

TEST_F(ImageFiles, IcoFirstEntry) {
  std::string ico = std::string("\0\0\1\0\1\0", 6) + std::string("\x10\x20\0\0\1\0\x20\0", 8) +
                    le(40, 4) + le(22, 4) + std::string(40, '\0');
  auto i = info(write("favicon.ico", ico));
  EXPECT_EQ(i.format, "ico");
  EXPECT_EQ(i.width, 16);
  EXPECT_EQ(i.height, 32);
}

TEST_F(ImageFiles, NonImageBytesNamedJpgAreRefused) {
  auto p = write("fake.jpg", "<!DOCTYPE html><html><body>not found</body></html>");
  auto r = read_both(p);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(std::get<std::string>(r), "not an image: the content is HTML text");
}

TEST_F(ImageFiles, TruncatedJpegIsACorruptImage) {
  auto full = slurp(make("t.jpg", 20, 20));
  auto p = write("cut.jpg", full.substr(0, 6));
  auto r = read_both(p);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("corrupt jpeg"), std::string::npos);
}

TEST(Sniff, MagicBytesNotNames) {
  EXPECT_EQ(crawler::sniff_format("\xFF\xD8\xFF\xE0"), "jpeg");
  EXPECT_EQ(crawler::sniff_format("GIF89a...."), "gif");
  EXPECT_EQ(crawler::sniff_format("<svg width='1'></svg>"), "svg");
  EXPECT_FALSE(crawler::sniff_format("<html><svg></svg></html>"));
  EXPECT_FALSE(crawler::sniff_format(std::string("PK\3\4rest", 8)));
  EXPECT_EQ(crawler::describe_bytes(std::string("PK\3\4rest", 8)), "a ZIP archive");
}

TEST(Sniff, OnlyTheFirst4KiBCount) {
  // An ftyp box that declares itself 4 GiB long: brands past the first 4 KiB
  // (all the crawler keeps of a download) must not name the format.
  std::string box("\xFF\xFF\xFF\xF0" "ftyp" "isom" "\0\0\0\0", 16);
  std::string early = box + "avif" + std::string(4096, 'x');
  std::string late = box + std::string(4096, 'x') + "avif";
  EXPECT_EQ(crawler::sniff_format(early), "avif");
  EXPECT_FALSE(crawler::sniff_format(late));
  EXPECT_EQ(crawler::sniff_format(late), crawler::sniff_format(late.substr(0, 4096)));
}
