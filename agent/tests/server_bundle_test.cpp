// The bundle route (several blobs in one answer) against the real server,
// read with curl and with the follower's own client.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "crawler/agent/peer_client.hpp"
#include "crawler/blob_bundle.hpp"
#include "server_test_harness.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

// An agent holding a small .png and a .jpg larger than one write.
struct Held {
  explicit Held(bool tls, std::function<void(crawler::agent::AgentConfig&)> tweak = {})
      : agent(tls, std::move(tweak)), small(pattern(1000, 3)), large(pattern(600 * 1024, 4)),
        small_sha(sha256_of(small)), large_sha(sha256_of(large)) {
    put(small_sha + ".png", small);
    put(large_sha + ".jpg", large);
  }
  void put(const std::string& name, const std::string& body) {
    Request r;
    r.method = "PUT";
    r.path = "/api/blobs/" + name;
    r.body = body;
    Reply reply = fetch(agent, r);
    if (reply.status != 201) throw std::runtime_error("setup PUT: " + reply.body + reply.curl_error);
  }
  Reply bundle(const std::string& body, bool token = true) {
    Request r;
    r.method = "POST";
    r.path = "/api/blobs/bundle";
    r.body = body;
    r.token = token;
    return fetch(agent, r);
  }
  Agent agent;
  std::string small, large, small_sha, large_sha;
};

std::string names(std::vector<std::string> list) { return nlohmann::json{{"blobs", list}}.dump(); }

class BundleTest : public ::testing::TestWithParam<bool> {};

TEST_P(BundleTest, ServesHeldAndAbsentBlobsInTheOrderAsked) {
  Held h(GetParam());
  const std::string absent = sha256_of("nobody stored this");
  // With its extension, absent, without one, and under an extension the
  // store does not hold it by (found all the same).
  Reply r = h.bundle(names({h.small_sha + ".png", absent, h.large_sha, h.small_sha + ".gif"}));
  ASSERT_EQ(r.status, 200) << r.body << r.curl_error;
  std::string expected = crawler::bundle_entry_line(h.small_sha, h.small.size()) + h.small +
                         crawler::bundle_absent_line(absent) +
                         crawler::bundle_entry_line(h.large_sha, h.large.size()) + h.large +
                         crawler::bundle_entry_line(h.small_sha, h.small.size()) + h.small;
  EXPECT_EQ(r.body.size(), expected.size());
  EXPECT_TRUE(r.body == expected);
  EXPECT_EQ(r.header("content-type"), "application/vnd.crawler-ha.bundle");
  EXPECT_EQ(r.header("content-length"), std::to_string(expected.size()));
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, BundleTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "plain"; });

TEST(Bundle, RefusesBadQueriesWithJsonErrors) {
  Held h(false);
  const std::string sha = h.small_sha;
  for (const std::string& body :
       {std::string("{"), std::string("[]"), std::string("{\"blobs\": []}"), std::string("{\"blobs\": \"x\"}"),
        names({sha.substr(1)}), names({sha + "."}), names({sha + ".PNG"}), names({"../" + sha}),
        names({sha + ".png/x"}), std::string("{\"blobs\": [null]}"), std::string("{\"blobs\": [7]}"),
        std::string("\xff\xfe"), names(std::vector<std::string>(257, sha))}) {
    Reply r = h.bundle(body);
    EXPECT_EQ(r.status, 400) << body.substr(0, 60);
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "bad_query") << body.substr(0, 60);
  }
  Reply huge = h.bundle(std::string(70 * 1024, ' '));
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(nlohmann::json::parse(huge.body)["error"], "query_too_large");
  // 110 x 600 KiB is over the 64 MiB a bundle holds.
  Reply big = h.bundle(names(std::vector<std::string>(110, h.large_sha)));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(nlohmann::json::parse(big.body)["error"], "bundle_too_large");
}

TEST(Bundle, IsAReadAuthorizedAsGetIs) {
  Held open(false);
  EXPECT_EQ(open.bundle(names({open.small_sha}), false).status, 200);
  Held closed(false, [](crawler::agent::AgentConfig& c) { c.read_token_required = true; });
  Reply refused = closed.bundle(names({closed.small_sha}), false);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(nlohmann::json::parse(refused.body)["error"], "unauthorized");
  EXPECT_EQ(closed.bundle(names({closed.small_sha}), true).status, 200);
  Request get;
  get.path = "/api/blobs/bundle";
  Reply wrong = fetch(closed.agent, get);
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("allow"), "POST");
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Bundle, ThePeerClientWritesEachBlobToItsPartFile) {
  Held h(true);
  TempDir dir;
  std::ofstream(dir.path / "token") << kToken << "\n";
  crawler::agent::TokenFile token(dir.path / "token");
  crawler::agent::Stopper stop;
  crawler::agent::PeerSettings settings;
  settings.ca_file = h.agent.cert().string();
  crawler::agent::PeerClient client(settings, token, stop);
  const std::string absent = sha256_of("absent");
  std::vector<crawler::agent::BundleItem> items(3);
  items[0] = {h.small_sha + ".png", h.small_sha, dir.path / "a.part", h.small.size()};
  items[1] = {absent + ".png", absent, dir.path / "b.part", 10};
  items[2] = {h.large_sha + ".jpg", h.large_sha, dir.path / "c.part", h.large.size()};
  auto got = client.download_bundle(h.agent.url("/api/blobs/bundle"), items);
  ASSERT_EQ(got.status, 200) << got.error;
  ASSERT_EQ(got.items.size(), 3u);
  EXPECT_TRUE(got.items[0].ok) << got.items[0].error;
  EXPECT_EQ(got.items[0].sha256, h.small_sha);
  EXPECT_EQ(file_text(items[0].part), h.small);
  EXPECT_FALSE(got.items[1].ok);
  EXPECT_EQ(got.items[1].status, 404);
  EXPECT_TRUE(got.items[1].discard);
  EXPECT_TRUE(got.items[2].ok) << got.items[2].error;
  EXPECT_EQ(got.items[2].sha256, h.large_sha);
  EXPECT_EQ(got.items[2].size, h.large.size());
  EXPECT_EQ(file_text(items[2].part), h.large);

  // A blob longer than its row says stops the bundle there: what came
  // before it is kept, it and what follows fail.
  items[0].max_bytes = 10;
  got = client.download_bundle(h.agent.url("/api/blobs/bundle"), items);
  EXPECT_FALSE(got.items[0].ok);
  EXPECT_NE(got.items[0].error.find("more than the 10"), std::string::npos) << got.items[0].error;
  EXPECT_FALSE(got.items[2].ok);
  EXPECT_TRUE(got.items[2].discard);

  // A peer without the route (an older agent) takes "bundle" for a blob
  // name that POST does not apply to, as it takes "bundles" here: 405,
  // which the follower answers by fetching one by one.
  got = client.download_bundle(h.agent.url("/api/blobs/bundles"), items);
  EXPECT_EQ(got.status, 405);
  EXPECT_FALSE(got.items[0].ok);
}

}  // namespace
