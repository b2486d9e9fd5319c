// The lag history behind the dashboard's graph (its window, its bound, a
// clock set back, its JSON), and the dashboard's routes on the real server:
// the page with a policy whose hashes are those of the script and style
// it serves, the history route and its token rule.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../src/server/app_routes.hpp"
#include "../src/server/lag_history.hpp"
#include "server_test_harness.hpp"

using crawler::agent::LagHistory;
using crawler::agent::LagSample;

namespace {

LagSample sample(std::int64_t at, std::optional<double> seconds, std::optional<std::int64_t> bytes) {
  LagSample s;
  s.at = at;
  s.lag_seconds = seconds;
  s.lag_bytes = bytes;
  return s;
}

std::vector<std::int64_t> times(const std::vector<LagSample>& samples) {
  std::vector<std::int64_t> out;
  for (const auto& s : samples) out.push_back(s.at);
  return out;
}

TEST(LagHistory, KeepsAnHourOfSamplesTakenEveryFiveSeconds) {
  EXPECT_EQ(LagHistory::kMaxSamples, 720u);
  EXPECT_EQ(LagHistory::kSampleInterval, std::chrono::seconds(5));
  LagHistory h;
  const std::int64_t t0 = 1'800'000'000;
  // Two hours of samples: only the last hour's 720 stay.
  for (std::int64_t i = 0; i < 1440; ++i) h.add(sample(t0 + 5 * i, 0.5, 100));
  const std::int64_t now = t0 + 5 * 1439;
  auto kept = h.samples(now);
  ASSERT_EQ(kept.size(), 720u);
  EXPECT_EQ(kept.front().at, now - 5 * 719);
  EXPECT_EQ(kept.back().at, now);
  for (std::size_t i = 1; i < kept.size(); ++i) EXPECT_LT(kept[i - 1].at, kept[i].at);
}

TEST(LagHistory, DropsWhatFellOutOfTheWindow) {
  LagHistory h(100, 60);
  h.add(sample(1000, 1.0, 1));
  h.add(sample(1030, 2.0, 2));
  h.add(sample(1060, 3.0, 3));
  EXPECT_EQ(times(h.samples(1060)), (std::vector<std::int64_t>{1000, 1030, 1060}));
  // Adding a sample ages the old ones out.
  h.add(sample(1061, 4.0, 4));
  EXPECT_EQ(times(h.samples(1061)), (std::vector<std::int64_t>{1030, 1060, 1061}));
  // Reading later without a new sample (the database down) shows only
  // what is still within the window of now.
  EXPECT_EQ(times(h.samples(1100)), (std::vector<std::int64_t>{1060, 1061}));
  EXPECT_TRUE(h.samples(5000).empty());
}

TEST(LagHistory, KeepsAtMostMaxSamplesDroppingTheOldest) {
  LagHistory h(3, 3600);
  for (std::int64_t t = 1; t <= 10; ++t) h.add(sample(t, static_cast<double>(t), t));
  EXPECT_EQ(times(h.samples(10)), (std::vector<std::int64_t>{8, 9, 10}));
}

TEST(LagHistory, AClockSetBackDropsTheSamplesLaterThanTheNewOne) {
  LagHistory h(100, 3600);
  h.add(sample(2000, 1.0, 1));
  h.add(sample(2005, 1.0, 1));
  h.add(sample(2010, 1.0, 1));
  h.add(sample(2003, 2.0, 2));  // the wall clock went back 7 s
  EXPECT_EQ(times(h.samples(2003)), (std::vector<std::int64_t>{2000, 2003}));
  // Two samples of the same second are both kept, in order.
  h.add(sample(2003, 3.0, 3));
  auto kept = h.samples(2003);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.back().lag_seconds, 3.0);
}

TEST(LagHistory, BoundsOfZeroMeanOne) {
  LagHistory h(0, 0);
  h.add(sample(10, 1.0, 1));
  h.add(sample(11, 2.0, 2));
  auto kept = h.samples(11);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].at, 11);
}

TEST(LagHistory, JsonHasEverySampleWithNullsForAStandby) {
  LagHistory h(100, 3600);
  h.add(sample(100, 0.25, 4096));
  h.add(sample(105, std::nullopt, std::nullopt));  // a standby: no lag measured
  h.add(sample(110, std::numeric_limits<double>::quiet_NaN(), 0));
  h.add(sample(115, std::numeric_limits<double>::infinity(), std::numeric_limits<std::int64_t>::max()));
  nlohmann::json j = h.to_json(115);
  ASSERT_TRUE(j.is_object());
  ASSERT_EQ(j.size(), 1u);
  ASSERT_TRUE(j["samples"].is_array());
  ASSERT_EQ(j["samples"].size(), 4u);
  EXPECT_EQ(j["samples"][0], nlohmann::json::parse(R"({"at":100,"lag_seconds":0.25,"lag_bytes":4096})"));
  EXPECT_EQ(j["samples"][1], nlohmann::json::parse(R"({"at":105,"lag_seconds":null,"lag_bytes":null})"));
  EXPECT_TRUE(j["samples"][2]["lag_seconds"].is_null()) << "NaN is no JSON number";
  EXPECT_EQ(j["samples"][2]["lag_bytes"], 0);
  EXPECT_TRUE(j["samples"][3]["lag_seconds"].is_null());
  EXPECT_EQ(j["samples"][3]["lag_bytes"].get<std::int64_t>(), std::numeric_limits<std::int64_t>::max());
  // The text is valid JSON (no NaN literal).
  EXPECT_FALSE(nlohmann::json::parse(j.dump(), nullptr, false).is_discarded());
  EXPECT_EQ(LagHistory().to_json(0).dump(), R"({"samples":[]})");
}

