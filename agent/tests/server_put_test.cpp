// PUT /api/blobs/<sha256>.<ext> against the real server, plain and TLS.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server_test_harness.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path stored_path(const Agent& agent, const std::string& sha, const std::string& ext) {
  return agent.store_root() / sha.substr(0, 2) / sha.substr(2, 2) / (sha + "." + ext);
}

Request put(const std::string& body, const std::string& sha, const std::string& ext = "png") {
  Request r;
  r.method = "PUT";
  r.path = "/api/blobs/" + sha + "." + ext;
  r.body = body;
  return r;
}

class PutTest : public ::testing::TestWithParam<bool> {};

TEST_P(PutTest, GoodPutStoresTheBytesAndAnswers201) {
  Agent agent(GetParam());
  std::string body = pattern(300000);
  std::string sha = sha256_of(body);
  Reply r = fetch(agent, put(body, sha));
  ASSERT_EQ(r.status, 201) << r.curl_error << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["sha256"], sha);
  EXPECT_EQ(j["size"], body.size());
  EXPECT_EQ(j["path"], sha.substr(0, 2) + "/" + sha.substr(2, 2) + "/" + sha + ".png");
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(read_file(stored_path(agent, sha, "png")), body);
  auto puts = agent.events().puts();
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].sha256, sha);
  EXPECT_EQ(puts[0].size, body.size());
  EXPECT_TRUE(puts[0].created);
  EXPECT_EQ(agent.events().replicated(), std::vector<std::string>{sha});
  EXPECT_TRUE(agent.temporaries().empty());
}

TEST_P(PutTest, ChunkedPutUnderTheLimitIsStored) {
  Agent agent(GetParam());
  std::string body = pattern(200000, 7);
  std::string sha = sha256_of(body);
  Request r = put(body, sha, "jpg");
  r.chunked = true;
  Reply reply = fetch(agent, r);
  ASSERT_EQ(reply.status, 201) << reply.curl_error << reply.body;
  EXPECT_EQ(read_file(stored_path(agent, sha, "jpg")), body);
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, PutTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "plain"; });

TEST(Put, SamePutAgainAnswers200WithoutReadingTheBody) {
  Agent agent(false);
  std::string body = pattern(1000);
  std::string sha = sha256_of(body);
  ASSERT_EQ(fetch(agent, put(body, sha)).status, 201);
  auto before = fs::last_write_time(stored_path(agent, sha, "png"));

  // A huge Content-Length and no body at all: the answer must come anyway.
  RawClient raw(agent.port());
  raw.send("PUT /api/blobs/" + sha + ".png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
           "\r\nExpect: 100-continue\r\nContent-Length: 1000000000000\r\n\r\n");
  std::string answer = raw.receive(3000, "}");
  ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ(answer.find("100 Continue"), std::string::npos);
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  auto j = nlohmann::json::parse(answer.substr(answer.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["created"], false);
  EXPECT_EQ(j["size"], 1000);
  EXPECT_TRUE(raw.closed_within(3000));
  EXPECT_EQ(fs::last_write_time(stored_path(agent, sha, "png")), before);

  auto puts = agent.events().puts();
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_FALSE(puts[1].created);
  EXPECT_EQ(agent.events().replicated().size(), 2u);
}

TEST(Put, SamePutAgainWithItsBodyKeepsTheConnectionUsable) {
  Agent agent(false);
  std::string body = pattern(1000);
  std::string sha = sha256_of(body);
  ASSERT_EQ(fetch(agent, put(body, sha)).status, 201);
  Reply r = fetch(agent, put(body, sha));
  EXPECT_EQ(r.status, 200) << r.curl_error;
  EXPECT_EQ(nlohmann::json::parse(r.body)["created"], false);
}

TEST(Put, WrongHashAnswers422AndLeavesNothing) {
  Agent agent(false);
  std::string body = pattern(200000);
  std::string claimed = sha256_of("other bytes");
  Reply r = fetch(agent, put(body, claimed));
  ASSERT_EQ(r.status, 422) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "hash_mismatch");
  EXPECT_EQ(j["expected"], claimed);
  EXPECT_EQ(j["actual"], sha256_of(body));
  EXPECT_FALSE(fs::exists(stored_path(agent, claimed, "png")));
  EXPECT_FALSE(fs::exists(stored_path(agent, sha256_of(body), "png")));
  EXPECT_TRUE(agent.temporaries().empty());
  EXPECT_TRUE(agent.events().puts().empty());
}

