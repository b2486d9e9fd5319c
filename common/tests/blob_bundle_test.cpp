// The bundle body's format: written by the agent's bundle route, read by
// the peer client, with pieces cut at every possible place.
#include "crawler/blob_bundle.hpp"

#include <gtest/gtest.h>

#include <map>

using crawler::BundleReader;

namespace {
const std::string kA(64, 'a'), kB(64, 'b'), kC(64, 'c');

struct Seen {
  std::map<std::size_t, std::string> bytes;
  std::vector<std::size_t> ended, absent;
  std::map<std::size_t, std::uint64_t> sizes;
};

BundleReader reader(std::vector<std::string> names, Seen& seen) {
  BundleReader::Callbacks cb;
  cb.begin = [&](std::size_t i, std::uint64_t size) { seen.sizes[i] = size; return true; };
  cb.data = [&](std::size_t i, const char* d, std::size_t n) { seen.bytes[i].append(d, n); return true; };
  cb.end = [&](std::size_t i) { seen.ended.push_back(i); return true; };
  cb.absent = [&](std::size_t i) { seen.absent.push_back(i); return true; };
  return BundleReader(std::move(names), std::move(cb));
}

std::string body() {
  return crawler::bundle_entry_line(kA, 5) + "hello" + crawler::bundle_absent_line(kB) +
         crawler::bundle_entry_line(kC, 0);
}
}  // namespace

TEST(BlobBundle, ReadsEntriesAbsencesAndEmptyBlobsWhereverThePiecesAreCut) {
  const std::string b = body();
  for (std::size_t cut = 0; cut <= b.size(); ++cut) {
    Seen seen;
    auto r = reader({kA, kB, kC}, seen);
    ASSERT_TRUE(r.feed(b.data(), cut)) << cut << ": " << r.error();
    ASSERT_TRUE(r.feed(b.data() + cut, b.size() - cut)) << cut << ": " << r.error();
    EXPECT_TRUE(r.complete());
    EXPECT_EQ(seen.bytes[0], "hello");
    EXPECT_EQ(seen.sizes[0], 5u);
    EXPECT_EQ(seen.sizes[2], 0u);
    EXPECT_EQ(seen.ended, (std::vector<std::size_t>{0, 2}));
    EXPECT_EQ(seen.absent, (std::vector<std::size_t>{1}));
  }
  // One byte at a time.
  Seen seen;
  auto r = reader({kA, kB, kC}, seen);
  for (char c : b) ASSERT_TRUE(r.feed(&c, 1)) << r.error();
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(seen.bytes[0], "hello");
}

TEST(BlobBundle, ABodyThatEndsEarlyIsNotComplete) {
  const std::string b = body();
  Seen seen;
  auto r = reader({kA, kB, kC}, seen);
  ASSERT_TRUE(r.feed(b.data(), 70));  // inside "hello"
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.entries_done(), 0u);
  EXPECT_TRUE(seen.ended.empty());
}

TEST(BlobBundle, RefusesAnotherBlobOrOrder) {
  Seen seen;
  auto r = reader({kB, kA}, seen);
  std::string b = crawler::bundle_absent_line(kA);
  EXPECT_FALSE(r.feed(b.data(), b.size()));
  EXPECT_NE(r.error().find("not " + kB), std::string::npos) << r.error();
}

TEST(BlobBundle, RefusesMalformedLinesAndTrailingBytes) {
  for (std::string bad : {kA + "\n", kA + " \n", kA + " 12x\n", kA + " -1\n", "GG" + kA.substr(2) + " 1\n",
                          kA + " 99999999999999999999999\n", std::string(200, 'a')}) {
    Seen seen;
    auto r = reader({kA}, seen);
    EXPECT_FALSE(r.feed(bad.data(), bad.size())) << bad;
    EXPECT_FALSE(r.error().empty()) << bad;
  }
  Seen seen;
  auto r = reader({kA}, seen);
  std::string b = crawler::bundle_entry_line(kA, 1) + "xy";
  EXPECT_FALSE(r.feed(b.data(), b.size()));
  EXPECT_NE(r.error().find("after"), std::string::npos) << r.error();
}

TEST(BlobBundle, ACallbackCanStopTheReading) {
  BundleReader::Callbacks cb;
  cb.begin = [](std::size_t, std::uint64_t size) { return size <= 3; };  // e.g. over the expected size
  cb.data = [](std::size_t, const char*, std::size_t) { return true; };
  cb.end = cb.absent = [](std::size_t) { return true; };
  BundleReader r({kA}, cb);
  std::string b = crawler::bundle_entry_line(kA, 5) + "hello";
  EXPECT_FALSE(r.feed(b.data(), b.size()));
  EXPECT_TRUE(r.error().empty());
}
