// pgBackRest as crawler-ha backup drives it, without pgBackRest: the paths
// it may be given, the passphrase file's rules, the configuration it
// writes, what its info and verify answers mean, and the child-process
// runner (argument passing without a shell, the environment, outputs,
// exit statuses).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "crawler/agent/child_process.hpp"
#include "crawler/agent/pgbackrest.hpp"

using namespace crawler::agent;
namespace fs = std::filesystem;

namespace {

// The temporary directories made, removed when the tests end.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const auto& d : dirs) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }
} temp_dirs;

// A file in a fresh temporary directory with `text` and `mode`.
std::string temp_file(const std::string& text, mode_t mode) {
  char dir[] = "/tmp/pgbackrest-test.XXXXXX";
  if (!::mkdtemp(dir)) throw std::runtime_error("mkdtemp");
  temp_dirs.dirs.push_back(dir);
  std::string path = std::string(dir) + "/pass";
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

const char* kInfo = R"([{"archive":[],"backup":[
 {"archive":{"start":"000000010000000000000002","stop":"000000010000000000000003"},"error":false,
  "info":{"delta":23213920,"repository":{"delta":2849312,"size":2849312},"size":23213920},
  "label":"20261206-014551F","lsn":{"start":"0/2000028","stop":"0/3000050"},"prior":null,"reference":null,
  "timestamp":{"start":1796521551,"stop":1796521554},"type":"full"},
 {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"error":true,
  "info":{"delta":1597706,"repository":{"delta":162464,"size":2850544},"size":23230304},
  "label":"20261206-014551F_20261206-014555I","lsn":{"start":"0/5000028","stop":"0/5000100"},
  "prior":"20261206-014551F","reference":["20261206-014551F"],
  "timestamp":{"start":1796521555,"stop":1796521556},"type":"incr",
  "annotation":{"crawler_ha_node":"alpha","crawler_ha_term":"7"}}],
 "cipher":"aes-256-cbc","db":[{"id":1,"repo-key":1,"system-id":17716001298320620375,"version":"15"}],
 "name":"alpha","status":{"code":0,"message":"ok"}},
 {"name":"beta","status":{"code":1,"message":"missing stanza path"},"backup":[],"db":[]}])";

}  // namespace

TEST(PgBackRestPaths, OnlyPlainAbsolutePaths) {
  EXPECT_TRUE(safe_path("/etc/pgbackrest/pgbackrest.conf"));
  EXPECT_TRUE(safe_path("/tmp/crawler_ha-check.Ab12/t_509_data/repo"));
  for (const char* bad : {"", "relative/path", "/a b", "/a'b", "/a%p", "/a$HOME", "/a\nb", "/a;b", "/a/../b", "/..",
                          "/a\"b", "/a`b`", "/a\\b"})
    EXPECT_FALSE(safe_path(bad)) << bad;
  EXPECT_FALSE(safe_path("/" + std::string(1100, 'a')));
  EXPECT_TRUE(safe_path("/a/..b/c")) << "a name that starts with two dots is a name";
}

TEST(PgBackRestPaths, StanzaNames) {
  EXPECT_TRUE(safe_stanza("alpha"));
  EXPECT_TRUE(safe_stanza("db-1.crawl_x"));
  for (std::string bad : {std::string(), std::string("a b"), std::string("a]"), std::string(64, 'a'),
                          std::string("a\nb"), std::string("a/b")})
    EXPECT_FALSE(safe_stanza(bad)) << bad;
}

TEST(PgBackRestPaths, IncludeDirectoryBesideTheConfig) {
  EXPECT_EQ(include_dir_for("/etc/pgbackrest/pgbackrest.conf"), "/etc/pgbackrest/conf.d");
  EXPECT_EQ(include_dir_for("/x.conf"), "/conf.d");
  EXPECT_EQ(passphrase_file_in("/etc/pgbackrest/conf.d"), "/etc/pgbackrest/conf.d/crawler_ha-cipher.conf");
}

