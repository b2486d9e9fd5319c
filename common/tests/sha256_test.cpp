#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "crawler/sha256.hpp"
#include "crawler/store.hpp"

namespace fs = std::filesystem;

TEST(Sha256, KnownDigests) {
  crawler::Sha256 empty;
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  crawler::Sha256 abc;
  abc.update("a", 1);
  abc.update("bc", 2);
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, NameCheck) {
  EXPECT_TRUE(crawler::is_sha256_hex(std::string(64, 'a')));
  EXPECT_FALSE(crawler::is_sha256_hex(std::string(64, 'A')));
  EXPECT_FALSE(crawler::is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(crawler::is_sha256_hex(std::string(63, 'a') + "/"));
  EXPECT_FALSE(crawler::is_sha256_hex(""));
}

TEST(Sha256, FileAndFind) {
  fs::path root = fs::temp_directory_path() / ("crawler-sha-" + std::to_string(::getpid()));
  fs::remove_all(root);
  crawler::FileStore store(root);
  std::string err, sha, rel;
  auto f = store.create(&err);
  ASSERT_TRUE(f) << err;
  ASSERT_TRUE(f->write("abc", 3));
  ASSERT_TRUE(f->finish(&sha));
  ASSERT_TRUE(f->commit("png", &rel));
  EXPECT_EQ(rel, crawler::blob_relative_path(sha, "png").string());
  auto found = store.find(sha);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, root / rel);
  std::uint64_t n = 0;
  EXPECT_EQ(crawler::sha256_file(*found, &err, &n).value_or(""), sha);
  EXPECT_EQ(n, 3u);
  EXPECT_FALSE(store.find(std::string(64, '0')));
  EXPECT_FALSE(store.find("../../etc/passwd"));
  EXPECT_FALSE(crawler::sha256_file(root / "missing", &err));
  fs::remove_all(root);
}
