// The store's identity file and inventory walk, against a real temporary
// directory holding the names a damaged or tampered store might have.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "crawler/agent/inventory.hpp"
#include "crawler/agent/store_id.hpp"
#include "crawler/agent/store_ops.hpp"

namespace fs = std::filesystem;
using namespace crawler::agent;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "sync-test-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

const std::string kA = "ab" "cd" + std::string(60, '1');
const std::string kB = "ab" "cd" + std::string(60, '2');
const std::string kC = "0f" "f0" + std::string(60, 'e');
}  // namespace

TEST(StoreId, ValidIds) {
  EXPECT_TRUE(valid_store_id("0b6f1c1e-7f51-4a0b-9a39-3f8a1c2d9e10"));
  EXPECT_TRUE(valid_store_id("a"));
  EXPECT_TRUE(valid_store_id("A.b:c_d-e"));
  EXPECT_FALSE(valid_store_id(""));
  EXPECT_FALSE(valid_store_id("-leading"));
  EXPECT_FALSE(valid_store_id("has space"));
  EXPECT_FALSE(valid_store_id("new\nline"));
  EXPECT_FALSE(valid_store_id(std::string(129, 'a')));
  EXPECT_TRUE(valid_store_id(std::string(128, 'a')));
}

TEST(StoreId, RandomUuidIsVersion4) {
  std::string a = random_uuid(), b = random_uuid();
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[8], '-');
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  EXPECT_TRUE(valid_store_id(a));
}

TEST(StoreId, CreatedOnceThenReadBack) {
  TempDir d;
  std::string id = load_or_create_store_id(d.path);
  EXPECT_TRUE(valid_store_id(id));
  EXPECT_TRUE(fs::exists(d.path / ".store-id"));
  EXPECT_FALSE(fs::exists(d.path / ".store-id.tmp"));
  EXPECT_EQ(load_or_create_store_id(d.path), id);
}

TEST(StoreId, WhitespaceAroundIsIgnored) {
  TempDir d;
  write(d.path / ".store-id", "  my-store-1 \r\n\n");
  EXPECT_EQ(load_or_create_store_id(d.path), "my-store-1");
}

TEST(StoreId, InvalidContentIsReplaced) {
  TempDir d;
  write(d.path / ".store-id", "../../etc/passwd");
  std::string id = load_or_create_store_id(d.path);
  EXPECT_NE(id, "../../etc/passwd");
  EXPECT_TRUE(valid_store_id(id));
  EXPECT_EQ(load_or_create_store_id(d.path), id);
}

TEST(StoreId, UnwritableStoreThrows) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes anywhere";
  TempDir d;
  fs::permissions(d.path, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(load_or_create_store_id(d.path), std::runtime_error);
  fs::permissions(d.path, fs::perms::owner_all);
}

TEST(BlobPath, Parses) {
  std::string sha, ext;
  EXPECT_TRUE(parse_blob_path("ab/cd/" + kA + ".png", &sha, &ext));
  EXPECT_EQ(sha, kA);
  EXPECT_EQ(ext, "png");
  EXPECT_TRUE(parse_blob_path("ab/cd/" + kA + ".a1b2c3d4e5f6g7h8", &sha, &ext));
}

TEST(BlobPath, RefusesHostileNames) {
  std::string sha, ext;
  for (const std::string& bad : {
           "ab/cd/" + kA,                          // no extension
           "ab/cd/" + kA + ".",                    // empty extension
           "ab/cd/" + kA + ".PNG",                 // upper case
           "ab/cd/" + kA + ".p/g",                 // a slash in the extension
           "ab/cd/" + kA + "./../../x",            // climbing out
           "ab/cd/" + kA + ".a1b2c3d4e5f6g7h8i",   // 17 characters
           "ab/ce/" + kA + ".png",                 // wrong directory
           "ac/cd/" + kA + ".png",
           "AB/CD/" + kA + ".png",
           "../cd/" + kA + ".png",
           "ab/cd/" + std::string("ABCD") + std::string(60, '1') + ".png",  // upper-case hex
           "ab/cd/" + kA.substr(0, 63) + ".png",   // 63 digits
           "ab/cd/" + kA + "0.png",                // 65 digits
           "/ab/cd/" + kA + ".png",
           "ab/cd/" + kA + std::string(".pn\0g", 5),  // a NUL byte
       })
    EXPECT_FALSE(parse_blob_path(bad, &sha, &ext)) << bad;
}