TEST(Passphrase, ReadFromAPrivateFile) {
  std::string error;
  auto p = read_passphrase_file(temp_file("  s3cr3t-passphrase-of-enough-length\n", 0600), &error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(*p, "s3cr3t-passphrase-of-enough-length");
}

TEST(Passphrase, RefusedWithTheReasonNeverTheContent) {
  const std::string secret = "s3cr3t-passphrase-of-enough-length";
  struct Case {
    std::string text;
    mode_t mode;
    const char* why;
  } cases[] = {
      {secret, 0644, "open to group or others"},
      {secret, 0640, "open to group or others"},
      {"", 0600, "is empty"},
      {"  \n\n", 0600, "is empty"},
      {"short", 0600, "20 to 1024"},
      {std::string(1025, 'x'), 0600, "20 to 1024"},
      {secret + "\n" + secret, 0600, "one line"},
      {"with a space inside it, long enough", 0600, "one line"},
      {secret + "\x01", 0600, "one line"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(read_passphrase_file(temp_file(c.text, c.mode), &error)) << c.why;
    EXPECT_NE(error.find(c.why), std::string::npos) << error;
    EXPECT_EQ(error.find(secret), std::string::npos) << "the message quotes the passphrase: " << error;
  }
  std::string error;
  EXPECT_FALSE(read_passphrase_file("/nonexistent/passphrase", &error));
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_FALSE(read_passphrase_file("/tmp", &error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

TEST(Config, HoldsTheRepositoryRulesAndNoSecret) {
  PgBackRestSettings s;
  s.stanza = "alpha";
  s.repo_path = "/var/lib/pgbackrest";
  s.pg_path = "/var/lib/postgresql/15/main";
  s.pg_port = "5432";
  s.pg_socket_dir = "/var/run/postgresql";
  s.pg_user = "postgres";
  s.pg_database = "crawl";
  s.log_path = "/var/log/pgbackrest";
  s.lock_path = "/tmp/pgbackrest";
  s.spool_path = "/var/spool/pgbackrest";
  std::string c = render_config(s, "/etc/pgbackrest/conf.d/crawler_ha-cipher.conf");
  EXPECT_EQ(c.rfind(kWrittenByMarker, 0), 0u);
  for (const char* line : {"\n[global]\n", "\nrepo1-path=/var/lib/pgbackrest\n", "\nrepo1-cipher-type=aes-256-cbc\n",
                           "\nrepo1-retention-full=2\n", "\ncompress-type=zst\n", "\nstart-fast=y\n",
                           "\nprocess-max=2\n", "\n[alpha]\n", "\npg1-path=/var/lib/postgresql/15/main\n",
                           "\npg1-port=5432\n", "\npg1-socket-path=/var/run/postgresql\n", "\npg1-user=postgres\n",
                           "\npg1-database=crawl\n", "\nlog-path=/var/log/pgbackrest\n",
                           "\nlock-path=/tmp/pgbackrest\n", "\nspool-path=/var/spool/pgbackrest\n"})
    EXPECT_NE(c.find(line), std::string::npos) << line;
  EXPECT_EQ(c.find("cipher-pass"), std::string::npos);
  std::string inc = render_passphrase_include("p4ss-phrase-0123456789");
  EXPECT_NE(inc.find("\n[global]\nrepo1-cipher-pass=p4ss-phrase-0123456789\n"), std::string::npos) << inc;
  EXPECT_EQ(archive_command("/usr/bin/pgbackrest", "/etc/pgbackrest/pgbackrest.conf", "/etc/pgbackrest/conf.d", "alpha"),
            "/usr/bin/pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --config-include-path=/etc/pgbackrest/conf.d "
            "--stanza=alpha archive-push %p");
}

TEST(Info, ReadsTheStanzasBackups) {
  StanzaInfo a = parse_info(kInfo, "alpha");
  EXPECT_EQ(a.status_code, 0);
  EXPECT_EQ(a.system_id, "17716001298320620375") << "an identifier beyond int64 stays exact";
  ASSERT_EQ(a.backups.size(), 2u);
  EXPECT_EQ(a.backups[0].label, "20261206-014551F");
  EXPECT_EQ(a.backups[0].prior, "");
  EXPECT_EQ(a.backups[0].start_lsn, "0/2000028");
  EXPECT_EQ(a.backups[0].wal_stop, "000000010000000000000003");
  EXPECT_EQ(a.backups[0].repo_size, 2849312);
  EXPECT_FALSE(a.backups[0].error);
  EXPECT_EQ(a.backups[1].type, "incr");
  EXPECT_EQ(a.backups[1].prior, "20261206-014551F");
  EXPECT_EQ(a.backups[1].stop_time, 1796521556);
  EXPECT_TRUE(a.backups[1].error);
  EXPECT_EQ(a.backups[0].term, -1) << "a backup without crawler-ha's annotations has no term";
  EXPECT_EQ(a.backups[0].node, "");
  EXPECT_EQ(a.backups[1].term, 7);
  EXPECT_EQ(a.backups[1].node, "alpha");
  EXPECT_EQ(stanza_names(kInfo), (std::vector<std::string>{"alpha", "beta"}));
  StanzaInfo b = parse_info(kInfo, "beta");
  EXPECT_EQ(b.status_code, 1);
  EXPECT_TRUE(b.backups.empty());
  EXPECT_EQ(b.system_id, "");
}

TEST(Info, AWrongPassphrasesGarbageIsNoParseError) {
  // pgBackRest quotes what a wrong key decrypted, bytes that are not UTF-8.
  std::string json = R"([{"name":"alpha","status":{"code":99,"message":"[FormatError] unable to load info file: )";
  json += "\xff\xfe\x80garbage\x10\x01\n!\xed\xa0\x80\xf4\x90\x80\x80\xc0\xaf";  // surrogate, beyond U+10FFFF, overlong
  json += R"("},"backup":[],"db":[],"repo":[{"key":1,"status":{"code":99,"message":"[CryptoError] bad key"}}]}])";
  StanzaInfo s = parse_info(json, "alpha");
  EXPECT_EQ(s.status_code, 99);
  EXPECT_NE(s.status_message.find(": [CryptoError] bad key"), std::string::npos) << "with the repository's own status";
  EXPECT_NE(s.status_message.find("unable to load info file: ???garbage   !?????????"), std::string::npos) << s.status_message;
}

