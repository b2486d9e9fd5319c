#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "crawler/store_sync.hpp"

namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  fs::path p = fs::temp_directory_path() / ("crawler-store-sync-" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}
}  // namespace

TEST(StoreSync, WaitReturnsOnceSynced) {
  crawler::StoreSync sync(scratch());
  std::string error;
  EXPECT_TRUE(sync.wait(&error)) << error;
  EXPECT_EQ(sync.syncs(), 1u);
  fs::remove_all(scratch());
}

TEST(StoreSync, AMissingRootIsRefused) {
  EXPECT_THROW(crawler::StoreSync(scratch() / "not-there"), std::runtime_error);
  fs::remove_all(scratch());
}

// Many writers at once: every one is answered, never on its own thread
// inside request(), and they share syncfs() calls.
TEST(StoreSync, ConcurrentRequestsShareSyncs) {
  crawler::StoreSync sync(scratch());
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> ok{0}, inside{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (i % 2) {
          std::string error;
          if (sync.wait(&error)) ok++;
        } else {
          auto me = std::this_thread::get_id();
          auto served = std::make_shared<std::promise<void>>();
          auto f = served->get_future();
          sync.request([&, me, served](bool good, std::string) {
            if (std::this_thread::get_id() == me) inside++;
            if (good) ok++;
            served->set_value();
          });
          f.wait();
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(inside.load(), 0);
  EXPECT_GE(sync.syncs(), 1u);
  EXPECT_LT(sync.syncs(), static_cast<std::uint64_t>(kThreads * kEach)) << "no request shared a syncfs";
  fs::remove_all(scratch());
}

// Requests still waiting when the object goes are served, not dropped.
TEST(StoreSync, DestructionServesWhatWasAsked) {
  std::atomic<int> served{0};
  {
    crawler::StoreSync sync(scratch());
    for (int i = 0; i < 20; ++i) sync.request([&](bool good, std::string) { served += good ? 1 : 100; });
  }
  EXPECT_EQ(served.load(), 20);
  fs::remove_all(scratch());
}
