// The decisions and arithmetic of file sync that need neither a database
// nor a peer: the scrub's rate, the replication decision, the orphan
// sweep's messages and guard, the status document.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crawler/agent/orphan_sweep.hpp"
#include "crawler/agent/pacer.hpp"
#include "crawler/agent/replicator.hpp"
#include "crawler/agent/status_json.hpp"

using namespace crawler::agent;
using namespace std::chrono;
using namespace std::chrono_literals;

TEST(Pacer, HoldsTheRate) {
  Pacer p(1000);  // 1000 bytes/s: 1 ms a byte
  auto t0 = Pacer::Clock::time_point{} + 100s;
  EXPECT_EQ(p.account(1000, t0), duration_cast<nanoseconds>(1s));
  // Read another 500 at once: wait for both.
  EXPECT_EQ(p.account(500, t0), duration_cast<nanoseconds>(1500ms));
  // After the sleep, on time: nothing more to wait beyond the next piece.
  EXPECT_EQ(p.account(500, t0 + 1500ms), duration_cast<nanoseconds>(500ms));
}

TEST(Pacer, WithinTheRateNoWait) {
  Pacer p(1'000'000);
  auto t0 = Pacer::Clock::time_point{} + 100s;
  EXPECT_EQ(p.account(1000, t0), duration_cast<nanoseconds>(1ms));
  EXPECT_EQ(p.account(1000, t0 + 10ms), nanoseconds(0));
}

TEST(Pacer, IdleTimeSavesAtMostTheBurst) {
  Pacer p(1000, 1s);
  auto t0 = Pacer::Clock::time_point{} + 100s;
  p.account(1000, t0);
  // An hour idle: only one second of credit; 3000 bytes cost 2 s of wait.
  auto later = t0 + 1h;
  EXPECT_EQ(p.account(3000, later), duration_cast<nanoseconds>(2s));
}

TEST(Pacer, AverageRateOverManyPieces) {
  Pacer p(256 * 1024);  // a piece per second
  auto now = Pacer::Clock::time_point{} + 100s;
  nanoseconds slept{0};
  for (int i = 0; i < 100; ++i) {
    auto w = p.account(256 * 1024, now);
    slept += w;
    now += w;
  }
  EXPECT_NEAR(duration<double>(slept).count(), 100.0, 0.01);
}

namespace {
NodeFacts facts(std::string role, std::string mode, std::string peer) {
  NodeFacts f;
  f.role = std::move(role);
  f.replication_mode = std::move(mode);
  f.peer_agent_url = std::move(peer);
  return f;
}
}  // namespace

TEST(Replicate, DecisionTable) {
  const std::string peer = "https://b:8000";
  EXPECT_EQ(replicate_action(std::nullopt), ReplicateAction::answer_fail);
  EXPECT_EQ(replicate_action(facts("primary", "async", peer)), ReplicateAction::answer_ok);
  EXPECT_EQ(replicate_action(facts("primary", "async", "")), ReplicateAction::answer_ok);
  EXPECT_EQ(replicate_action(facts("primary", "sync", peer)), ReplicateAction::copy);
  EXPECT_EQ(replicate_action(facts("primary", "sync", "")), ReplicateAction::answer_fail);
  EXPECT_EQ(replicate_action(facts("primary", "semi_sync", peer)), ReplicateAction::copy_or_degrade);
  EXPECT_EQ(replicate_action(facts("primary", "semi_sync", "")), ReplicateAction::answer_ok);
  // A standby's agent storing the primary's copy never sends it back.
  EXPECT_EQ(replicate_action(facts("standby", "sync", peer)), ReplicateAction::answer_ok);
  EXPECT_EQ(replicate_action(facts("primary", "quorum", peer)), ReplicateAction::answer_fail);
}

TEST(OrphanSweep, RequestAndReply) {
  auto req = nlohmann::json::parse(referenced_request({"a", "b"}));
  EXPECT_EQ(req["sha256"], nlohmann::json({"a", "b"}));
  auto ok = parse_referenced_reply(R"({"referenced":["b"]})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, std::vector<std::string>{"b"});
  EXPECT_TRUE(parse_referenced_reply(R"({"referenced":[]})"));
  EXPECT_FALSE(parse_referenced_reply(""));
  EXPECT_FALSE(parse_referenced_reply("<html>"));
  EXPECT_FALSE(parse_referenced_reply(R"({"referenced":"b"})"));
  EXPECT_FALSE(parse_referenced_reply(R"({"referenced":[1]})"));
  EXPECT_FALSE(parse_referenced_reply(R"({"other":[]})"));
  EXPECT_FALSE(parse_referenced_reply(R"(["b"])"));
}

TEST(OrphanSweep, RecentPutKeepsTheFile) {
  RecentPuts recent(60s);
  recent.note("a");
  int removed = 0;
  EXPECT_FALSE(recent.remove_unless_recent("a", [&] { ++removed; }));
  EXPECT_TRUE(recent.remove_unless_recent("b", [&] { ++removed; }));
  EXPECT_EQ(removed, 1);
  RecentPuts none(0s);
  none.note("a");
  std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(none.remove_unless_recent("a", [&] { ++removed; }));
}

TEST(OrphanSweep, ARecordedPutIsForgottenUnlessNotedAgain) {
  RecentPuts recent(600s);
  recent.note("a");
  recent.note("b");
  auto flushed = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2ms);
  recent.note("b");  // uploaded again after the batch was taken
  recent.forget_recorded({"a", "b", "c"}, flushed);
  EXPECT_FALSE(recent.is_recent("a"));
  EXPECT_TRUE(recent.is_recent("b"));
  EXPECT_FALSE(recent.is_recent("c"));
  int removed = 0;
  EXPECT_TRUE(recent.remove_unless_recent("a", [&] { ++removed; }));
  EXPECT_FALSE(recent.remove_unless_recent("b", [&] { ++removed; }));
  EXPECT_EQ(removed, 1);
}

TEST(Status, MergesTheAgentsFigures) {
  SyncStats s;
  s.blobs_fetched = 3;
  s.bytes_fetched = 300;
  s.fetches_in_flight = 2;
  s.attached = true;
  auto f = facts("standby", "sync", "https://a:8000");
  auto out = status_json(R"({"blobs_held":5,"corrupt_found":1})", s, f, "store-1", 7);
  ASSERT_TRUE(out);
  auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["blobs_held"], 5);
  EXPECT_EQ(j["corrupt_found"], 1);
  EXPECT_EQ(j["agent"]["blobs_fetched"], 3);
  EXPECT_EQ(j["agent"]["bytes_fetched"], 300);
  EXPECT_EQ(j["agent"]["fetches_in_flight"], 2);
  EXPECT_EQ(j["agent"]["peer_agent_url"], "https://a:8000");
  EXPECT_EQ(j["agent"]["store_id"], "store-1");
  EXPECT_EQ(j["agent"]["puts_queued"], 7);
  EXPECT_EQ(j["agent"]["store_attached"], true);
  auto unknown = nlohmann::json::parse(*status_json("{}", s, std::nullopt, "x", 0));
  EXPECT_TRUE(unknown["agent"]["peer_agent_url"].is_null());
  EXPECT_FALSE(status_json("[1]", s, f, "x", 0));
  EXPECT_FALSE(status_json("nope", s, f, "x", 0));
}