TEST(LagHistory, ReadersAndTheSamplerAtOnce) {
  LagHistory h(720, 3600);
  std::thread writer([&] {
    for (std::int64_t t = 0; t < 20000; ++t) h.add(sample(t, 1.0, t));
  });
  std::size_t seen = 0;
  for (int i = 0; i < 2000; ++i) {
    auto s = h.samples(20000);
    for (std::size_t k = 1; k < s.size(); ++k) ASSERT_LT(s[k - 1].at, s[k].at);
    ASSERT_LE(s.size(), 720u);
    seen += s.size();
  }
  writer.join();
  EXPECT_EQ(h.samples(19999).size(), 720u);
  (void)seen;
}

// --- the routes, on the real server (no database: the history stays empty) ---

std::string base64_sha256(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  unsigned char out[64] = {};
  int n = EVP_EncodeBlock(out, digest, SHA256_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

// What the one <tag>...</tag> of `page` holds.
std::string element(const std::string& page, const std::string& tag) {
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  auto a = page.find(open);
  auto b = page.find(close);
  if (a == std::string::npos || b == std::string::npos || page.find(open, a + 1) != std::string::npos) return "";
  return page.substr(a + open.size(), b - a - open.size());
}

test::Reply get(const test::Agent& agent, const std::string& path, bool token = false,
                const std::string& method = "GET") {
  test::Request r;
  r.method = method;
  r.path = path;
  r.token = token;
  return test::fetch(agent, r);
}

TEST(Dashboard, ThePageWithAPolicyAllowingExactlyItsScriptAndStyle) {
  test::Agent agent(true);
  test::Reply r = get(agent, "/");
  ASSERT_EQ(r.status, 200) << r.body << r.curl_error;
  EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.header("cache-control"), "no-cache");
  ASSERT_EQ(r.body.rfind("<!DOCTYPE html>", 0), 0u);
  const std::string script = element(r.body, "script"), style = element(r.body, "style");
  ASSERT_GT(script.size(), 1000u);
  ASSERT_GT(style.size(), 100u);
  const std::string policy = r.header("content-security-policy");
  EXPECT_EQ(policy.rfind("default-src 'self'; ", 0), 0u) << policy;
  EXPECT_NE(policy.find("script-src 'sha256-" + base64_sha256(script) + "';"), std::string::npos) << policy;
  EXPECT_NE(policy.find("style-src 'sha256-" + base64_sha256(style) + "';"), std::string::npos) << policy;
  EXPECT_EQ(policy.find("unsafe"), std::string::npos) << policy;
  EXPECT_NE(policy.find("img-src 'self' blob:"), std::string::npos) << policy;
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << policy;
  // Nothing from elsewhere: no external script, style or image.
  EXPECT_EQ(r.body.find("src=\"http"), std::string::npos);
  EXPECT_EQ(r.body.find("href=\"http"), std::string::npos);
  EXPECT_EQ(r.body.find("innerHTML"), std::string::npos) << "values reach the page as text only";

  test::Reply head = get(agent, "/", false, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("content-security-policy"), policy);
  test::Reply post = get(agent, "/", true, "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
  EXPECT_EQ(get(agent, "/?x=1").status, 400) << "the page takes no parameter";
  EXPECT_EQ(get(agent, "/index.html").status, 404);
}

TEST(Dashboard, LagHistoryIsAReadersRoute) {
  test::Agent open(false);
  test::Reply r = get(open, "/api/lag-history");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, R"({"samples":[]})") << "no database, no sampler";
  EXPECT_EQ(get(open, "/api/lag-history?limit=5").status, 400);
  EXPECT_EQ(get(open, "/api/lag-history", false, "POST").status, 405);

  test::Agent closed(false, [](crawler::agent::AgentConfig& c) { c.read_token_required = true; });
  EXPECT_EQ(get(closed, "/api/lag-history").status, 401);
  EXPECT_EQ(get(closed, "/api/lag-history", true).status, 200);
  EXPECT_EQ(get(closed, "/api/events", false).status, 401);
  EXPECT_EQ(get(closed, "/api/alerts", false).status, 401);
  // The page itself stays open: it asks for the token.
  EXPECT_EQ(get(closed, "/").status, 200);
}

TEST(Dashboard, DatabaseRoutesWithoutADatabaseAnswer503) {
  test::Agent agent(false);
  for (const char* path : {"/api/events", "/api/events?since=0&limit=10", "/api/alerts"}) {
    test::Reply r = get(agent, path);
    EXPECT_EQ(r.status, 503) << path << " " << r.body;
    EXPECT_NE(r.body.find("database_unavailable"), std::string::npos) << r.body;
  }
  test::Reply bad = get(agent, "/api/events?limit=1001");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("bad_parameter"), std::string::npos);
  EXPECT_EQ(get(agent, "/api/events?since=-1").status, 400);
  EXPECT_EQ(get(agent, "/api/events?page=2").status, 400);
}

}  // namespace

TEST(DashboardPolicy, InlineElementHashIsTheBrowsersAndRefusesAmbiguousPages) {
  using crawler::agent::inline_element_hash;
  // sha256 of nothing, in base64: the known vector.
  EXPECT_EQ(inline_element_hash("<p><script></script></p>", "script"),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
  EXPECT_THROW(inline_element_hash("<p>no script</p>", "script"), std::logic_error);
  EXPECT_THROW(inline_element_hash("<script>a</script><script>b</script>", "script"), std::logic_error);
  EXPECT_THROW(inline_element_hash("<script nonce=x>a</script>", "script"), std::logic_error);
  EXPECT_THROW(inline_element_hash("<script>never closed", "script"), std::logic_error);
}
