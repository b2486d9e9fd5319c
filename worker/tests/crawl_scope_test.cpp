#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "crawler/crawl_scope.hpp"

using namespace crawler;

namespace {

SessionSettings session(std::vector<std::string> domains, bool images_any_host = false) {
  SessionSettings s{};
  s.allowed_domains = std::move(domains);
  s.images_any_host = images_any_host;
  return s;
}

bool in(const char* url, std::vector<std::string> domains, const char* kind = "page") {
  auto parts = split_url(url);
  EXPECT_TRUE(parts) << url;
  return parts && in_crawl_scope(*parts, kind, session(std::move(domains)));
}

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs of spaces and line ends as one space: the text, not its layout.
std::string squeezed(const std::string& s) { return std::regex_replace(s, std::regex("\\s+"), " "); }

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const char* const kMirrorHint =
    "the crawl's scope changed in the extension's SQL: make in_crawl_scope() (crawl_scope.cpp) and in_domains() "
    "(url.cpp) follow it, then update this test's copy of the SQL";

}  // namespace

// Each row was run through crawl_in_scope(crawl_url_host_of(url), domains)
// on PostgreSQL 15, with the functions' bodies as 35_validation.sql has them
// (the third column is what it answered).
TEST(CrawlScope, AgreesWithCrawlInScopeCaseByCase) {
  struct Case {
    const char* url;
    std::vector<std::string> domains;
    bool sql;
  };
  const Case cases[] = {
      {"http://h.test/x", {"h.test"}, true},
      {"http://cdn.h.test/x", {"other.test", "h.test"}, true},
      {"http://evilh.test/x", {"h.test"}, false},
      {"http://h.test.evil/x", {"h.test"}, false},
      {"http://h.test:8080/x", {"h.test"}, true},  // a domain without a port: any port
      {"http://h.test:8080/x", {"h.test:8080"}, true},
      {"http://h.test:9090/x", {"h.test:8080"}, false},
      {"http://a.h.test:8080/x", {"h.test:8080"}, true},
      {"http://a.h.test:8080/x", {"test:8080"}, true},
      {"http://h.test/x", {}, false},
      {"https://h.test/x", {"h.test"}, true},
      {"http://h.test/x", {"h.test:80"}, false},  // a default port is normalised away before either looks
      {"http://user@h.test/x", {"h.test"}, true},
      {"http://127.0.0.1:8080/x", {"127.0.0.1"}, true},
      {"http://127.0.0.1:8080/x", {"0.0.1"}, true},  // a suffix at a dot, addresses too
      {"http://xn--bcher-kva.test/", {"xn--bcher-kva.test"}, true},
      {"http://h.test/x", {"test"}, true},
      {"http://htest/x", {"test"}, false},
  };
  for (const auto& c : cases) EXPECT_EQ(in(c.url, c.domains), c.sql) << c.url;
}

TEST(CrawlScope, ImagesFromAnyHostOnlyWhenTheSessionSaysSo) {
  auto cdn = split_url("http://cdn.elsewhere.test/a.png");
  ASSERT_TRUE(cdn);
  EXPECT_TRUE(in_crawl_scope(*cdn, "image", session({"h.test"}, true)));
  EXPECT_FALSE(in_crawl_scope(*cdn, "page", session({"h.test"}, true)));  // pages never
  EXPECT_FALSE(in_crawl_scope(*cdn, "image", session({"h.test"}, false)));
}

// The mirror's other half: the SQL it was written from. A change there
// fails here, naming what to bring along.
TEST(CrawlScope, TheExtensionStatesTheRuleThisMirrors) {
  const std::filesystem::path dir = EXTENSION_SQL_DIR;
  if (!std::filesystem::exists(dir / "35_validation.sql")) GTEST_SKIP() << "no extension sources at " << dir;
  std::string validation = squeezed(read(dir / "35_validation.sql"));
  const std::string in_scope =
      "CREATE FUNCTION @extschema@.crawl_in_scope(host text, domains jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE "
      "SET search_path = pg_catalog, pg_temp AS $$ SELECT EXISTS ( SELECT 1 FROM "
      "jsonb_array_elements_text(domains) d WHERE host = d OR right(host, length(d) + 1) = '.' || d OR "
      "split_part(host, ':', 1) = d OR right(split_part(host, ':', 1), length(d) + 1) = '.' || d) $$;";
  EXPECT_NE(validation.find(in_scope), std::string::npos) << kMirrorHint;

  std::string frontier = squeezed(read(dir / "41_frontier.sql"));
  // crawl_enqueue() and crawl_enqueue_many(): the only ways into the frontier.
  EXPECT_EQ(count(frontier, "(kind = 'image' AND (s.settings ->> 'images_any_host')::boolean) OR "
                            "@extschema@.crawl_in_scope(t.h, s.settings -> 'allowed_domains')"),
            1u)
      << kMirrorHint;
  EXPECT_EQ(count(frontier, "((t.k = 'image' AND (s.settings ->> 'images_any_host')::boolean) OR "
                            "@extschema@.crawl_in_scope(t.h, s.settings -> 'allowed_domains'))"),
            1u)
      << kMirrorHint;
  EXPECT_EQ(count(frontier, "crawl_in_scope("), 2u) << kMirrorHint;
}
