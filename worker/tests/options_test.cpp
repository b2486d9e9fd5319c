#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "crawler/options.hpp"

namespace {
crawler::Command parse(std::vector<const char*> args) {
  args.insert(args.begin(), "crawler-worker");
  return crawler::parse_command_line(static_cast<int>(args.size()), args.data());
}
}  // namespace

TEST(Options, CrawlCommandBuildsTheSessionOptions) {
  auto c = parse({"crawl", "--db", "dbname=x", "--storage", "/tmp/s", "--seed", "http://a.test/",
                  "--seed", "http://b.test/", "--max-depth", "2", "--allow-domain", "a.test",
                  "--no-robots", "--delay-ms", "0", "--user-agent", "bot \"q\""});
  EXPECT_EQ(c.name, "crawl");
  EXPECT_EQ(c.crawl.seeds.size(), 2u);
  EXPECT_EQ(c.crawl.options_json(),
            "{\"max_depth\": 2, \"delay_ms\": 0, \"allowed_domains\": [\"a.test\"], "
            "\"robots\": false, \"user_agent\": \"bot \\\"q\\\"\"}");
}

TEST(Options, DefaultsGiveAnEmptyOptionsObject) {
  auto c = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/"});
  EXPECT_EQ(c.crawl.options_json(), "{}");
  EXPECT_EQ(c.worker.concurrency, 16);
  EXPECT_FALSE(c.worker.worker_id.empty());
}

TEST(Options, ConfigFileSuppliesWhatTheCommandLineDoesNot) {
  const char* path = "/tmp/crawler-options-test.conf";
  std::ofstream(path) << "db = host=a,b dbname=crawl\nstorage = /srv/images\nconcurrency = 4\n";
  auto c = parse({"run", "--config", path, "--concurrency", "9"});
  EXPECT_EQ(c.worker.db, "host=a,b dbname=crawl");
  EXPECT_EQ(c.worker.storage, "/srv/images");
  EXPECT_EQ(c.worker.concurrency, 9);
  std::remove(path);
}

TEST(Options, MistakesAreExplained) {
  EXPECT_THROW(parse({"crawl", "--db", "x", "--storage", "s"}), std::runtime_error);
  EXPECT_THROW(parse({"fly", "--db", "x"}), std::runtime_error);
  EXPECT_THROW(parse({"run", "--storage", "s"}), std::runtime_error);
  EXPECT_THROW(parse({"run", "--db", "x", "--storage", "s", "--concurrency", "0"}),
               std::runtime_error);
  EXPECT_EQ(parse({"--help"}).name, "help");
}
