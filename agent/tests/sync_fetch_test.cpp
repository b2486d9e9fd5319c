// Transfers against a real HTTP server: nginx (which answers Range requests
// as a peer agent must), started on a free port for this test binary. The
// peer's routes are played by nginx locations: /api/blobs/<sha256> serves
// files and needs the bearer token; /norange/ ignores Range (answers 200);
// PUT answers 201; POST /api/blobs/referenced answers a fixed list.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "crawler/agent/follower.hpp"
#include "crawler/agent/orphan_sweep.hpp"
#include "crawler/agent/peer_client.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"
#include "crawler/store_sync.hpp"

extern char** environ;
namespace fs = std::filesystem;
using namespace crawler::agent;

namespace {
std::string sha_of(const std::string& s) {
  crawler::Sha256 md;
  md.update(s.data(), s.size());
  return md.hex_digest();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

class Peer : public ::testing::Test {
 protected:
  static inline fs::path dir;
  static inline pid_t pid = 0;
  static inline std::string url;
  static inline std::string body;  // a 1 MiB blob, resumable
  static inline std::string sha;

  static void SetUpTestSuite() {
#ifndef CRAWLER_NGINX
    GTEST_SKIP() << "nginx not found at configure time";
#else
    std::string t = (fs::temp_directory_path() / "sync-peer-XXXXXX").string();
    dir = ::mkdtemp(t.data());
    // nginx's workers may run as another user (nobody, when the test is
    // root): they must read the blobs.
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    fs::create_directories(dir / "blobs");
    fs::create_directories(dir / "temp");
    body.resize(1 << 20);
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 7919) >> 3);
    sha = sha_of(body);
    write(dir / "blobs" / sha, body);
    int port = free_port();
    url = "http://127.0.0.1:" + std::to_string(port);
    std::string d = dir.string();
    write(dir / "nginx.conf",
          "pid " + d + "/nginx.pid;\nerror_log " + d + "/error.log;\nevents {}\nhttp {\n"
          "  access_log " + d + "/access.log;\n"
          "  client_body_temp_path " + d + "/temp; proxy_temp_path " + d + "/temp;\n"
          "  fastcgi_temp_path " + d + "/temp; uwsgi_temp_path " + d + "/temp; scgi_temp_path " + d + "/temp;\n"
          "  server {\n    listen 127.0.0.1:" + std::to_string(port) + ";\n"
          "    location = /api/blobs/referenced { default_type application/json;\n"
          "      return 200 '{\"referenced\":[\"" + sha + "\"]}'; }\n"
          "    location /api/blobs/ {\n"
          "      if ($http_authorization != \"Bearer s3cret\") { return 401; }\n"
          "      if ($request_method = PUT) { return 201; }\n"
          "      alias " + d + "/blobs/;\n    }\n"
          "    location /norange/api/blobs/ { max_ranges 0; alias " + d + "/blobs/; }\n"
          "  }\n}\n");
    write(dir / "token", "s3cret\n");
    std::vector<std::string> args = {CRAWLER_NGINX, "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf",
                                     "-g", "daemon off;"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(::posix_spawn(&pid, CRAWLER_NGINX, nullptr, nullptr, argv.data(), environ), 0);
    // Up when it answers.
    for (int i = 0; i < 100; ++i) {
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool up = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(s);
      if (up) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "nginx did not start: " << read(dir / "error.log");
#endif
  }

  static void TearDownTestSuite() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) fs::remove_all(dir);
  }

  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "sync-store-XXXXXX").string();
    root = ::mkdtemp(t.data());
    store = std::make_unique<crawler::FileStore>(root);
    durability = std::make_unique<crawler::StoreSync>(root);
  }
  void TearDown() override { fs::remove_all(root); }

  fs::path part() const {
    fs::path p = crawler::agent::fetch_part_path(root, sha);
    fs::create_directories(p.parent_path());  // as the follower makes it
    return p;
  }
  Wanted wanted() const { return Wanted{sha, sha.substr(0, 2) + "/" + sha.substr(2, 2) + "/" + sha + ".bin", body.size(), 0}; }

  fs::path root;
  std::unique_ptr<crawler::FileStore> store;
  std::unique_ptr<crawler::StoreSync> durability;
  Stopper stop;
  TokenFile token{dir / "token"};
  SyncStats stats;
};
}  // namespace

