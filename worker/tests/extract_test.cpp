#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>
#include <fstream>
#include <sstream>

#include "crawler/extract.hpp"

using crawler::extract_html;

namespace {
std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(FIXTURE_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

TEST(Extract, EveryConstructOfTheFixturePage) {
  auto links = extract_html(read_fixture("every-construct.html"), "http://page.test/dir/index.html");
  const std::string b = "http://cdn.test/base/";
  std::vector<std::string> expected = {
      "http://cdn.test/og.jpg", "https://t.test/tw.png", b + "favicon.ico", b + "touch.png",
      b + "hero.webp", b + "hero-1x.webp", b + "hero-2x.webp", b + "style-block.png",
      b + "set-1x.avif", b + "set-2x.avif", b + "wk.png", b + "body-bg.gif", b + "plain.png",
      b + "spaced.png", b + "s-480.jpg", b + "s-800.jpg", b + "s-1200.jpg", b + "x1.png",
      b + "x2.png", b + "lazy.jpg", b + "orig.jpg", b + "lazy-1.jpg", b + "lazy-2.jpg",
      b + "pic.avif", b + "pic.webp", b + "pic@2x.webp", b + "pic.jpg", b + "noscript.jpg",
      b + "poster.jpg", b + "button.png", b + "svg-href.png", b + "svg-xlink.png",
      b + "gallery/full.JPG", b + "photo.jpg?size=large&v=2", b + "div-bg.png",
      "http://cdn.test/abs/entity.png"};
  std::vector<std::string> got = links.images;
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);
}

TEST(Extract, TextThatLooksLikeMarkupIsNotAnImage) {
  auto links = extract_html(read_fixture("every-construct.html"), "http://page.test/");
  for (const char* name : {"in-code.png", "in-pre.png", "from-script.png", "in-textarea.png",
                           "in-comment.png", "commented-out.png", "font.woff2",
                           "not-an-image.jpg", "x.png", "app.js"}) {
    for (const auto& u : links.images) EXPECT_EQ(u.find(name), std::string::npos) << u;
  }
}

TEST(Extract, PagesFramesAndStylesheetsAreFollowed) {
  auto links = extract_html(read_fixture("every-construct.html"), "http://page.test/");
  const std::string b = "http://cdn.test/base/";
  EXPECT_TRUE(has(links.pages, b + "next.html"));
  EXPECT_TRUE(has(links.pages, b + "page.html"));
  EXPECT_TRUE(has(links.pages, b + "frame.html"));
  EXPECT_TRUE(has(links.pages, b + "site.css"));
  EXPECT_FALSE(has(links.pages, b + "gallery/full.JPG"));
  for (const auto& p : links.pages) {
    EXPECT_EQ(p.find("javascript"), std::string::npos);
    EXPECT_EQ(p.find("mailto"), std::string::npos);
  }
}

TEST(Extract, DuplicatesAreReportedOnce) {
  auto links = extract_html("<img src=a.png><img src='a.png#x'><img src=./a.png>", "http://h.test/");
  EXPECT_EQ(links.images, std::vector<std::string>{"http://h.test/a.png"});
}

TEST(Extract, WithoutBaseThePageUrlResolves) {
  auto links = extract_html("<img src=x/y.png>", "http://h.test/dir/p.html");
  EXPECT_EQ(links.images, std::vector<std::string>{"http://h.test/dir/x/y.png"});
}

TEST(Extract, NoscriptParsedAsTextIsParsedAgain) {
  auto links = extract_html("<noscript>&lt;b&gt;<img src=\"ns.png\"></noscript>", "http://h.test/");
  EXPECT_TRUE(has(links.images, "http://h.test/ns.png"));
}

TEST(Extract, UpperCaseTagsAndAttributes) {
  auto links = extract_html("<IMG SRC=\"UP.PNG\"><VIDEO POSTER=p.jpg></VIDEO>", "http://h.test/");
  EXPECT_TRUE(has(links.images, "http://h.test/UP.PNG"));
  EXPECT_TRUE(has(links.images, "http://h.test/p.jpg"));
}

TEST(Entities, NamedNumericAndHex) {
  EXPECT_EQ(crawler::decode_entities("a&amp;b&lt;&#65;&#x42;&quot;"), "a&b<AB\"");
  EXPECT_EQ(crawler::decode_entities("?a=1&copy=2"), "?a=1&copy=2");
  EXPECT_EQ(crawler::decode_entities("&unknown; & &amp"), "&unknown; & &");
}

TEST(Srcset, CandidatesWithDescriptorsAndCommasInUrls) {
  using V = std::vector<std::string>;
  EXPECT_EQ(crawler::parse_srcset("a.png 1x, b.png 2x"), (V{"a.png", "b.png"}));
  // Without whitespace a comma belongs to the URL (HTML's srcset algorithm).
  EXPECT_EQ(crawler::parse_srcset("a.png,b.png"), (V{"a.png,b.png"}));
  EXPECT_EQ(crawler::parse_srcset("a.png, b.png"), (V{"a.png", "b.png"}));
  EXPECT_EQ(crawler::parse_srcset(" a,b.png 100w , c.png"), (V{"a,b.png", "c.png"}));
  EXPECT_EQ(crawler::parse_srcset("a.png (max-width: 1px, 2px) 1x, d.png"), (V{"a.png", "d.png"}));
}

TEST(Css, UrlAndImageSetButNotImportsOrFonts) {
  auto refs = crawler::css_image_refs(
      "@import 'x.css'; @font-face{src:url(f.woff)} a{background:url(a.png)}"
      " b{content:'url(no.png)'; background:image-set('c.png' 1x, url(\"d.png\") 2x)}"
      " e{background:URL(e\\.png)}");
  EXPECT_EQ(refs, (std::vector<std::string>{"a.png", "c.png", "d.png", "e.png"}));
}

TEST(Css, ResolvedAgainstTheStylesheet) {
  auto urls = crawler::extract_css(".x{background:url(../i/bg.png)}", "http://h.test/css/s.css");
  EXPECT_EQ(urls, std::vector<std::string>{"http://h.test/i/bg.png"});
}

TEST(GalleryLinks, ImageExtensionsOnly) {
  EXPECT_TRUE(crawler::looks_like_image_path("a/b.JPEG?x=1"));
  EXPECT_TRUE(crawler::looks_like_image_path("b.svg#f"));
  EXPECT_FALSE(crawler::looks_like_image_path("a.png/page"));
  EXPECT_FALSE(crawler::looks_like_image_path("a.html"));
}

namespace {
const char* kRobotsPage = R"(<html><head><base href="http://b.test/">%META%</head><body>
<a href="/next.html">next</a> <a rel="nofollow external" href="/sponsored.html">ad</a>
<a href="/big.jpg">gallery</a> <img src="/pic.png"> <link rel="stylesheet" href="/s.css">
<iframe src="/frame.html"></iframe></body></html>)";
std::string robots_page(const std::string& meta) {
  std::string p = kRobotsPage;
  return p.replace(p.find("%META%"), 6, meta);
}
}  // namespace