TEST(Inventory, WalksOnlyBlobFilesAndBatches) {
  TempDir d;
  fs::path r = d.path;
  write(r / "ab/cd" / (kA + ".png"), "aaaa");
  write(r / "ab/cd" / (kB + ".jpg"), "bb");
  write(r / "0f/f0" / (kC + ".gif"), "c");
  write(r / "ab/cd" / (kA + ".jpg"), "aaaa");               // same blob, second name
  write(r / "ab/cd" / (kA + ".PNG"), "x");                  // upper-case extension
  write(r / "ab/cd" / (kA), "x");                           // no extension
  write(r / "ab/ce" / (kA + ".png"), "x");                  // wrong directory
  write(r / "AB/cd" / (kA + ".png"), "x");
  write(r / "ab/cd/nested" / (kA + ".png"), "x");           // deeper
  write(r / ".tmp" / ("fetch-" + kA + ".part"), "x");
  write(r / ".corrupt" / (kB + ".jpg.20260101T000000Z"), "x");
  write(r / ".store-id", "id");
  write(r / "ab/cd" / ("weird name\n" + kA + ".png"), "x");
  fs::create_directories(r / "outside/ab");
  write(r / "outside/ab/cd" / (kB + ".png"), "x");
  fs::create_directory_symlink(r / "outside/ab", r / "cd");  // a linked directory
  fs::create_symlink(r / "ab/cd" / (kB + ".jpg"), r / "0f/f0" / ("0ff0" + std::string(60, 'd') + ".png"));

  std::vector<std::vector<StoredBlob>> batches;
  WalkFigures fig;
  ASSERT_TRUE(walk_store(r, 2, [&](std::vector<StoredBlob>& b) {
    batches.push_back(b);
    return true;
  }, &fig));
  std::vector<StoredBlob> all;
  for (auto& b : batches) {
    EXPECT_LE(b.size(), 2u);
    all.insert(all.end(), b.begin(), b.end());
  }
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(batches.size(), 2u);
  EXPECT_EQ(fig.blobs, 3u);
  EXPECT_EQ(fig.bytes, 4u + 2u + 1u);
  EXPECT_EQ(fig.duplicates, 1u);
  EXPECT_GE(fig.ignored, 7u);
  std::map<std::string, std::uint64_t> sizes;
  for (auto& b : all) sizes[b.sha256] = b.size;
  EXPECT_EQ(sizes[kA], 4u);
  EXPECT_EQ(sizes[kB], 2u);
  EXPECT_EQ(sizes[kC], 1u);
}

TEST(Inventory, SinkCanStopTheWalk) {
  TempDir d;
  write(d.path / "ab/cd" / (kA + ".png"), "a");
  write(d.path / "ab/cd" / (kB + ".png"), "b");
  WalkFigures fig;
  int calls = 0;
  EXPECT_FALSE(walk_store(d.path, 1, [&](std::vector<StoredBlob>&) { return ++calls < 1; }, &fig));
  EXPECT_EQ(calls, 1);
}

TEST(Inventory, EmptyStoreCallsNothing) {
  TempDir d;
  WalkFigures fig;
  int calls = 0;
  EXPECT_TRUE(walk_store(d.path, 10, [&](std::vector<StoredBlob>&) { return ++calls > 0; }, &fig));
  EXPECT_EQ(calls, 0);
}

TEST(StoreOps, InstallMakesDirectoriesOnlyWhenMissingAndReportsAMissingSource) {
  TempDir d;
  std::string error;
  write(d.path / ".tmp/one.part", "one");
  write(d.path / ".tmp/two.part", "two");
  fs::path first = fs::path("ab/cd") / (kA + ".png");
  fs::path second = fs::path("ab/cd") / (kA + ".jpg");
  ASSERT_TRUE(install_file(d.path / ".tmp/one.part", d.path, first, &error)) << error;  // makes ab/cd/
  ASSERT_TRUE(install_file(d.path / ".tmp/two.part", d.path, second, &error)) << error;  // ab/cd/ exists
  EXPECT_TRUE(fs::exists(d.path / first));
  EXPECT_TRUE(fs::exists(d.path / second));
  // A part file that is gone: an error naming the rename.
  EXPECT_FALSE(install_file(d.path / ".tmp/gone.part", d.path, fs::path("ef/01") / (kA + ".png"), &error));
  EXPECT_NE(error.find("cannot rename"), std::string::npos) << error;
}

TEST(StoreOps, InstallMovesAsideAndRemoves) {
  TempDir d;
  write(d.path / ".tmp/fetch.part", "hello");
  std::string error;
  fs::path rel = fs::path("ab/cd") / (kA + ".png");
  ASSERT_TRUE(install_file(d.path / ".tmp/fetch.part", d.path, rel, &error)) << error;
  EXPECT_TRUE(fs::exists(d.path / rel));
  EXPECT_FALSE(fs::exists(d.path / ".tmp/fetch.part"));
  fs::path aside = move_aside(d.path, d.path / rel, &error);
  ASSERT_FALSE(aside.empty()) << error;
  EXPECT_EQ(aside.parent_path(), d.path / ".corrupt");
  EXPECT_EQ(aside.filename().string().rfind(kA + ".png.", 0), 0u);
  EXPECT_FALSE(fs::exists(d.path / rel));
  EXPECT_TRUE(remove_durably(aside, &error)) << error;
  EXPECT_FALSE(fs::exists(aside));
  EXPECT_TRUE(remove_durably(aside, &error));  // already gone: fine
}
