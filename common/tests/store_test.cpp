#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crawler/store.hpp"

namespace fs = std::filesystem;

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("crawler-store-" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  int files_under(const fs::path& p) {
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file()) ++n;
    return n;
  }
  std::string put(crawler::FileStore& store, const std::string& bytes) {
    std::string err, sha, rel;
    auto f = store.create(&err);
    EXPECT_TRUE(f) << err;
    // in small pieces, as the network delivers them
    for (std::size_t i = 0; i < bytes.size(); i += 7)
      EXPECT_TRUE(f->write(bytes.data() + i, std::min<std::size_t>(7, bytes.size() - i)));
    EXPECT_TRUE(f->finish(&sha));
    EXPECT_TRUE(f->commit("png", &rel)) << f->error();
    return rel;
  }
  fs::path root_;
};

TEST_F(Store, ContentAddressedPathAndSha256) {
  crawler::FileStore store(root_);
  std::string rel = put(store, "abc");
  // sha256("abc")
  EXPECT_EQ(rel, "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.png");
  std::ifstream in(root_ / rel);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "abc");
}

TEST_F(Store, SameBytesMakeOneFile) {
  crawler::FileStore store(root_);
  std::string big(300000, 'x');  // larger than the write buffer
  EXPECT_EQ(put(store, big), put(store, big));
  EXPECT_EQ(files_under(root_), 1);
  EXPECT_EQ(files_under(root_ / ".tmp"), 0);
}

TEST_F(Store, AbandonedFileLeavesNothingBehind) {
  crawler::FileStore store(root_);
  {
    std::string err;
    auto f = store.create(&err);
    ASSERT_TRUE(f);
    std::string partial(100000, 'p');  // more than the buffer: the file is made
    ASSERT_TRUE(f->write(partial.data(), partial.size()));
    EXPECT_TRUE(fs::exists(f->temp_path()));
  }  // dropped: the download failed
  EXPECT_EQ(files_under(root_), 0);
}

TEST_F(Store, SmallBodyKeptInMemoryMakesNoFile) {
  crawler::FileStore store(root_);
  std::string err, sha;
  const std::uint64_t before = crawler::PendingFile::memory_held();
  {
    auto f = store.create(&err);
    ASSERT_TRUE(f) << err;
    std::string body(60000, 'm');
    ASSERT_TRUE(f->write(body.data(), body.size()));
    ASSERT_TRUE(f->finish_in_memory(&sha, 1 << 20));
    ASSERT_NE(f->memory(), nullptr);
    EXPECT_EQ(*f->memory(), body);
    EXPECT_TRUE(f->temp_path().empty());
    EXPECT_EQ(files_under(root_), 0);
    EXPECT_EQ(crawler::PendingFile::memory_held(), before + 60000);
    EXPECT_EQ(sha.size(), 64u);
  }
  EXPECT_EQ(crawler::PendingFile::memory_held(), before);  // given back with the file
}

TEST_F(Store, InMemoryBeyondTheBudgetOrTheBufferIsAFile) {
  crawler::FileStore store(root_);
  std::string err, sha1, sha2, sha3;
  const std::uint64_t before = crawler::PendingFile::memory_held();
  auto a = store.create(&err), b = store.create(&err), c = store.create(&err);
  std::string small(1000, 's'), other(1000, 't'), big(100000, 'b');
  ASSERT_TRUE(a->write(small.data(), small.size()));
  ASSERT_TRUE(b->write(other.data(), other.size()));
  ASSERT_TRUE(c->write(big.data(), big.size()));  // past the buffer: its file exists
  ASSERT_TRUE(a->finish_in_memory(&sha1, before + 1500));
  ASSERT_TRUE(b->finish_in_memory(&sha2, before + 1500));  // 2000 bytes would pass the budget
  ASSERT_TRUE(c->finish_in_memory(&sha3, 1ull << 40));
  EXPECT_NE(a->memory(), nullptr);
  EXPECT_EQ(b->memory(), nullptr);
  EXPECT_EQ(c->memory(), nullptr);
  EXPECT_FALSE(b->temp_path().empty());
  EXPECT_FALSE(c->temp_path().empty());
  EXPECT_EQ(files_under(root_ / ".tmp"), 2);
  EXPECT_EQ(crawler::PendingFile::memory_held(), before + 1000);
}

TEST_F(Store, CommitOfABodyKeptInMemoryWritesIt) {
  crawler::FileStore store(root_);
  std::string err, sha, rel;
  const std::uint64_t before = crawler::PendingFile::memory_held();
  auto f = store.create(&err);
  ASSERT_TRUE(f->write("abc", 3));
  ASSERT_TRUE(f->finish_in_memory(&sha, 1 << 20));
  ASSERT_TRUE(f->commit("png", &rel)) << f->error();
  EXPECT_EQ(rel, "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.png");
  std::ifstream in(root_ / rel);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "abc");
  EXPECT_EQ(f->memory(), nullptr);
  EXPECT_EQ(crawler::PendingFile::memory_held(), before);
}

TEST_F(Store, HeadKeepsTheFirstBytes) {
  crawler::FileStore store(root_);
  std::string err;
  auto f = store.create(&err);
  std::string data(10000, 'z');
  data[0] = 'A';
  f->write(data.data(), data.size());
  EXPECT_EQ(f->head().size(), 4096u);
  EXPECT_EQ(f->head()[0], 'A');
  EXPECT_EQ(f->size(), 10000u);
}

TEST_F(Store, StaleTemporariesOfDeadProcessesAreRemoved) {
  crawler::FileStore store(root_);
  std::ofstream(root_ / ".tmp" / "part-999999999-abcdef") << "left by a crash";
  std::string err;
  auto mine = store.create(&err);  // a live one of this process stays
  std::string sha;
  ASSERT_TRUE(mine->finish(&sha));  // makes its file
  EXPECT_EQ(store.remove_stale_temporaries(), 1);
  EXPECT_TRUE(fs::exists(mine->temp_path()));
}