TEST(Extract, RelNofollowLinksAreNotFollowed) {
  auto l = extract_html(robots_page(""), "http://p.test/", {}, "crawler_ha");
  EXPECT_TRUE(has(l.pages, "http://b.test/next.html"));
  EXPECT_FALSE(has(l.pages, "http://b.test/sponsored.html"));
  EXPECT_TRUE(has(l.images, "http://b.test/big.jpg"));
  EXPECT_TRUE(has(l.images, "http://b.test/pic.png"));
  // without robots, every link is taken
  EXPECT_TRUE(has(extract_html(robots_page(""), "http://p.test/").pages, "http://b.test/sponsored.html"));
}

TEST(Extract, MetaRobotsNofollowKeepsImagesStylesheetsAndFrames) {
  auto l = extract_html(robots_page(R"(<meta name="Robots" content="noindex, NOFOLLOW">)"), "http://p.test/", {},
                        "crawler_ha");
  EXPECT_FALSE(has(l.pages, "http://b.test/next.html"));
  EXPECT_TRUE(has(l.pages, "http://b.test/s.css"));
  EXPECT_TRUE(has(l.pages, "http://b.test/frame.html"));
  EXPECT_TRUE(has(l.images, "http://b.test/pic.png"));
  EXPECT_TRUE(has(l.images, "http://b.test/big.jpg"));
}

