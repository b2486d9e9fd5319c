#include <gtest/gtest.h>

#include "crawler/url.hpp"

#include <clocale>

using crawler::normalize_url;

// libidn2 (behind curl's punycode) needs a UTF-8 locale; main() sets it too.
static const bool utf8_locale = std::setlocale(LC_CTYPE, "C.UTF-8") != nullptr;

using crawler::resolve_url;

TEST(Url, LowerCasesSchemeAndHostButNotPath) {
  EXPECT_EQ(normalize_url("HTTP://Example.COM/A/B.png"), "http://example.com/A/B.png");
}

TEST(Url, DropsDefaultPortAndFragment) {
  EXPECT_EQ(normalize_url("http://example.com:80/x#frag"), "http://example.com/x");
  EXPECT_EQ(normalize_url("https://example.com:443/"), "https://example.com/");
  EXPECT_EQ(normalize_url("http://example.com:8080/x"), "http://example.com:8080/x");
}

TEST(Url, EmptyPathBecomesSlash) {
  EXPECT_EQ(normalize_url("http://example.com"), "http://example.com/");
}

TEST(Url, ResolvesRelativeReferences) {
  const char* base = "http://h.test/a/b/page.html?q=1";
  EXPECT_EQ(resolve_url(base, "img.png"), "http://h.test/a/b/img.png");
  EXPECT_EQ(resolve_url(base, "../img.png"), "http://h.test/a/img.png");
  EXPECT_EQ(resolve_url(base, "/root.png"), "http://h.test/root.png");
  EXPECT_EQ(resolve_url(base, "//cdn.test/x.png"), "http://cdn.test/x.png");
  EXPECT_EQ(resolve_url(base, "?v=2"), "http://h.test/a/b/page.html?v=2");
  EXPECT_EQ(resolve_url(base, "./c/./d/../e.png"), "http://h.test/a/b/c/e.png");
}

TEST(Url, EmptyReferenceIsThePageWithoutFragment) {
  EXPECT_EQ(resolve_url("http://h.test/p#top", ""), "http://h.test/p");
  EXPECT_EQ(resolve_url("http://h.test/p", "#section"), "http://h.test/p");
}

TEST(Url, SkipsSchemesTheCrawlerNeverFetches) {
  const char* base = "http://h.test/";
  EXPECT_FALSE(resolve_url(base, "data:image/png;base64,AAAA"));
  EXPECT_FALSE(resolve_url(base, "javascript:void(0)"));
  EXPECT_FALSE(resolve_url(base, " JavaScript:alert(1)"));
  EXPECT_FALSE(resolve_url(base, "mailto:a@b.test"));
  EXPECT_FALSE(resolve_url(base, "ftp://h.test/x.png"));
  EXPECT_FALSE(normalize_url("not a url"));
}

TEST(Url, TrimsWhitespaceAndEncodesSpaces) {
  EXPECT_EQ(resolve_url("http://h.test/", "  a b.png\n"), "http://h.test/a%20b.png");
  EXPECT_EQ(resolve_url("http://h.test/", "caf\xc3\xa9.png"), "http://h.test/caf%C3%A9.png");
}

TEST(Url, InternationalHostsBecomePunycode) {
  ASSERT_TRUE(utf8_locale);
  EXPECT_EQ(normalize_url("http://b\xc3\xbc" "cher.test/"), "http://xn--bcher-kva.test/");
}

TEST(Url, RefusesOverlongUrls) {
  std::string long_path(2100, 'a');
  EXPECT_FALSE(normalize_url("http://h.test/" + long_path));
}

TEST(Url, HostKeyKeepsOnlyNonDefaultPorts) {
  auto a = crawler::split_url("http://h.test/x");
  auto b = crawler::split_url("http://h.test:8080/x?y=1");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(crawler::host_key(*a), "h.test");
  EXPECT_EQ(crawler::host_key(*b), "h.test:8080");
  EXPECT_EQ(b->path, "/x?y=1");
}

TEST(Url, FilenameIsTheLastSegment) {
  EXPECT_EQ(crawler::url_filename("http://h.test/a/my%20cat.jpg?x=1"), "my cat.jpg");
  EXPECT_EQ(crawler::url_filename("http://h.test/"), "");
}

