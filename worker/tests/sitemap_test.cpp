#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "crawler/robots.hpp"
#include "crawler/sitemap.hpp"

using namespace crawler;

namespace {

// `s` gzipped, as a .xml.gz file holds it.
std::string gzip(const std::string& s) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, s.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const char* kUrlset = R"(<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc> http://a.test/one.html </loc>
    <lastmod>2024-01-01</lastmod>
    <image:image><image:loc>http://a.test/img/1.png</image:loc></image:image>
    <image:image>
      <image:loc><![CDATA[http://cdn.test/2.jpg]]></image:loc>
      <image:caption>not a URL</image:caption>
    </image:image>
  </url>
  <url>
    <image:image><image:loc>http://a.test/img/3.png</image:loc></image:image>
    <loc>http://a.test/two.html?a=1&amp;b=2</loc>
  </url>
  <url><loc>mailto:someone@a.test</loc></url>
  <url><loc/></url>
  <url><loc>http://a.test/one.html</loc></url>
</urlset>
)";

}  // namespace

TEST(Sitemap, UrlsetGivesPagesAndTheirImages) {
  SitemapEntries e = parse_sitemap(kUrlset);
  ASSERT_EQ(e.error, "");
  EXPECT_FALSE(e.index);
  EXPECT_EQ(e.pages, (std::vector<std::string>{"http://a.test/one.html", "http://a.test/two.html?a=1&b=2"}));
  ASSERT_EQ(e.images.size(), 3u);
  EXPECT_EQ(e.images[0].url, "http://a.test/img/1.png");
  EXPECT_EQ(e.images[0].page, "http://a.test/one.html");
  EXPECT_EQ(e.images[1].url, "http://cdn.test/2.jpg");
  // a <loc> after the images: they are still that page's
  EXPECT_EQ(e.images[2].page, "http://a.test/two.html?a=1&b=2");
  EXPECT_EQ(e.skipped, 2u);  // mailto:, and the empty <loc/>
  EXPECT_TRUE(e.sitemaps.empty());
  EXPECT_EQ(e.cut, "");
}

TEST(Sitemap, ImageLocOutsideTheImageNamespaceIsNotAnImage) {
  SitemapEntries e = parse_sitemap(R"(<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
      xmlns:i="http://example.test/other"><url><loc>http://a.test/</loc>
      <i:image><i:loc>http://a.test/x.png</i:loc></i:image></url></urlset>)");
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages, (std::vector<std::string>{"http://a.test/"}));
  EXPECT_TRUE(e.images.empty());
}

TEST(Sitemap, IndexGivesSitemapsOnly) {
  SitemapEntries e = parse_sitemap(R"(<?xml version="1.0"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>http://a.test/s1.xml</loc><lastmod>2024-01-01</lastmod></sitemap>
  <sitemap><loc>http://a.test/s2.xml.gz</loc></sitemap>
  <sitemap><loc>http://a.test/s1.xml</loc></sitemap>
  <url><loc>http://a.test/not-here.html</loc></url>
</sitemapindex>)");
  ASSERT_EQ(e.error, "");
  EXPECT_TRUE(e.index);
  EXPECT_EQ(e.sitemaps, (std::vector<std::string>{"http://a.test/s1.xml", "http://a.test/s2.xml.gz"}));
  EXPECT_TRUE(e.pages.empty());
}

TEST(Sitemap, NoNamespaceIsStillASitemap) {
  SitemapEntries e = parse_sitemap("<urlset><url><loc>http://a.test/p</loc></url></urlset>");
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages, (std::vector<std::string>{"http://a.test/p"}));
}

TEST(Sitemap, GzipIsReadWhateverTheCallerKnows) {
  SitemapEntries e = parse_sitemap(gzip(kUrlset));
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages.size(), 2u);
  EXPECT_EQ(e.images.size(), 3u);
  SitemapEntries text = parse_sitemap(gzip("http://a.test/a\nhttp://a.test/b\n"));
  EXPECT_EQ(text.pages, (std::vector<std::string>{"http://a.test/a", "http://a.test/b"}));
}

TEST(Sitemap, PlainTextIsOneUrlALine) {
  SitemapEntries e = parse_sitemap("\xEF\xBB\xBFhttp://a.test/a\r\n\r\n  https://a.test/b  \nnot a url\nhttp://a.test/a\n");
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages, (std::vector<std::string>{"http://a.test/a", "https://a.test/b"}));
  EXPECT_EQ(e.skipped, 1u);
}

TEST(Sitemap, WhatIsNoSitemapIsAnError) {
  EXPECT_NE(parse_sitemap("").error, "");
  EXPECT_NE(parse_sitemap("   \n").error, "");
  EXPECT_NE(parse_sitemap("hello world\nhttp://a.test/\n").error, "");
  EXPECT_NE(parse_sitemap(std::string("\x89PNG\r\n\x1a\n\0\0\0", 11)).error, "");
  SitemapEntries html = parse_sitemap("<html><body><a href='http://a.test/'>x</a></body></html>");
  EXPECT_EQ(html.error, "not a sitemap: the root element is <html>");
  EXPECT_TRUE(html.pages.empty());
  EXPECT_NE(parse_sitemap("<rss><channel/></rss>").error, "");
}