TEST(Extract, MetaNoimageindexAndAgentSpecificTags) {
  auto l = extract_html(robots_page(R"(<meta name="robots" content="noimageindex">)"), "http://p.test/", {},
                        "crawler_ha");
  EXPECT_TRUE(l.images.empty());
  EXPECT_TRUE(has(l.pages, "http://b.test/next.html"));
  // a tag for another crawler does not apply; one for ours does
  EXPECT_TRUE(has(extract_html(robots_page(R"(<meta name="otherbot" content="none">)"), "http://p.test/", {},
                               "crawler_ha").pages,
                  "http://b.test/next.html"));
  EXPECT_FALSE(has(extract_html(robots_page(R"(<meta name="crawler_ha" content="none">)"), "http://p.test/", {},
                                "crawler_ha").pages,
                   "http://b.test/next.html"));
  // the header's directives (given) hold as well
  crawler::RobotsDirectives header;
  header.add("noimageindex", "crawler_ha");
  EXPECT_TRUE(extract_html(robots_page(""), "http://p.test/", header, "crawler_ha").images.empty());
  // a meta shown as text is not a directive
  EXPECT_TRUE(has(extract_html(robots_page(R"(<textarea><meta name="robots" content="none"></textarea>)"),
                               "http://p.test/", {}, "crawler_ha").pages,
                  "http://b.test/next.html"));
}

TEST(Extract, MetaNoaiAndNoimageaiDropTheImagesNotTheLinks) {
  for (const char* meta : {R"(<meta name="robots" content="noai">)", R"(<meta name="robots" content="noimageai">)",
                           R"(<meta name="crawler_ha" content="noai, noimageai">)"}) {
    auto l = extract_html(robots_page(meta), "http://p.test/", {}, "crawler_ha");
    EXPECT_TRUE(l.images.empty()) << meta;
    EXPECT_TRUE(has(l.pages, "http://b.test/next.html")) << meta;
  }
  // another crawler's noai is not ours
  EXPECT_FALSE(extract_html(robots_page(R"(<meta name="otherbot" content="noai">)"), "http://p.test/", {},
                            "crawler_ha")
                   .images.empty());
  // from the header as well
  crawler::RobotsDirectives header;
  header.add("noai", "crawler_ha");
  EXPECT_TRUE(extract_html(robots_page(""), "http://p.test/", header, "crawler_ha").images.empty());
}

TEST(Entities, EveryNamedReferenceOfTheHtmlStandard) {
  EXPECT_EQ(crawler::decode_entities("caf&eacute;.png"), "caf\xC3\xA9.png");
  EXPECT_EQ(crawler::decode_entities("caf&eacute.png"), "caf\xC3\xA9.png");  // a legacy name
  EXPECT_EQ(crawler::decode_entities("&hellip;&rarr;&NotNestedGreaterGreater;"),
            "\xE2\x80\xA6\xE2\x86\x92\xE2\xAA\xA2\xCC\xB8");  // the last is two code points
  EXPECT_EQ(crawler::decode_entities("&hellip"), "&hellip");   // not legacy: needs its semicolon
  EXPECT_EQ(crawler::decode_entities("&Eacute;&eacute;"), "\xC3\x89\xC3\xA9");  // names are case-sensitive
}

TEST(Extract, APageOfUnclosedElementsIsParsedWhateverItsDepth) {
  // <ul> then <li><a> 140,000 times, never closed: valid HTML that a tree
  // parser builds 140,000 deep (its destruction overflowed the stack and
  // killed the worker).  Read in one pass, it is an ordinary page whose
  // links beyond kMaxLinksPerPage are counted, not taken.
  std::string page = "<html><body><ul>";
  for (int i = 0; i < 140000; ++i)
    page += "<li><a href=\"/p" + std::to_string(i) + "\">x</a><img src=\"/i" + std::to_string(i % 50) + ".png\">";
  auto links = crawler::extract_html(page, "http://a.test/");
  EXPECT_TRUE(links.refused.empty());
  ASSERT_EQ(links.pages.size(), crawler::kMaxLinksPerPage);
  EXPECT_EQ(links.pages.front(), "http://a.test/p0");
  EXPECT_EQ(links.pages.back(), "http://a.test/p" + std::to_string(crawler::kMaxLinksPerPage - 1));
  EXPECT_EQ(links.images.size(), 50u);
  EXPECT_EQ(links.dropped, 140000 - crawler::kMaxLinksPerPage);
}

