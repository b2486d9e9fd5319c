// The agent's settings: file and command line, and the refusals.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "crawler/agent/config.hpp"
#include "crawler/config_file.hpp"

using namespace crawler::agent;

namespace {

struct ConfigFile {
  explicit ConfigFile(const std::string& text) {
    path = (std::filesystem::temp_directory_path() /
            ("agent-config-test-" + std::to_string(::getpid()) + ".conf"))
               .string();
    std::ofstream(path) << text;
  }
  ~ConfigFile() { std::filesystem::remove(path); }
  std::string path;
};

AgentConfig parse(std::vector<std::string> args) {
  bool help = false;
  return parse_agent_config(args, &help);
}

bool mentions(const std::vector<std::string>& problems, const std::string& word) {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const std::string& p) { return p.find(word) != std::string::npos; });
}

AgentConfig valid() {
  AgentConfig c;
  c.store = "/srv/store";
  c.token_file = "/etc/token";
  c.plain_http = true;
  return c;
}

TEST(AgentConfig, FileAndCommandLineTheCommandLineWinning) {
  ConfigFile f(
      "# comment\nstore = /srv/blobs\nmax_blob_bytes = 1000\nlisten = [::1]:9000\nplain-http = true\n"
      "token_file = /etc/crawler/token_file\nthreads = 3\n");
  AgentConfig c = parse({"--config", f.path, "--max-blob-bytes", "2000", "--threads=4"});
  EXPECT_EQ(c.store, "/srv/blobs");
  EXPECT_EQ(c.max_blob_bytes, 2000u);
  EXPECT_EQ(c.listen, "[::1]:9000");
  EXPECT_TRUE(c.plain_http);
  EXPECT_EQ(c.token_file, "/etc/crawler/token_file");  // underscores in values stay
  EXPECT_EQ(c.threads, 4);
  EXPECT_EQ(c.max_connections, AgentConfig{}.max_connections);
}

TEST(AgentConfig, UnderscoresOnTheCommandLineToo) {
  AgentConfig c = parse({"--max_connections", "7", "--read_token_required"});
  EXPECT_EQ(c.max_connections, 7);
  EXPECT_TRUE(c.read_token_required);
}

TEST(AgentConfig, MistakesAreNamed) {
  ConfigFile f("stor = /x\n");
  try {
    parse({"--config", f.path});
    FAIL() << "an unknown key must be refused";
  } catch (const crawler::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(f.path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("stor"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse({"--max-blob-bytes", "lots"}), crawler::ConfigError);
  EXPECT_THROW(parse({"--no-such-option"}), crawler::ConfigError);
  EXPECT_THROW(parse({"--config", "/nonexistent/agent.conf"}), crawler::ConfigError);
}

TEST(AgentConfig, AValidConfigHasNoProblems) {
  EXPECT_TRUE(agent_config_problems(valid()).empty());
  AgentConfig tls = valid();
  tls.plain_http = false;
  tls.tls_cert_file = "/etc/cert.pem";
  tls.tls_key_file = "/etc/key.pem";
  EXPECT_TRUE(agent_config_problems(tls).empty());
}

TEST(AgentConfig, RefusesToRunWithoutTlsUnlessPlainHttpIsSet) {
  AgentConfig c = valid();
  c.plain_http = false;
  EXPECT_TRUE(mentions(agent_config_problems(c), "plain_http"));
  c.tls_cert_file = "/etc/cert.pem";
  EXPECT_TRUE(mentions(agent_config_problems(c), "tls_key_file"));
  AgentConfig both = valid();
  both.tls_cert_file = "/etc/cert.pem";
  EXPECT_TRUE(mentions(agent_config_problems(both), "choose one"));
}

TEST(AgentConfig, RefusesMissingAndOutOfRangeSettings) {
  AgentConfig c = valid();
  c.store.clear();
  c.token_file.clear();
  c.max_blob_bytes = 0;
  c.max_connections = 0;
  c.threads = 0;
  c.header_timeout_ms = -1;
  c.max_header_bytes = 10;
  c.listen = "localhost:80";
  auto p = agent_config_problems(c);
  for (const char* what : {"store", "token_file", "max_blob_bytes", "max_connections", "threads",
                           "header_timeout_ms", "max_header_bytes", "listen"})
    EXPECT_TRUE(mentions(p, what)) << what;
}

TEST(AgentConfig, TheHaPort) {
  AgentConfig c = valid();
  EXPECT_EQ(c.ha_listen, "127.0.0.1:8001");
  c.ha_listen = "off";
  EXPECT_TRUE(agent_config_problems(c).empty());
  c.ha_listen = "nowhere";
  EXPECT_TRUE(mentions(agent_config_problems(c), "ha_listen"));
  c.ha_listen = c.listen = "127.0.0.1:9000";
  EXPECT_TRUE(mentions(agent_config_problems(c), "must differ"));
  c.ha_listen = c.listen = "127.0.0.1:0";  // two free ports: allowed
  EXPECT_TRUE(agent_config_problems(c).empty());
  c.api_db_sessions = 0;
  EXPECT_TRUE(mentions(agent_config_problems(c), "api_db_sessions"));
  AgentConfig parsed = parse({"--ha-listen", "[::1]:18001", "--ha-port-file", "/tmp/x", "--api-db-sessions", "3"});
  EXPECT_EQ(parsed.ha_listen, "[::1]:18001");
  EXPECT_EQ(parsed.ha_port_file, "/tmp/x");
  EXPECT_EQ(parsed.api_db_sessions, 3);
}

}  // namespace