TEST(Info, MalformedAnswersAreErrorsThatSaySo) {
  auto message = [](const std::string& json, const std::string& stanza) {
    try {
      parse_info(json, stanza);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(kInfo, "gamma").find("does not list the stanza gamma"), std::string::npos);
  EXPECT_NE(message("not json", "alpha").find("did not answer JSON"), std::string::npos);
  EXPECT_NE(message("{}", "alpha").find("not a list"), std::string::npos);
  EXPECT_NE(message(R"([{"name":"alpha"}])", "alpha").find("unexpected answer"), std::string::npos);
  EXPECT_NE(message(R"([{"name":"alpha","status":{"code":"x"}}])", "alpha").find("status.code is not a number"),
            std::string::npos);
  EXPECT_NE(message(R"([{"name":"alpha","status":{"code":0},"backup":{}}])", "alpha").find("not a list"),
            std::string::npos);
  std::string bad_type = kInfo;
  bad_type.replace(bad_type.find("\"type\":\"incr\""), 13, "\"type\":\"zzzz\"");
  EXPECT_NE(message(bad_type, "alpha").find("unknown backup type zzzz"), std::string::npos);
  std::string bad_size = kInfo;
  bad_size.replace(bad_size.find("\"size\":23213920"), 15, "\"size\":\"big\"   ");
  EXPECT_NE(message(bad_size, "alpha").find("info.size is not a number"), std::string::npos);
}

TEST(Verify, TheStanzasStatusLineDecides) {
  EXPECT_TRUE(parse_verify("stanza: alpha\nstatus: ok\n  archiveId: 15-1, total WAL checked: 5\n").ok);
  VerifyResult bad = parse_verify(
      "stanza: alpha\nstatus: error\n  backup: 20261206-014551F, status: invalid\n    checksum invalid: 1\n");
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.detail.find("checksum invalid: 1"), std::string::npos);
  EXPECT_FALSE(parse_verify("").ok) << "no answer is not a good answer";
  EXPECT_FALSE(parse_verify("stanza: alpha\n    status: error (other)\n").ok);
}

