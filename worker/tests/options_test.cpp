#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

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
  EXPECT_EQ(nlohmann::json::parse(c.crawl.options_json()),
            nlohmann::json::parse("{\"max_depth\": 2, \"delay_ms\": 0, \"allowed_domains\": [\"a.test\"], "
                                  "\"robots\": false, \"user_agent\": \"bot \\\"q\\\"\"}"));
}

TEST(Options, ThumbnailsAreNamedSizesOfTheSession) {
  auto c = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--thumbnail", "small=50",
                  "--thumbnail", "big=270"});
  EXPECT_EQ(nlohmann::json::parse(c.crawl.options_json()),
            nlohmann::json::parse(R"({"thumbnails": {"small": 50, "big": 270}})"));
  for (const char* bad : {"small", "=50", "small=", "small=5x", "small=-5", "small=99999999999"})
    EXPECT_THROW(parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--thumbnail", bad}),
                 std::runtime_error)
        << bad;
  // The names and the range are the extension's to judge (crawl_thumbnail_sizes()).
  auto odd = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--thumbnail", "Big=1"});
  EXPECT_EQ(nlohmann::json::parse(odd.crawl.options_json()), nlohmann::json::parse(R"({"thumbnails": {"Big": 1}})"));
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

namespace {
// A token file with `mode`, removed with the object.
struct TokenFile {
  explicit TokenFile(const std::string& content, mode_t mode) {
    char name[] = "/tmp/crawler-token-XXXXXX";
    int fd = ::mkstemp(name);
    path = name;
    if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) path.clear();
    ::fchmod(fd, mode);
    ::close(fd);
  }
  ~TokenFile() { std::remove(path.c_str()); }
  std::string path;
};
}  // namespace

TEST(Options, FilesGoToExactlyOnePlace) {
  TokenFile token("s3cret\n", 0600);
  EXPECT_THROW(parse({"run", "--db", "x"}), std::runtime_error);  // neither
  EXPECT_THROW(parse({"run", "--db", "x", "--storage", "s", "--storage-agent", "--agent-token-file",
                      token.path.c_str()}),
               std::runtime_error);  // both
  auto local = parse({"run", "--db", "x", "--storage", "s"});
  EXPECT_FALSE(local.worker.storage_agent);
  EXPECT_EQ(crawler::download_root(local.worker), "s");
  // status needs neither
  EXPECT_EQ(parse({"status", "--db", "x"}).name, "status");
}

TEST(Options, TheAgentModeReadsItsTokenAndSpoolsByDefaultUnderVarTmp) {
  TokenFile token("s3cret\n", 0600);
  auto c = parse({"run", "--db", "x", "--storage-agent", "--agent-token-file", token.path.c_str()});
  EXPECT_TRUE(c.worker.storage_agent);
  EXPECT_EQ(c.worker.agent_token, "s3cret");
  EXPECT_EQ(c.worker.spool, crawler::kDefaultSpool);
  EXPECT_EQ(crawler::download_root(c.worker), crawler::kDefaultSpool);
  EXPECT_EQ(c.worker.max_spool_bytes, 1LL << 30);
  EXPECT_TRUE(c.worker.agent_ca_file.empty());
  auto d = parse({"run", "--db", "x", "--storage-agent", "--agent-token-file", token.path.c_str(), "--spool",
                  "/tmp/sp", "--max-spool-bytes", "1000", "--agent-ca-file", "/etc/ca.pem"});
  EXPECT_EQ(d.worker.spool, "/tmp/sp");
  EXPECT_EQ(d.worker.max_spool_bytes, 1000);
  EXPECT_EQ(d.worker.agent_ca_file, "/etc/ca.pem");
  EXPECT_NE(d.help_text.find(crawler::kDefaultSpool), std::string::npos);
}