TEST(Url, NormalisationIsAFixedPoint) {
  auto once = crawler::resolve_url("http://a.test/dir/page.html", "//8%2e4");
  ASSERT_TRUE(once.has_value());
  EXPECT_EQ(crawler::normalize_url(*once), once);
  for (const char* u : {"http://A.test:80/x/../y?q#f", "https://b.test/%7euser/", "http://[::1]:8080/p"}) {
    auto n = crawler::normalize_url(u);
    ASSERT_TRUE(n.has_value()) << u;
    EXPECT_EQ(crawler::normalize_url(*n), n) << u;
  }
}

TEST(Url, PortZeroIsRefused) {
  EXPECT_FALSE(crawler::normalize_url("http://a.test:0/").has_value());
  EXPECT_FALSE(crawler::resolve_url("http://a.test/", "http://b.test:0/x").has_value());
  EXPECT_TRUE(crawler::normalize_url("http://a.test:8080/").has_value());
}

TEST(Url, DoubleSlashInsideARelativePathIsNoHost) {
  auto r = crawler::resolve_url("http://a.test/dir/page.html", "a//\xC3\xBC.png");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "http://a.test/dir/a//%C3%BC.png");
}

TEST(ResolveUrl, TheExamplesOfRfc3986) {
  // Section 5.4, normal and abnormal examples, fragments dropped and hosts
  // given their path as the normalisation does.
  const char* base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> cases[] = {
      {"g", "http://a/b/c/g"}, {"./g", "http://a/b/c/g"}, {"g/", "http://a/b/c/g/"}, {"/g", "http://a/g"},
      {"//g", "http://g/"}, {"?y", "http://a/b/c/d;p?y"}, {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q"}, {"g#s", "http://a/b/c/g"}, {"g?y#s", "http://a/b/c/g?y"},
      {";x", "http://a/b/c/;x"}, {"g;x", "http://a/b/c/g;x"}, {"g;x?y#s", "http://a/b/c/g;x?y"},
      {"", "http://a/b/c/d;p?q"}, {".", "http://a/b/c/"}, {"./", "http://a/b/c/"}, {"..", "http://a/b/"},
      {"../", "http://a/b/"}, {"../g", "http://a/b/g"}, {"../..", "http://a/"}, {"../../", "http://a/"},
      {"../../g", "http://a/g"}, {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"},
      {"/./g", "http://a/g"}, {"/../g", "http://a/g"}, {"g.", "http://a/b/c/g."}, {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."}, {"..g", "http://a/b/c/..g"}, {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"}, {"g/./h", "http://a/b/c/g/h"}, {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"}, {"g;x=1/../y", "http://a/b/c/y"},
      {"g?y/./x", "http://a/b/c/g?y/./x"}, {"g?y/../x", "http://a/b/c/g?y/../x"},
      {"g#s/./x", "http://a/b/c/g"}, {"g#s/../x", "http://a/b/c/g"},
      // an empty segment stays (curl's own relative resolution dropped it)
      {".//", "http://a/b/c//"}, {".//x", "http://a/b/c//x"}};
  for (const auto& [ref, expected] : cases) EXPECT_EQ(crawler::resolve_url(base, ref), expected) << ref;
}

TEST(UrlResolver, APlainReferenceIsWhatCurlWouldMakeOfItsJoin) {
  // References made of the characters the resolver joins without parsing,
  // and those around them it must leave to curl (dots, escapes, '#', ':'):
  // whatever it returns is what curl makes of the joined string.
  const char alphabet[] = "ab./?=&%~_-#:";
  unsigned seed = 7;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  const std::pair<const char*, const char*> bases[] = {  // base, its directory
      {"http://a.test/d1/d2/page?x=1", "http://a.test/d1/d2/"}, {"http://A.test", "http://a.test/"},
      {"https://a.test:8443/d/", "https://a.test:8443/d/"}};
  for (const auto& [base, directory] : bases) {
    crawler::UrlResolver resolver(base);
    std::string origin = crawler::normalize_url(base)->substr(0, std::string(directory).find('/', 8));
    for (int round = 0; round < 20000; ++round) {
      std::string ref = next() % 2 ? "/" : "";
      for (unsigned n = next() % 12; n > 0; --n) ref += alphabet[next() % (sizeof alphabet - 1)];
      if (ref.empty() || ref.rfind("//", 0) == 0 || ref[0] == '?' || ref[0] == '#' ||
          ref.substr(0, ref.find_first_of("/?#")).find(':') != std::string::npos)
        continue;  // not a path reference: curl resolves those itself
      std::string joined = (ref[0] == '/' ? origin : std::string(directory)) + ref;
      EXPECT_EQ(resolver.resolve(ref), crawler::normalize_url(joined)) << "base " << base << " ref " << ref;
    }
  }
}
