#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

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
