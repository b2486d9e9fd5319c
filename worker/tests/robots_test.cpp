#include <gtest/gtest.h>

#include "crawler/robots.hpp"

using crawler::Robots;

TEST(Robots, EmptyFileAllowsEverything) {
  auto r = Robots::parse("", "crawler_ha");
  EXPECT_TRUE(r.allowed("/anything"));
  EXPECT_FALSE(r.crawl_delay());
}

TEST(Robots, StarGroupAppliesWithoutASpecificOne) {
  auto r = Robots::parse("User-agent: *\nDisallow: /private/\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/private/x.png"));
  EXPECT_TRUE(r.allowed("/public/x.png"));
}

TEST(Robots, SpecificGroupReplacesTheStarGroup) {
  auto r = Robots::parse(
      "User-agent: *\nDisallow: /\n\nUser-agent: Crawler_HA\nDisallow: /no/\n", "crawler_ha");
  EXPECT_TRUE(r.allowed("/yes"));
  EXPECT_FALSE(r.allowed("/no/x"));
}

TEST(Robots, ConsecutiveUserAgentLinesShareAGroup) {
  auto r = Robots::parse("User-agent: other\nUser-agent: crawler_ha\nDisallow: /x\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/x"));
}

TEST(Robots, LongestMatchWinsAndAllowWinsATie) {
  auto r = Robots::parse(
      "User-agent: *\nDisallow: /a/\nAllow: /a/b/\nDisallow: /a/b/c\nAllow: /t\nDisallow: /t\n",
      "crawler_ha");
  EXPECT_FALSE(r.allowed("/a/x"));
  EXPECT_TRUE(r.allowed("/a/b/x"));
  EXPECT_FALSE(r.allowed("/a/b/cat"));
  EXPECT_TRUE(r.allowed("/t"));
}

TEST(Robots, WildcardsAndEndAnchor) {
  auto r = Robots::parse("User-agent: *\nDisallow: /*.gif$\nDisallow: /tmp*/x\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/img/a.gif"));
  EXPECT_TRUE(r.allowed("/img/a.gif?v=1"));
  EXPECT_FALSE(r.allowed("/tmp123/x/y"));
  EXPECT_TRUE(r.allowed("/tmp/y"));
}

TEST(Robots, EmptyDisallowAllowsAll) {
  auto r = Robots::parse("User-agent: *\nDisallow:\n", "crawler_ha");
  EXPECT_TRUE(r.allowed("/x"));
}

TEST(Robots, CrawlDelayAndCommentsAndCrLf) {
  auto r = Robots::parse("# hi\r\nUser-agent: *   # all\r\nCrawl-delay: 2.5\r\nDisallow: /c # x\r\n",
                         "crawler_ha");
  ASSERT_TRUE(r.crawl_delay());
  EXPECT_DOUBLE_EQ(*r.crawl_delay(), 2.5);
  EXPECT_FALSE(r.allowed("/c/d"));
}

TEST(Robots, RobotsTxtItselfIsAlwaysAllowed) {
  EXPECT_TRUE(Robots::disallow_all().allowed("/robots.txt"));
  EXPECT_FALSE(Robots::disallow_all().allowed("/"));
}

TEST(Robots, PercentEscapesCompareCaseInsensitively) {
  auto r = Robots::parse("User-agent: *\nDisallow: /a%2fb\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/a%2Fb"));
}

TEST(Robots, AgentTokenIsTheProductName) {
  EXPECT_EQ(crawler::agent_token("crawler_ha/0.1 (+https://x.test)"), "crawler_ha");
}

TEST(RobotsDirectives, XRobotsTagValues) {
  auto of = [](std::initializer_list<const char*> values) {
    crawler::RobotsDirectives d;
    for (const char* v : values) d.add(v, "crawler_ha");
    return std::make_pair(d.nofollow, d.noimageindex);
  };
  EXPECT_EQ(of({"noindex, nofollow"}), std::make_pair(true, false));
  EXPECT_EQ(of({"NoImageIndex"}), std::make_pair(false, true));
  EXPECT_EQ(of({"none"}), std::make_pair(true, false));
  EXPECT_EQ(of({"otherbot: nofollow, noimageindex"}), std::make_pair(false, false));
  EXPECT_EQ(of({"Crawler_HA: nofollow", "noarchive"}), std::make_pair(true, false));
  EXPECT_EQ(of({"unavailable_after: 2030-01-01", "noimageindex"}), std::make_pair(false, true));
  EXPECT_EQ(of({"", " , ,"}), std::make_pair(false, false));
}

TEST(RobotsDirectives, NoaiAndNoimageaiKeepImagesOut) {
  auto of = [](std::initializer_list<const char*> values) {
    crawler::RobotsDirectives d;
    for (const char* v : values) d.add(v, "crawler_ha");
    return d;
  };
  EXPECT_FALSE(of({"noai"}).page_images_allowed());
  EXPECT_FALSE(of({"NoImageAI"}).page_images_allowed());
  EXPECT_FALSE(of({"noai"}).image_allowed());
  EXPECT_EQ(of({"noai"}).image_refusal(), "noimageai");
  EXPECT_EQ(of({"noimageai"}).image_refusal(), "noimageai");
  // noindex refuses an image's own response, not a page's images
  EXPECT_TRUE(of({"noindex"}).page_images_allowed());
  EXPECT_FALSE(of({"noindex"}).image_allowed());
  EXPECT_EQ(of({"none"}).image_refusal(), "noindex");
  EXPECT_EQ(of({"noimageindex"}).image_refusal(), "noimageindex");
  EXPECT_TRUE(of({"noarchive, nosnippet"}).image_allowed());
  EXPECT_EQ(of({"noarchive"}).image_refusal(), "");
  // another agent's directives are not ours; ours after its prefix are
  EXPECT_TRUE(of({"otherbot: noai"}).image_allowed());
  EXPECT_FALSE(of({"otherbot: noindex, crawler_ha: noimageai"}).image_allowed());
  // near misses are not directives
  EXPECT_TRUE(of({"noaix, no-ai, noimage ai"}).image_allowed());
}