TEST(Sitemap, TruncatedXmlIsAnErrorAndGivesNothing) {
  std::string body(kUrlset);
  body.resize(body.size() / 2);
  SitemapEntries e = parse_sitemap(body);
  EXPECT_NE(e.error.find("not well-formed XML"), std::string::npos) << e.error;
  EXPECT_TRUE(e.pages.empty());
  EXPECT_TRUE(e.images.empty());
  // a truncated gzip stream too
  std::string gz = gzip(kUrlset);
  EXPECT_NE(parse_sitemap(gz.substr(0, gz.size() / 2)).error, "");
  EXPECT_NE(parse_sitemap(std::string("\x1f\x8b\x08\x00garbage", 11)).error, "");
}

TEST(Sitemap, AnErrorAfterEntriesKeepsNoneOfThem) {
  // entries, skipped ones (mailto, <loc/>) and a known root, then a broken
  // end tag or an entity: not a sitemap, so nothing of it counts. The
  // error comes after 8 KB of entries, past the chunks libxml2's reader
  // parses before it hands out the first node.
  std::string many;
  for (int i = 0; i < 300; ++i) many += "<url><loc>http://a.test/p" + std::to_string(i) + "</loc></url>\n";
  std::string broken(kUrlset);
  broken.replace(broken.rfind("</urlset>"), 9, many + "</urlse)>");
  std::string entity(kUrlset);
  entity.replace(entity.rfind("</urlset>"), 9, many + "<url><loc>&amp;&nope;</loc></url></urlset>");
  std::string index = "<sitemapindex>";
  for (int i = 0; i < 300; ++i) index += "<sitemap><loc>http://a.test/s" + std::to_string(i) + ".xml</loc></sitemap>";
  index += "<sitemap><loc>x</loc></sitemap><sitemap></sitemapindex>";
  for (const std::string& body : {broken, entity, index}) {
    SitemapEntries e = parse_sitemap(body);
    EXPECT_NE(e.error, "") << body.substr(0, 80);
    EXPECT_FALSE(e.index);
    EXPECT_TRUE(e.pages.empty());
    EXPECT_TRUE(e.images.empty());
    EXPECT_TRUE(e.sitemaps.empty());
    EXPECT_EQ(e.skipped, 0u);
    EXPECT_EQ(e.cut, "");
  }
}

TEST(Sitemap, ABodyCutByTheTransferKeepsWhatCameBefore) {
  std::string body(kUrlset);
  body.resize(body.find("<url><loc>mailto"));
  SitemapEntries e = parse_sitemap(body, /*truncated=*/true);
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages.size(), 2u);
  EXPECT_NE(e.cut, "");
  // a text sitemap's last, partial line is not taken
  SitemapEntries text = parse_sitemap("http://a.test/a\nhttp://a.test/bcd", true);
  EXPECT_EQ(text.pages, (std::vector<std::string>{"http://a.test/a"}));
}

TEST(Sitemap, NotUtf8IsAnError) {
  SitemapEntries e = parse_sitemap("<urlset><url><loc>http://a.test/\xff\xfe</loc></url></urlset>");
  EXPECT_NE(e.error, "");
  // ... unless the file says its encoding: then it is read as that
  SitemapEntries latin = parse_sitemap(
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><urlset><url><loc>http://a.test/caf\xe9</loc></url></urlset>");
  ASSERT_EQ(latin.error, "");
  EXPECT_EQ(latin.pages, (std::vector<std::string>{"http://a.test/caf%C3%A9"}));
}

TEST(Sitemap, EntitiesAndDtdsAreRefused) {
  // a billion laughs: refused at its DOCTYPE, nothing expanded
  std::string laughs = "<?xml version=\"1.0\"?><!DOCTYPE urlset [<!ENTITY a \"ha\">";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string tens;
    for (int k = 0; k < 10; ++k) tens += std::string("&") + static_cast<char>(c - 1) + ";";
    laughs += std::string("<!ENTITY ") + c + " \"" + tens + "\">";
  }
  laughs += "]><urlset><url><loc>http://a.test/&j;</loc></url></urlset>";
  SitemapEntries e = parse_sitemap(laughs);
  EXPECT_NE(e.error, "");
  EXPECT_TRUE(e.pages.empty());
  // an external entity (XXE) and an external DTD: never fetched, refused
  SitemapEntries xxe = parse_sitemap(
      "<?xml version=\"1.0\"?><!DOCTYPE urlset [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<urlset><url><loc>http://a.test/&x;</loc></url></urlset>");
  EXPECT_NE(xxe.error, "");
  EXPECT_TRUE(xxe.pages.empty());
  SitemapEntries dtd = parse_sitemap(
      "<?xml version=\"1.0\"?><!DOCTYPE urlset SYSTEM \"http://127.0.0.1:9/x.dtd\">"
      "<urlset><url><loc>http://a.test/</loc></url></urlset>");
  EXPECT_NE(dtd.error, "");
  // an undeclared entity is an XML error
  EXPECT_NE(parse_sitemap("<urlset><url><loc>http://a.test/&nope;</loc></url></urlset>").error, "");
}

