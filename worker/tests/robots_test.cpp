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