TEST_F(Peer, DownloadsWholeBlob) {
  PeerClient c(PeerSettings{}, token, stop);
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.status, 200);
  EXPECT_FALSE(d.resumed);
  EXPECT_EQ(d.size, body.size());
  EXPECT_EQ(read(part()), body);
  EXPECT_EQ(d.sha256, sha);  // hashed as it arrived
}

TEST_F(Peer, ResumesAPartialFileWithRange) {
  write(part(), body.substr(0, 300000));
  PeerClient c(PeerSettings{}, token, stop);
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.status, 206);
  EXPECT_TRUE(d.resumed);
  EXPECT_EQ(d.received, body.size() - 300000);
  EXPECT_EQ(read(part()), body);
  EXPECT_EQ(d.sha256, sha);  // the kept bytes hashed, then the rest as it arrived
}

TEST_F(Peer, StartsOverWhenRangeIsIgnored) {
  write(part(), std::string(1000, 'x'));
  PeerClient c(PeerSettings{}, token, stop);
  Download d = c.download(url + "/norange/api/blobs/" + sha, part(), body.size());
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.status, 200);
  EXPECT_TRUE(d.restarted);
  EXPECT_EQ(read(part()), body);
  EXPECT_EQ(d.sha256, sha);  // the discarded bytes are not in the hash
}

TEST_F(Peer, CompletePartAnswered416) {
  write(part(), body);
  PeerClient c(PeerSettings{}, token, stop);
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.status, 416);
  EXPECT_TRUE(d.sha256.empty());
  EXPECT_EQ(read(part()), body);  // left for the hash to judge
  // fetch_blob takes it as the whole blob once it hashes right.
  FetchOutcome o = fetch_blob(wanted(), url, c, *store, *durability, stats);
  EXPECT_TRUE(o.ok) << o.error;
}

TEST_F(Peer, WrongTokenIsRefusedAndPartKept) {
  write(dir / "token2", "wrong");
  TokenFile bad(dir / "token2");
  write(part(), body.substr(0, 10));
  PeerClient c(PeerSettings{}, bad, stop);
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.status, 401);
  EXPECT_NE(d.error.find("HTTP 401"), std::string::npos) << d.error;
  EXPECT_EQ(read(part()), body.substr(0, 10));
}

TEST_F(Peer, TooLongBodyIsDiscarded) {
  PeerClient c(PeerSettings{}, token, stop);
  Download d = c.download(url + "/api/blobs/" + sha, part(), 1000);
  EXPECT_FALSE(d.ok);
  EXPECT_TRUE(d.discard);
}

TEST_F(Peer, BandwidthLimitSlowsTheTransfer) {
  SharedPacer pacer(1 << 20);  // 1 MiB takes about 1 s
  PeerSettings s;
  s.download_pacer = &pacer;
  PeerClient c(s, token, stop);
  auto t0 = std::chrono::steady_clock::now();
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_GT(secs, 0.9);
  EXPECT_LT(secs, 3.0);
}

TEST_F(Peer, FetchBlobInstallsVerifiedFile) {
  write(part(), body.substr(0, 5000));  // resumed
  PeerClient c(PeerSettings{}, token, stop);
  FetchOutcome o = fetch_blob(wanted(), url, c, *store, *durability, stats);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.size, body.size());
  fs::path dest = root / wanted().file_path;
  EXPECT_EQ(read(dest), body);
  EXPECT_FALSE(fs::exists(part()));
  EXPECT_EQ(stats.blobs_fetched, 1u);
  // Asked again: already held, verified, nothing fetched.
  FetchOutcome again = fetch_blob(wanted(), url, c, *store, *durability, stats);
  EXPECT_TRUE(again.ok);
  EXPECT_EQ(stats.blobs_fetched, 1u);
}