TEST(Sitemap, MoreUrlsThanTheLimitAreCutOff) {
  SitemapLimits limits;
  limits.max_urls = 100;
  std::string xml = "<urlset>";
  for (int i = 0; i < 150; ++i) xml += "<url><loc>http://a.test/p" + std::to_string(i) + "</loc></url>";
  xml += "</urlset>";
  SitemapEntries e = parse_sitemap(xml, false, limits);
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages.size(), 100u);
  EXPECT_NE(e.cut.find("more than 100 URLs"), std::string::npos);
  // exactly the limit is no cut
  limits.max_urls = 150;
  EXPECT_EQ(parse_sitemap(xml, false, limits).cut, "");
  // images listed with one page are bounded too
  std::string many = "<urlset xmlns:image=\"http://www.google.com/schemas/sitemap-image/1.1\"><url><loc>http://a.test/</loc>";
  for (int i = 0; i < 1500; ++i)
    many += "<image:image><image:loc>http://a.test/" + std::to_string(i) + ".png</image:loc></image:image>";
  many += "</url></urlset>";
  EXPECT_EQ(parse_sitemap(many).images.size(), 1000u);
}

TEST(Sitemap, AGzipBombInflatesNoFurtherThanTheLimit) {
  SitemapLimits limits;
  limits.max_bytes = 1 << 20;
  // 16 MB of one URL line over and over: a few kB gzipped
  std::string line = "http://a.test/bomb\n";
  std::string big;
  big.reserve(16u << 20);
  while (big.size() < (16u << 20)) big += line;
  std::string bomb = gzip(big);
  big.clear();
  big.shrink_to_fit();
  ASSERT_LT(bomb.size(), 100u << 10);
  std::string out;
  EXPECT_EQ(gunzip(bomb, limits.max_bytes, out), "cut");
  EXPECT_LE(out.size(), limits.max_bytes);
  limits.max_urls = 1000000;  // the byte limit, not the URL limit, is what this one meets
  SitemapEntries e = parse_sitemap(bomb, false, limits);
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.pages, (std::vector<std::string>{"http://a.test/bomb"}));
  EXPECT_NE(e.cut.find("uncompressed"), std::string::npos) << e.cut;
  // an XML bomb: cut inside an element, what came before is kept
  std::string xml = "<urlset>";
  while (xml.size() < (4u << 20)) xml += "<url><loc>http://a.test/x</loc></url>";
  SitemapEntries x = parse_sitemap(gzip(xml + "</urlset>"), false, limits);
  ASSERT_EQ(x.error, "");
  EXPECT_EQ(x.pages.size(), 1u);
  EXPECT_NE(x.cut, "");
}

TEST(Sitemap, ALargePlainBodyIsCutAtTheLimit) {
  SitemapLimits limits;
  limits.max_bytes = 1000;
  std::string text;
  for (int i = 0; text.size() < 5000; ++i) text += "http://a.test/" + std::to_string(i) + "\n";
  SitemapEntries e = parse_sitemap(text, false, limits);
  ASSERT_EQ(e.error, "");
  EXPECT_NE(e.cut, "");
  EXPECT_LT(e.pages.size(), 100u);
  for (const auto& p : e.pages) EXPECT_EQ(p.rfind("http://a.test/", 0), 0u);
}

TEST(Sitemap, DeepNestingIsAnErrorNotACrash) {
  std::string xml = "<urlset>";
  for (int i = 0; i < 100000; ++i) xml += "<a>";
  SitemapEntries e = parse_sitemap(xml);
  EXPECT_NE(e.error, "");
}

TEST(RobotsSitemaps, SitemapLinesOfAnyGroupInOrder) {
  auto urls = robots_sitemaps(
      "Sitemap: http://a.test/index.xml\n"
      "User-agent: *\nDisallow: /private\n"
      "sitemap:https://a.test/s.xml.gz   # the gzipped one\n"
      "SITEMAP: /relative.xml\n"
      "Sitemap: http://a.test/index.xml\n"
      "Sitemap: ftp://a.test/x.xml\n");
  EXPECT_EQ(urls, (std::vector<std::string>{"http://a.test/index.xml", "https://a.test/s.xml.gz"}));
  // and they take nothing from the rules
  Robots r = Robots::parse("User-agent: *\nSitemap: http://a.test/s.xml\nDisallow: /private\n", "bot");
  EXPECT_FALSE(r.allowed("/private/x"));
  EXPECT_TRUE(r.allowed("/public"));
}

TEST(RobotsSitemaps, AtMostTheLimit) {
  std::string text;
  for (std::size_t i = 0; i < kMaxRobotsSitemaps + 50; ++i)
    text += "Sitemap: http://a.test/s" + std::to_string(i) + ".xml\n";
  EXPECT_EQ(robots_sitemaps(text).size(), kMaxRobotsSitemaps);
}