TEST(Child, ArgumentsReachItWithoutAShell) {
  ChildResult r = run_child({"/bin/echo", "a b", "$HOME", "'q'", "%p;ls"}, {});
  ASSERT_TRUE(r.ok()) << r.how();
  EXPECT_EQ(r.out, "a b $HOME 'q' %p;ls\n");
}

TEST(Child, OnlyTheGivenEnvironment) {
  ::setenv("PGBACKREST_REPO1_CIPHER_PASS", "leaked", 1);
  ChildResult r = run_child({"/usr/bin/env"}, {"PATH=/usr/bin:/bin", "ONLY=this"});
  ::unsetenv("PGBACKREST_REPO1_CIPHER_PASS");
  ASSERT_TRUE(r.ok()) << r.how();
  EXPECT_EQ(r.out, "PATH=/usr/bin:/bin\nONLY=this\n");
  for (const auto& e : pgbackrest_environment()) EXPECT_EQ(e.rfind("PGBACKREST", 0), std::string::npos) << e;
}

TEST(Child, OutputsStatusesAndSignals) {
  ChildResult r = run_child({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  EXPECT_TRUE(r.started);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.how(), "exit status 3");
  r = run_child({"/bin/sh", "-c", "kill -9 $$"}, {});
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(r.how(), "killed by signal 9");
  r = run_child({"/bin/sh", "-c", "read x; echo \"[$x]\""}, {});
  EXPECT_EQ(r.out, "[]\n") << "stdin is /dev/null";
  // Far more than a pipe holds, on both outputs: read as it comes, capped.
  r = run_child({"/bin/sh", "-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2"}, {}, 1000000);
  ASSERT_TRUE(r.ok()) << r.how();
  EXPECT_EQ(r.out.size(), 1000000u);
  EXPECT_EQ(r.err.size(), 1000000u);
}

TEST(Child, ProgramsThatCannotRun) {
  ChildResult r = run_child({"/nonexistent/pgbackrest"}, {});
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.how().find("No such file"), std::string::npos) << r.how();
  r = run_child({"pgbackrest"}, {});
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("absolute path"), std::string::npos);
  r = run_child({}, {});
  EXPECT_FALSE(r.started);
  r = run_child({temp_file("#!/bin/sh\n", 0644)}, {});
  EXPECT_FALSE(r.started) << "not executable";
  EXPECT_NE(r.error.find("Permission denied"), std::string::npos) << r.error;
}

TEST(Child, FindInPath) {
  EXPECT_EQ(find_in_path("sh", "/nonexistent:/bin"), std::optional<std::string>("/bin/sh"));
  EXPECT_FALSE(find_in_path("sh", "relative:/nonexistent"));
  EXPECT_FALSE(find_in_path("sh", ""));
  EXPECT_FALSE(find_in_path("../bin/sh", "/bin"));
  std::string plain = temp_file("#!/bin/sh\n", 0644);
  EXPECT_FALSE(find_in_path("pass", fs::path(plain).parent_path().string())) << "a file that is not executable";
  ::chmod(plain.c_str(), 0755);
  EXPECT_EQ(find_in_path("pass", fs::path(plain).parent_path().string()), std::optional<std::string>(plain));
}