TEST(Put, ContentLengthOverTheLimitAnswers413AndCloses) {
  Agent agent(false, [](auto& c) { c.max_blob_bytes = 1000; });
  RawClient raw(agent.port());
  raw.send("PUT /api/blobs/" + sha256_of("x") + ".png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           kToken + "\r\nContent-Length: 1001\r\n\r\n");
  std::string answer = raw.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_NE(answer.find("blob_too_large"), std::string::npos);
  EXPECT_TRUE(raw.closed_within(3000));
}

TEST(Put, ChunkedBodyOverTheLimitAnswers413AndLeavesNothing) {
  Agent agent(false, [](auto& c) { c.max_blob_bytes = 100000; });
  std::string body = pattern(300000);
  Request r = put(body, sha256_of(body));
  r.chunked = true;
  Reply reply = fetch(agent, r);
  EXPECT_EQ(reply.status, 413) << reply.curl_error;
  EXPECT_TRUE(eventually([&] { return agent.temporaries().empty(); }));
  EXPECT_FALSE(fs::exists(stored_path(agent, sha256_of(body), "png")));

  // And the connection is closed after the 413, not read to the end.
  RawClient raw(agent.port());
  raw.send("PUT /api/blobs/" + sha256_of(body) + ".png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           kToken + "\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk = pattern(50000);
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  for (int i = 0; i < 3; ++i) raw.send(size_line + chunk + "\r\n");
  std::string answer = raw.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_TRUE(raw.closed_within(3000));
}

TEST(Put, CutOffUploadLeavesNoTemporaryFile) {
  Agent agent(false);
  std::string body = pattern(1 << 20);
  RawClient raw(agent.port());
  raw.send("PUT /api/blobs/" + sha256_of(body) + ".png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           kToken + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  raw.send(body.substr(0, body.size() / 2));
  // Half of the body is past the first buffer: a temporary file exists now.
  EXPECT_TRUE(eventually([&] { return !agent.temporaries().empty(); }));
  raw.close();
  EXPECT_TRUE(eventually([&] { return agent.temporaries().empty(); }));
  EXPECT_TRUE(agent.events().puts().empty());
  EXPECT_FALSE(fs::exists(stored_path(agent, sha256_of(body), "png")));
}

TEST(Put, MissingOrBadTokenAnswers401) {
  Agent agent(false);
  std::string body = pattern(100);
  Request r = put(body, sha256_of(body));
  r.token = false;
  Reply none = fetch(agent, r);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  EXPECT_EQ(nlohmann::json::parse(none.body)["error"], "unauthorized");
  r.headers = {"Authorization: Bearer wrong"};
  EXPECT_EQ(fetch(agent, r).status, 401);
  EXPECT_FALSE(fs::exists(stored_path(agent, sha256_of(body), "png")));
}

TEST(Put, BadNamesAnswer400) {
  Agent agent(false);
  std::string sha = sha256_of("x");
  for (const std::string& name : {sha, sha + ".PNG", sha.substr(1) + ".png", sha + ".p%2fg", sha + ".",
                                  std::string(64, 'G') + ".png", sha + "." + std::string(17, 'a')}) {
    Request r = put("x", "");
    r.path = "/api/blobs/" + name;
    Reply reply = fetch(agent, r);
    EXPECT_EQ(reply.status, 400) << name;
    EXPECT_EQ(nlohmann::json::parse(reply.body)["error"], "bad_blob_name") << name;
  }
}

TEST(Put, Expect100ContinueGetsContinueThen201) {
  Agent agent(false);
  std::string body = pattern(5000);
  std::string sha = sha256_of(body);
  RawClient raw(agent.port());
  raw.send("PUT /api/blobs/" + sha + ".gif HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
           "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  std::string interim = raw.receive(3000, "\r\n\r\n");
  ASSERT_EQ(interim.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim;
  raw.send(body);
  std::string answer = raw.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 201", 0), 0u) << answer;
}

TEST(Put, ReplicationFailureAnswers503AndKeepsTheBlob) {
  Agent agent(false);
  agent.events().fail_replication("peer unreachable");
  std::string body = pattern(1000);
  std::string sha = sha256_of(body);
  Reply r = fetch(agent, put(body, sha));
  EXPECT_EQ(r.status, 503);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "replication_failed");
  EXPECT_NE(j["message"].get<std::string>().find("peer unreachable"), std::string::npos);
  EXPECT_EQ(read_file(stored_path(agent, sha, "png")), body);
}

TEST(Put, WorkerUploadToANodeThatIsNotPrimaryAnswers503AndStoresNothing) {
  Agent agent(false);
  agent.events().not_primary("this node is the standby, not the primary");
  std::string body = pattern(1000, 7);
  std::string sha = sha256_of(body);
  Reply r = fetch(agent, put(body, sha));
  EXPECT_EQ(r.status, 503);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "not_primary");
  EXPECT_NE(j["message"].get<std::string>().find("standby"), std::string::npos);
  EXPECT_FALSE(fs::exists(stored_path(agent, sha, "png")));
  EXPECT_TRUE(agent.events().puts().empty());
  EXPECT_TRUE(agent.temporaries().empty());
}

TEST(Put, PeerCopyToANodeThatIsNotPrimaryIsStored) {
  Agent agent(false);
  agent.events().not_primary("this node is the standby, not the primary");
  std::string body = pattern(1000, 8);
  std::string sha = sha256_of(body);
  Request req = put(body, sha);
  req.headers.push_back(std::string(crawler::agent::kPeerCopyHeader) + ": 1");
  Reply r = fetch(agent, req);
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(read_file(stored_path(agent, sha, "png")), body);
  // Recorded, and not sent back onward: two nodes that both believe they
  // are primary would otherwise copy it to each other for ever.
  EXPECT_EQ(agent.events().puts().size(), 1u);
  EXPECT_TRUE(agent.events().replicated().empty());
  // A copy without the token is still refused: the header grants nothing.
  Request anonymous = put(body, sha);
  anonymous.headers.push_back(std::string(crawler::agent::kPeerCopyHeader) + ": 1");
  anonymous.token = false;
  EXPECT_EQ(fetch(agent, anonymous).status, 401);
}

// A store on a 1 MiB tmpfs; the test body runs where mounting is allowed
// (as root, or in a user namespace entered by re-running this test under
// unshare).
bool mount_small_tmpfs(const fs::path& dir) {
  return ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m") == 0;
}

void disk_full_scenario(const fs::path& mount_point) {
  {
    Agent agent(false, {}, mount_point / "store");
    std::string small = pattern(1000, 3);
    ASSERT_EQ(fetch(agent, put(small, sha256_of(small))).status, 201);

    std::string big = pattern(2 << 20, 4);
    Reply r = fetch(agent, put(big, sha256_of(big)));
    EXPECT_EQ(r.status, 507) << r.curl_error << r.body;
    if (!r.body.empty()) {
      EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "store_full");
    }
    EXPECT_TRUE(eventually([&] { return agent.temporaries().empty(); }));
    EXPECT_FALSE(fs::exists(stored_path(agent, sha256_of(big), "png")));

    // Reads go on.
    Request get;
    get.path = "/api/blobs/" + sha256_of(small);
    Reply g = fetch(agent, get);
    EXPECT_EQ(g.status, 200);
    EXPECT_EQ(g.body, small);
  }
}

// Runs `scenario` with a fresh 1 MiB tmpfs mounted at a temporary
// directory: as root directly, else re-running this test (`test_name`)
// under unshare as root of a user and mount namespace; skips only when
// neither can mount.
void on_small_tmpfs(const std::string& test_name, const std::function<void(const fs::path&)>& scenario) {
  if (const char* inner = std::getenv("AGENT_TEST_IN_NAMESPACE")) {
    ASSERT_TRUE(mount_small_tmpfs(inner)) << std::strerror(errno);
    scenario(inner);
    ::umount2(inner, MNT_DETACH);
    return;
  }
  TempDir dir;
  if (::geteuid() == 0) {
    if (!mount_small_tmpfs(dir.path)) GTEST_SKIP() << "root, but mount(tmpfs) failed: " << std::strerror(errno);
    scenario(dir.path);
    ::umount2(dir.path.c_str(), MNT_DETACH);
    return;
  }
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  fs::create_directories(dir.path / "mnt");
  std::string cmd = "AGENT_TEST_IN_NAMESPACE='" + (dir.path / "mnt").string() +
                    "' unshare --user --map-root-user --mount '" + std::string(self) + "' --gtest_filter=" +
                    test_name + " >'" + (dir.path / "out").string() + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = read_file(dir.path / "out");
  if (out.rfind("unshare", 0) == 0) GTEST_SKIP() << "neither root nor a user namespace: " << out;
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out;
}

TEST(Put, DiskFullAnswers507AndReadsGoOn) {
  on_small_tmpfs("Put.DiskFullAnswers507AndReadsGoOn", disk_full_scenario);
}

TEST(Put, ReadOnlyStoreAnswers503AndReadsGoOn) {
  on_small_tmpfs("Put.ReadOnlyStoreAnswers503AndReadsGoOn", [](const fs::path& mount_point) {
    Agent agent(false, {}, mount_point / "store");
    std::string small = pattern(1000, 5);
    ASSERT_EQ(fetch(agent, put(small, sha256_of(small))).status, 201);
    ASSERT_EQ(::mount(nullptr, mount_point.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0)
        << std::strerror(errno);
    std::string big = pattern(200000, 6);
    Reply r = fetch(agent, put(big, sha256_of(big)));
    EXPECT_EQ(r.status, 503) << r.curl_error << r.body;
    if (!r.body.empty()) {
      EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "store_unwritable");
    }
    EXPECT_TRUE(agent.temporaries().empty());
    Request get;
    get.path = "/api/blobs/" + sha256_of(small);
    EXPECT_EQ(fetch(agent, get).body, small);
  });
}

}  // namespace