TEST_F(Peer, HashMismatchDeletesThePartial) {
  write(part(), std::string(5000, 'x'));  // wrong bytes; the rest resumes after them
  PeerClient c(PeerSettings{}, token, stop);
  FetchOutcome o = fetch_blob(wanted(), url, c, *store, *durability, stats);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.error.find("hash to"), std::string::npos) << o.error;
  EXPECT_FALSE(fs::exists(part()));
  EXPECT_FALSE(store->find(sha));
  // The next attempt starts clean and succeeds.
  FetchOutcome o2 = fetch_blob(wanted(), url, c, *store, *durability, stats);
  EXPECT_TRUE(o2.ok) << o2.error;
}

TEST_F(Peer, BadCopyInStoreIsMovedAsideAndRefetched) {
  fs::path dest = root / wanted().file_path;
  write(dest, "rotten");
  PeerClient c(PeerSettings{}, token, stop);
  FetchOutcome o = fetch_blob(wanted(), url, c, *store, *durability, stats);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(read(dest), body);
  ASSERT_TRUE(fs::exists(root / ".corrupt"));
  EXPECT_FALSE(fs::is_empty(root / ".corrupt"));
}

TEST_F(Peer, MissingBlobAndHostilePathFail) {
  PeerClient c(PeerSettings{}, token, stop);
  std::string other = sha_of("other");
  Wanted w{other, other.substr(0, 2) + "/" + other.substr(2, 2) + "/" + other + ".bin", 5, 0};
  FetchOutcome o = fetch_blob(w, url, c, *store, *durability, stats);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.error.find("HTTP 404"), std::string::npos) << o.error;
  Wanted hostile = wanted();
  hostile.file_path = "../../" + sha + ".bin";
  o = fetch_blob(hostile, url, c, *store, *durability, stats);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.error.find("is not ab/cd/"), std::string::npos) << o.error;
  o = fetch_blob(wanted(), "", c, *store, *durability, stats);
  EXPECT_FALSE(o.ok);
}

TEST_F(Peer, UnreachablePeerKeepsThePartial) {
  write(part(), body.substr(0, 100));
  PeerSettings s;
  s.timeout_ms = 500;
  PeerClient c(s, token, stop);
  FetchOutcome o = fetch_blob(wanted(), "http://127.0.0.1:" + std::to_string(free_port()), c, *store, *durability, stats);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(read(part()), body.substr(0, 100));
}

TEST_F(Peer, PutAndReferencedQuestion) {
  fs::path f = root / "x.png";
  write(f, body);
  PeerClient c(PeerSettings{}, token, stop);
  Reply r = c.put_file(url + "/api/blobs/" + sha + ".png", f, 5000);
  EXPECT_EQ(r.status, 201) << r.error;
  Reply q = c.post_json(url + "/api/blobs/referenced", referenced_request({sha, sha_of("x")}));
  ASSERT_EQ(q.status, 200) << q.error;
  auto refs = parse_referenced_reply(q.body);
  ASSERT_TRUE(refs);
  EXPECT_EQ(*refs, std::vector<std::string>{sha});
}

TEST_F(Peer, StopAbortsATransfer) {
  SharedPacer pacer(64 * 1024);  // 16 s for the whole blob
  PeerSettings s;
  s.download_pacer = &pacer;
  PeerClient c(s, token, stop);
  std::thread stopper([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  Download d = c.download(url + "/api/blobs/" + sha, part(), body.size());
  stopper.join();
  EXPECT_FALSE(d.ok);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  EXPECT_GT(fs::file_size(part()), 0u);  // kept to resume
}
