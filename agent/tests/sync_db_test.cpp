// FileSync against a real PostgreSQL with crawler_ha, when one is given:
// CRAWLER_SYNC_TEST_DB=<conninfo> (a scratch database: the test attaches
// stores to it). Without it the tests are skipped. No peer agent: this
// covers the attach, the inventory, recording uploads, the status and the
// orphan question; two agents end to end are tested elsewhere.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crawler/agent/file_sync.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"
#include "crawler/store_sync.hpp"

namespace fs = std::filesystem;
using namespace crawler::agent;

namespace {
std::string put_blob(const fs::path& root, const std::string& text, const std::string& ext) {
  crawler::Sha256 md;
  md.update(text.data(), text.size());
  std::string sha = md.hex_digest();
  fs::path p = root / crawler::blob_relative_path(sha, ext);
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
  return sha;
}

class SyncDb : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* db = std::getenv("CRAWLER_SYNC_TEST_DB");
    if (!db) GTEST_SKIP() << "set CRAWLER_SYNC_TEST_DB to a scratch database with crawler_ha";
    config.db = db;
    std::string t = (fs::temp_directory_path() / "sync-db-XXXXXX").string();
    root = ::mkdtemp(t.data());
    config.store = root.string();
    config.orphan_sweep_s = 3600;
    config.scrub_bytes_per_second = 1 << 20;
    config.scrub_min_age_s = 0;
  }
  void TearDown() override {
    if (!root.empty()) fs::remove_all(root);
  }

  // The status, asked through the loop as the server asks it.
  nlohmann::json status(FileSync& fs_) {
    std::optional<std::string> out;
    std::string err;
    bool answered = false;
    fs_.status([&](std::optional<std::string> j, std::string e) {
      out = std::move(j);
      err = std::move(e);
      answered = true;
    });
    while (!answered) {
      io.restart();
      io.run_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(out) << err;
    return out ? nlohmann::json::parse(*out) : nlohmann::json();
  }

  // Waits (at most 10 s) until `pred` holds for the status.
  bool wait_for(FileSync& f, const std::function<bool(const nlohmann::json&)>& pred) {
    for (int i = 0; i < 200; ++i) {
      auto j = status(f);
      if (!j.is_null() && pred(j)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  AgentConfig config;
  fs::path root;
  boost::asio::io_context io;
};
}  // namespace

TEST_F(SyncDb, AttachInventoryPutsAndReferenced) {
  put_blob(root, "one", "png");
  put_blob(root, "two", "jpg");
  std::ofstream(root / "junk.txt") << "x";
  crawler::FileStore store(root);
  crawler::StoreSync durability(root);
  {
    FileSync sync(config, store, durability, io);
    sync.start();
    ASSERT_TRUE(wait_for(sync, [](const nlohmann::json& j) {
      return j["agent"]["store_attached"] == true && j["blobs_held"] == 2;
    })) << status(sync).dump();
    EXPECT_FALSE(fs::exists(root / ".inventory-pending"));

    std::string three = put_blob(root, "three", "gif");
    sync.blob_put(three, 5, true);
    ASSERT_TRUE(wait_for(sync, [](const nlohmann::json& j) { return j["blobs_held"] == 3; }))
        << status(sync).dump();

    bool answered = false;
    sync.referenced({three}, [&](std::optional<std::vector<std::string>> r, std::string e) {
      ASSERT_TRUE(r) << e;
      EXPECT_TRUE(r->empty());  // no images row names it
      answered = true;
    });
    // This node is an async primary: answered ok at once.
    bool replicated = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // the mode is read every second
    sync.replicate(three, root / crawler::blob_relative_path(three, "gif"), [&](bool ok, std::string e) {
      EXPECT_TRUE(ok) << e;
      replicated = true;
    });
    for (int i = 0; i < 200 && !(answered && replicated); ++i) {
      io.restart();
      io.run_for(std::chrono::milliseconds(20));  // returns at once while nothing is posted
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(answered);
    EXPECT_TRUE(replicated);
    sync.stop(std::chrono::seconds(5));
  }
  // The same store again: attached without an inventory, nothing lost.
  FileSync again(config, store, durability, io);
  again.start();
  ASSERT_TRUE(wait_for(again, [](const nlohmann::json& j) {
    return j["agent"]["store_attached"] == true && j["blobs_held"] == 3;
  })) << status(again).dump();
  again.stop(std::chrono::seconds(5));
}

TEST_F(SyncDb, ScrubFindsACorruptCopy) {
  std::string sha = put_blob(root, "scrub me", "png");
  // Same size, other bytes: the inventory records it, the scrub finds it.
  std::ofstream(root / crawler::blob_relative_path(sha, "png"), std::ios::binary) << "scrub mX";
  crawler::FileStore store(root);
  crawler::StoreSync durability(root);
  FileSync sync(config, store, durability, io);
  sync.start();
  ASSERT_TRUE(wait_for(sync, [](const nlohmann::json& j) { return j["blobs_held"] == 0; }))
      << status(sync).dump();
  EXPECT_FALSE(fs::exists(root / crawler::blob_relative_path(sha, "png")));
  EXPECT_FALSE(fs::is_empty(root / ".corrupt"));
  sync.stop(std::chrono::seconds(5));
}

// No database at all: start() works, questions are answered with an error
// at once, a copy is refused (the mode is unknown), stop() is prompt.
TEST(SyncNoDb, AnswersWithoutTheDatabase) {
  std::string t = (fs::temp_directory_path() / "sync-nodb-XXXXXX").string();
  fs::path root = ::mkdtemp(t.data());
  AgentConfig config;
  config.db = "host=/nonexistent-socket-dir port=1 connect_timeout=1";
  config.store = root.string();
  crawler::FileStore store(root);
  crawler::StoreSync durability(root);
  boost::asio::io_context io;
  FileSync sync(config, store, durability, io);
  sync.start();
  int answers = 0;
  sync.status([&](std::optional<std::string> j, std::string e) {
    EXPECT_FALSE(j);
    EXPECT_FALSE(e.empty());
    ++answers;
  });
  sync.replicate(std::string(64, 'a'), root / "x.png", [&](bool ok, std::string e) {
    EXPECT_FALSE(ok);
    EXPECT_NE(e.find("unknown"), std::string::npos) << e;
    ++answers;
  });
  sync.blob_put(std::string(64, 'a'), 1, true);  // queued, never blocks
  for (int i = 0; i < 250 && answers < 2; ++i) {
    io.restart();
    io.run_for(std::chrono::milliseconds(20));  // returns at once while nothing is posted
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(answers, 2);
  auto t0 = std::chrono::steady_clock::now();
  sync.stop(std::chrono::seconds(5));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  fs::remove_all(root);
}
