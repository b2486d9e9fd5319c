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