TEST(Options, TheAgentModeNeedsAPrivateUsableToken) {
  EXPECT_THROW(parse({"run", "--db", "x", "--storage-agent"}), std::runtime_error);  // no token file
  EXPECT_THROW(parse({"run", "--db", "x", "--storage-agent", "--agent-token-file", "/nonexistent/t"}),
               std::runtime_error);
  for (mode_t loose : {0640, 0604, 0620, 0602, 0660}) {
    TokenFile token("s3cret\n", loose);
    try {
      parse({"run", "--db", "x", "--storage-agent", "--agent-token-file", token.path.c_str()});
      ADD_FAILURE() << "mode " << std::oct << loose << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
  }
  TokenFile owner_only("s3cret", 0400);
  EXPECT_EQ(crawler::read_agent_token(owner_only.path), "s3cret");
  TokenFile empty("\n", 0600);
  EXPECT_THROW(crawler::read_agent_token(empty.path), std::runtime_error);
  TokenFile header_injection("a\r\nX-Evil: 1\n", 0600);
  EXPECT_THROW(crawler::read_agent_token(header_injection.path), std::runtime_error);
  EXPECT_THROW(crawler::read_agent_token("/tmp"), std::runtime_error);  // not a regular file
}

TEST(Options, AgentOptionsWithoutTheAgentModeAreMistakes) {
  TokenFile token("s3cret\n", 0600);
  EXPECT_THROW(parse({"run", "--db", "x", "--storage", "s", "--spool", "/tmp/sp"}), std::runtime_error);
  EXPECT_THROW(parse({"run", "--db", "x", "--storage", "s", "--agent-token-file", token.path.c_str()}),
               std::runtime_error);
}

TEST(Options, TheAgentModeComesFromTheConfigFileToo) {
  TokenFile token("s3cret\n", 0600);
  const char* path = "/tmp/crawler-options-agent-test.conf";
  std::ofstream(path) << "db = x\nstorage-agent = true\nagent-token-file = " << token.path
                      << "\nspool = /tmp/sp2\nmax-spool-bytes = 5000\n";
  auto c = parse({"run", "--config", path});
  EXPECT_TRUE(c.worker.storage_agent);
  EXPECT_EQ(c.worker.agent_token, "s3cret");
  EXPECT_EQ(c.worker.spool, "/tmp/sp2");
  EXPECT_EQ(c.worker.max_spool_bytes, 5000);
  std::remove(path);
}

namespace {
// The message of the error parse() throws, "" when it accepts.
std::string refusal(std::vector<const char*> args) {
  try {
    parse(std::move(args));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// A config file with `text`, removed with the object.
struct ConfigFile {
  explicit ConfigFile(const std::string& text) {
    char name[] = "/tmp/crawler-config-XXXXXX";
    int fd = ::mkstemp(name);
    ::close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~ConfigFile() { std::remove(path.c_str()); }
  std::string path;
};
}  // namespace

TEST(Options, VersionIsTheVersionAlone) {
  EXPECT_EQ(parse({"--version"}).name, "version");
  EXPECT_EQ(parse({"crawl", "--version"}).name, "version");
}

TEST(Options, EachCommandHasItsOwnHelp) {
  auto crawl = parse({"crawl", "--help"});
  EXPECT_EQ(crawl.name, "help");
  EXPECT_NE(crawl.help_text.find("Usage: crawler-worker crawl"), std::string::npos) << crawl.help_text;
  for (const char* o : {"--seed", "--no-robots", "--storage", "--db", "--concurrency"})
    EXPECT_NE(crawl.help_text.find(o), std::string::npos) << o;
  EXPECT_EQ(crawl.help_text.find("--session"), std::string::npos);
  EXPECT_NE(crawl.help_text.find("130"), std::string::npos) << "the exit status of a second signal";

  auto run = parse({"run", "--help"});
  EXPECT_NE(run.help_text.find("Usage: crawler-worker run"), std::string::npos);
  EXPECT_NE(run.help_text.find("--storage"), std::string::npos);
  EXPECT_EQ(run.help_text.find("--seed"), std::string::npos);
  EXPECT_NE(run.help_text.find("130"), std::string::npos);

  auto status = parse({"status", "--help"});
  for (const char* o : {"--session", "--wide", "--json", "--db"})
    EXPECT_NE(status.help_text.find(o), std::string::npos) << o;
  EXPECT_EQ(status.help_text.find("--storage"), std::string::npos);

  EXPECT_EQ(parse({"help", "status"}).help_text, status.help_text);
  auto all = parse({"--help"});
  EXPECT_NE(all.help_text.find("COMMAND --help"), std::string::npos);
  EXPECT_EQ(all.help_text.find("--seed"), std::string::npos);
  EXPECT_NE(refusal({"help", "fly"}).find("unknown command \"fly\""), std::string::npos);
}

TEST(Options, AnUnknownLogLevelIsRefused) {
  EXPECT_NE(refusal({"status", "--db", "x", "--log-level", "verbose"}).find("--log-level \"verbose\" is not a level"),
            std::string::npos);
  EXPECT_EQ(parse({"status", "--db", "x", "--log-level", "warning"}).worker.log_level, "warning");
}

TEST(Options, OptionsOfAnotherCommandAreRefused) {
  EXPECT_EQ(refusal({"run", "--db", "x", "--storage", "s", "--seed", "http://a.test/"}),
            "--seed is an option of crawl, not of run (see crawler-worker run --help)");
  EXPECT_NE(refusal({"run", "--db", "x", "--storage", "s", "--no-robots"}).find("--no-robots is an option of crawl"),
            std::string::npos);
  EXPECT_NE(refusal({"status", "--db", "x", "--storage", "s"}).find("--storage is an option of crawl, run and export"),
            std::string::npos);
  EXPECT_NE(refusal({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--session", "3"})
                .find("--session is an option of status"),
            std::string::npos);
  EXPECT_NE(refusal({"status", "--db", "x", "--wide", "--json"}).find("exclude each other"), std::string::npos);
}

TEST(Options, AMisspeltOptionIsNamedWithTheNearestOne) {
  EXPECT_NE(refusal({"run", "--db", "x", "--storage", "s", "--concurency", "3"}).find("did you mean --concurrency?"),
            std::string::npos);
  EXPECT_NE(refusal({"--db", "x"}).find("a command is needed"), std::string::npos);
  EXPECT_NE(refusal({"status", "--db", "x", "extra"}).find("unexpected argument \"extra\""), std::string::npos);
}

TEST(Options, AMisspeltConfigKeyNamesTheFileAndTheLine) {
  ConfigFile f("db = x\n# a comment\n\nconcurency = 3\n");
  EXPECT_EQ(refusal({"run", "--storage", "s", "--config", f.path.c_str()}),
            "config file " + f.path + ", line 4: unknown option \"concurency\" (did you mean \"concurrency\"?)");
  ConfigFile bad_value("db = x\nconcurrency = many\n");
  EXPECT_EQ(refusal({"run", "--storage", "s", "--config", bad_value.path.c_str()}),
            "config file " + bad_value.path + ", line 2: invalid value \"many\" for \"concurrency\"");
  ConfigFile twice("db = x\nconcurrency = 3\nconcurrency = 4\n");
  EXPECT_NE(refusal({"run", "--storage", "s", "--config", twice.path.c_str()})
                .find("line 3: \"concurrency\" is given twice (also on line 2)"),
            std::string::npos);
  ConfigFile no_value("db = x\nconcurrency\n");
  EXPECT_NE(refusal({"run", "--storage", "s", "--config", no_value.path.c_str()})
                .find("line 2: \"concurrency\" needs a value"),
            std::string::npos);
  ConfigFile section("[worker]\ndb = x\n");
  EXPECT_NE(refusal({"run", "--storage", "s", "--config", section.path.c_str()}).find("line 1: sections"),
            std::string::npos);
  EXPECT_NE(refusal({"run", "--storage", "s", "--config", "/nonexistent/w.conf"})
                .find("cannot read config file /nonexistent/w.conf"),
            std::string::npos);
}

TEST(Options, ABareBooleanKeyMeansTrue) {
  ConfigFile f("db = x\nstorage = s\nseed = http://a.test/\nno-robots\nimages_any_host   # underscores read as dashes\n");
  auto c = parse({"crawl", "--config", f.path.c_str()});
  EXPECT_TRUE(c.crawl.no_robots);
  EXPECT_TRUE(c.crawl.images_any_host);
  ConfigFile off("db = x\nstorage = s\nseed = http://a.test/\nno-robots = false\n");
  EXPECT_FALSE(parse({"crawl", "--config", off.path.c_str()}).crawl.no_robots);
}

TEST(Options, ScopeAndRandomWaitAreSessionOptions) {
  auto c = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://www.a.test/", "--scope", "site",
                  "--random-wait", "--delay-ms", "500"});
  EXPECT_EQ(nlohmann::json::parse(c.crawl.options_json()),
            nlohmann::json::parse(R"({"scope": "site", "random_wait": true, "delay_ms": 500})"));
  ConfigFile f("db = x\nstorage = s\nseed = http://a.test/\nrandom-wait\nscope = hosts\n");
  auto k = parse({"crawl", "--config", f.path.c_str()});
  EXPECT_TRUE(k.crawl.random_wait);
  EXPECT_EQ(k.crawl.scope, "hosts");
}

TEST(Options, TheConfigFileHoldsToTheCommandToo) {
  // run refuses crawl's options from its file, as from its command line ...
  ConfigFile crawl_key("db = x\nstorage = s\nseed = http://a.test/\n");
  EXPECT_EQ(refusal({"run", "--config", crawl_key.path.c_str()}),
            "config file " + crawl_key.path + ", line 3: \"seed\" is an option of crawl, not of run");
  // ... while status reads the service's file: the worker's options in it
  // are checked and ignored.
  ConfigFile service("db = x\nstorage = s\nconcurrency = 32\nlog-level = warning\n");
  auto s = parse({"status", "--config", service.path.c_str()});
  EXPECT_EQ(s.worker.db, "x");
  EXPECT_EQ(s.worker.log_level, "warning");
  ConfigFile typo("db = x\nstorag = s\n");
  EXPECT_NE(refusal({"status", "--config", typo.path.c_str()}).find("line 2: unknown option \"storag\""),
            std::string::npos);
  ConfigFile bad_level("db = x\nlog-level = verbose\n");
  EXPECT_NE(refusal({"status", "--config", bad_level.path.c_str()}).find("not a level"), std::string::npos);
}

namespace {
// The message of the runtime_error `f` throws ("" when none).
template <typename F>
std::string refusal(F f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Options, SeedsComeFromAFileToo) {
  const std::string path = "/tmp/crawler-seeds-test-" + std::to_string(::getpid());
  std::ofstream(path) << "# seeds\n\n  http://a.test/  \r\nhttps://b.test/x\n\t# indented comment\n";
  auto c = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://c.test/", "--seeds-file", path.c_str()});
  EXPECT_EQ(c.crawl.seeds, (std::vector<std::string>{"http://c.test/", "http://a.test/", "https://b.test/x"}));
  EXPECT_EQ(c.crawl.options_json(), "{}");  // not a session option
  // the file alone is enough
  EXPECT_EQ(parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}).crawl.seeds.size(), 2u);

  std::ofstream(path) << "http://a.test/\nftp://b.test/\n";
  EXPECT_EQ(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); }),
            "--seeds-file " + path + ", line 2: \"ftp://b.test/\" is not an absolute http(s) URL");
  std::ofstream(path) << "http://a.test/" << std::string(3000, 'x') << "\n";
  EXPECT_NE(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); })
                .find("line 1: a URL longer than 2048 bytes"),
            std::string::npos);
  std::ofstream(path) << std::string("http://a.test/\0x\n", 17);
  EXPECT_NE(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); })
                .find("a NUL byte"),
            std::string::npos);
  {
    std::ofstream many(path);
    for (int i = 0; i <= 10000; ++i) many << "http://a.test/" << i << "\n";
  }
  EXPECT_NE(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); })
                .find("more than 10000 seeds"),
            std::string::npos);
  std::ofstream(path) << "# nothing\n\n";
  EXPECT_EQ(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); }),
            "--seeds-file " + path + ": no URL in it");
  std::remove(path.c_str());
  EXPECT_NE(refusal([&] { parse({"crawl", "--db", "x", "--storage", "s", "--seeds-file", path.c_str()}); })
                .find("No such file"),
            std::string::npos);
  // run has no seeds
  EXPECT_NE(refusal([&] { parse({"run", "--db", "x", "--storage", "s", "--seeds-file", "/dev/null"}); }), "");
}