TEST(Robots, ByteOrderMarkBeforeTheFirstLineIsIgnored) {
  auto r = Robots::parse("\xEF\xBB\xBFUser-agent: *\nDisallow: /private\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/private/x"));
  EXPECT_TRUE(r.allowed("/public"));
}

TEST(Robots, UserAgentLineWithAVersionNamesTheProduct) {
  auto r = Robots::parse("User-agent: *\nDisallow:\n\nUser-agent: Crawler_HA/1.0\nDisallow: /no\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/no/thing"));
}

TEST(Robots, NonAsciiRulesMatchTheirPercentEncodedPaths) {
  auto r = Robots::parse("User-agent: *\nDisallow: /\xC3\xBC\n", "crawler_ha");
  EXPECT_FALSE(r.allowed("/%C3%BC/page"));
  EXPECT_FALSE(r.allowed("/%c3%bc"));
  EXPECT_TRUE(r.allowed("/u"));
  auto e = Robots::parse("User-agent: *\nDisallow: /%C3%BC\n", "crawler_ha");
  EXPECT_FALSE(e.allowed("/\xC3\xBC"));
}

TEST(Robots, OnlyTheFirst500KiBAreRead) {
  std::string text = "User-agent: *\n";
  while (text.size() < 500 * 1024) text += "# filler line to push the next rule past the limit\n";
  text += "Disallow: /late\n";
  EXPECT_TRUE(Robots::parse(text, "crawler_ha").allowed("/late"));
  EXPECT_FALSE(Robots::parse("User-agent: *\nDisallow: /late\n", "crawler_ha").allowed("/late"));
}

TEST(RobotsDirectives, AnAgentPrefixScopesOnlyWhatFollowsIt) {
  crawler::RobotsDirectives d;
  d.add("nofollow, otherbot: noimageindex", "crawler_ha");
  EXPECT_TRUE(d.nofollow);
  EXPECT_FALSE(d.noimageindex);
  crawler::RobotsDirectives e;
  e.add("otherbot: nofollow, crawler_ha: noimageindex", "crawler_ha");
  EXPECT_FALSE(e.nofollow);
  EXPECT_TRUE(e.noimageindex);
}

namespace {
// The textbook definition, exponential in the worst case: the reference
// the linear matcher is compared with.
bool reference_match(std::string_view pattern, std::string_view path, bool anchored) {
  if (pattern.empty()) return !anchored || path.empty();
  if (pattern[0] == '*') {
    for (std::size_t i = 0; i <= path.size(); ++i)
      if (reference_match(pattern.substr(1), path.substr(i), anchored)) return true;
    return false;
  }
  return !path.empty() && pattern[0] == path[0] && reference_match(pattern.substr(1), path.substr(1), anchored);
}
}  // namespace

TEST(Robots, LinearMatcherAgreesWithTheDefinitionOnRandomPatterns) {
  // Small alphabets make overlaps, repeats and near misses common.
  unsigned seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  const char alphabet[] = "/ab*";
  for (int round = 0; round < 20000; ++round) {
    std::string pattern = "/", path = "/";
    for (unsigned n = next() % 7; n > 0; --n) pattern += alphabet[next() % 4];
    for (unsigned n = next() % 9; n > 0; --n) path += alphabet[next() % 3];
    bool anchored = next() % 3 == 0;
    std::string line = pattern + (anchored ? "$" : "");
    auto r = Robots::parse("User-agent: *\nDisallow: " + line + "\n", "crawler_ha");
    bool expect_match = reference_match(pattern, path, anchored);
    ASSERT_EQ(!r.allowed(path), expect_match) << "pattern " << line << " path " << path;
  }
}

TEST(Robots, HostileWildcardFilesAreMatchedInOnePassPerRule) {
  // 500 KiB of rules that each almost match a long path: a backtracking
  // matcher needs the product of their lengths for every rule.
  std::string text = "User-agent: *\n";
  for (int i = 0;; ++i) {
    std::string line = "Disallow: /*a*a*a*a*a*a*a*a*a*a*a*a*b" + std::to_string(i % 1000) + "\n";
    if (text.size() + line.size() > 500 * 1024) break;  // no line cut by the size limit
    text += line;
  }
  auto r = Robots::parse(text, "crawler_ha");
  std::string path = "/" + std::string(2000, 'a');
  EXPECT_TRUE(r.allowed(path));
  EXPECT_FALSE(r.allowed(path + "b7"));
  EXPECT_GT(r.pattern_bytes(), 29000u);  // duplicates are matched once: 1,000 distinct rules
  EXPECT_LT(r.pattern_bytes(), 50000u);
}

TEST(Robots, PrecedenceHoldsWhateverTheOrderOfTheLines) {
  auto r = Robots::parse("User-agent: *\nDisallow: /t\nAllow: /t\nAllow: /a/b/\nDisallow: /a/\nDisallow: /*.gif$\nAllow: /*.gif$\n",
                         "crawler_ha");
  EXPECT_TRUE(r.allowed("/t"));
  EXPECT_TRUE(r.allowed("/a/b/x"));
  EXPECT_FALSE(r.allowed("/a/x"));
  EXPECT_TRUE(r.allowed("/x.gif"));
}