TEST(Extract, MisnestedAndUnclosedMarkupLosesNothingAroundIt) {
  std::string page = "<div>";
  for (int i = 0; i < 1000; ++i) page += "<b><i>x</b></i><br><img src=\"/g" + std::to_string(i) + ".jpg\">";
  page += "</div><p><a href=\"/after\">after</a>";
  auto links = crawler::extract_html(page, "http://a.test/");
  EXPECT_EQ(links.images.size(), 1000u);
  EXPECT_TRUE(has(links.pages, "http://a.test/after"));
  // a tag that never ends, a comment that never ends: what came before stays
  auto cut = crawler::extract_html("<img src=/a.png><img src=\"/b.png", "http://a.test/");
  EXPECT_TRUE(has(cut.images, "http://a.test/a.png"));
  auto comment = crawler::extract_html("<img src=/a.png><!-- <img src=/c.png>", "http://a.test/");
  EXPECT_EQ(comment.images, std::vector<std::string>{"http://a.test/a.png"});
}

TEST(Extract, InertContentGivesNothingAndEndsWhereItsElementEnds) {
  auto links = crawler::extract_html(
      "<title>t <img src=/title.png></title>"
      "<template><img src=/t1.png><template><img src=/t2.png></template><img src=/t3.png></template>"
      "<script>document.write('<img src=/s.png>')</script>"
      "<textarea><img src=/ta.png></textarea>"
      "<img src=/real.png>",
      "http://a.test/");
  EXPECT_EQ(links.images, std::vector<std::string>{"http://a.test/real.png"});
}

TEST(Extract, BaseAndRobotsMetaHoldForTheWholePageWhereverTheyStand) {
  auto links = crawler::extract_html(
      "<body><img src=a.png><a href=next.html>n</a>"
      "<base href=\"http://cdn.test/x/\"><base href=\"http://other.test/\">"
      "<meta name=robots content=nofollow></body>",
      "http://a.test/", crawler::RobotsDirectives{}, "crawler_ha");
  EXPECT_EQ(links.images, std::vector<std::string>{"http://cdn.test/x/a.png"});
  EXPECT_TRUE(links.pages.empty());
}

TEST(Extract, PictureSourcesOnlyInsideAPicture) {
  auto links = crawler::extract_html(
      "<picture><source data-src=in.jpg><img src=fallback.jpg></picture><source data-src=out.mp4>",
      "http://a.test/");
  EXPECT_EQ(links.images, (std::vector<std::string>{"http://a.test/in.jpg", "http://a.test/fallback.jpg"}));
}

TEST(Extract, StyleAttributesOnAnyTagAndStyleElements) {
  auto links = crawler::extract_html(
      "<section STYLE=\"background:url(s.png)\"></section><style>p{background:url(e.png)}</style>"
      "<span data-x=\"style\">no</span>",
      "http://a.test/");
  EXPECT_EQ(links.images, (std::vector<std::string>{"http://a.test/s.png", "http://a.test/e.png"}));
}

TEST(Extract, AttributesAreReadAsTheHtmlTokenizerReadsThem) {
  auto links = crawler::extract_html(
      "<img/src=a.png>"                                // '/' separates like a space
      "<IMG SRC='b.png' src=c.png>"                     // the first of a repeated name counts
      "<img alt=\"x > y\" src = \"d.png\" >"            // '>' inside quotes; spaces around '='
      "<svg><image xlink:href=\"e.png\"/></svg>"        // a name with ':'
      "<img data-x=1 src=f&amp;g.png>"                  // entities decoded in the value asked for
      "<img src=\"unterminated.png",                     // a quote that never closes
      "http://a.test/");
  EXPECT_EQ(links.images, (std::vector<std::string>{"http://a.test/a.png", "http://a.test/b.png",
                                                    "http://a.test/d.png", "http://a.test/e.png",
                                                    "http://a.test/f&g.png", "http://a.test/unterminated.png"}));
}