TEST(Options, StatsJsonMustBeWritableBeforeTheCrawl) {
  EXPECT_EQ(parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--stats-json", "/tmp/s.json"})
                .crawl.stats_json,
            "/tmp/s.json");
  EXPECT_EQ(parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--stats-json", "/tmp/s.json"})
                .crawl.options_json(),
            "{}");
  EXPECT_NE(refusal([&] {
              parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--stats-json",
                     "/nonexistent-dir/s.json"});
            }).find("cannot write in /nonexistent-dir"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--stats-json", "/tmp"});
            }).find("a directory"),
            std::string::npos);
}

TEST(Options, SitemapsAreOnUnlessTurnedOffAndMoreCanBeGiven) {
  auto c = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--sitemap",
                  "http://a.test/s1.xml", "--sitemap", "http://a.test/s2.xml.gz"});
  EXPECT_EQ(c.crawl.sitemaps, (std::vector<std::string>{"http://a.test/s1.xml", "http://a.test/s2.xml.gz"}));
  EXPECT_EQ(c.crawl.options_json(), "{}");  // --sitemap is the command's, not a session setting
  auto off = parse({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--no-sitemaps"});
  EXPECT_EQ(nlohmann::json::parse(off.crawl.options_json()), nlohmann::json::parse("{\"sitemaps\": false}"));
  ConfigFile f("db = x\nstorage = s\nseed = http://a.test/\nno-sitemaps\nsitemap = http://a.test/s.xml\n");
  auto fc = parse({"crawl", "--config", f.path.c_str()});
  EXPECT_TRUE(fc.crawl.no_sitemaps);
  EXPECT_EQ(fc.crawl.sitemaps, (std::vector<std::string>{"http://a.test/s.xml"}));
  EXPECT_NE(refusal({"run", "--db", "x", "--storage", "s", "--no-sitemaps"}).find("--no-sitemaps is an option of crawl"),
            std::string::npos);
}
