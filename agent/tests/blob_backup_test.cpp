// The blobs of a backup without a database: the object format (round trip,
// compressed and raw, streamed in pieces), tampering (a flipped byte, an
// object swapped for another's, a wrong passphrase, a truncated object, a
// header edited), the compression decision, key.json, manifests, copying
// from a store (once, hash-checked), and retention's set arithmetic.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "crawler/agent/blob_backup.hpp"
#include "crawler/agent/blob_crypto.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"

using namespace crawler::agent;
namespace fs = std::filesystem;

namespace {

BlobKey test_key(const std::string& pass = "a-passphrase-of-twenty-chars") {
  return derive_blob_key(pass, "salt-of-sixteen!", 1000);
}

std::string sha_of(const std::string& bytes) {
  crawler::Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::string random_text(std::size_t n, unsigned seed = 7) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

std::string repetitive(std::size_t n) {
  std::string s;
  while (s.size() < n) s += "<tr><td>crawler_ha</td><td>" + std::to_string(s.size() % 97) + "</td></tr>\n";
  s.resize(n);
  return s;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/blob-backup-test.XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

}  // namespace

TEST(BlobCrypto, RoundTripRawAndCompressed) {
  const BlobKey k = test_key();
  for (Compression c : {Compression::none, Compression::zstd})
    for (std::size_t n : {0ul, 1ul, 15ul, 16ul, 17ul, 100000ul, 3000001ul}) {
      const std::string plain = repetitive(n);
      const std::string sha = sha_of(plain);
      const std::string sealed = seal_object(k, sha, plain, c);
      EXPECT_EQ(sealed.compare(0, 4, "CHAB"), 0);
      EXPECT_EQ(sealed[5], static_cast<char>(c)) << "the header says the compression";
      std::string error;
      auto back = open_object(k, sha, sealed, &error);
      ASSERT_TRUE(back) << error << " n=" << n;
      EXPECT_EQ(*back, plain);
      if (c == Compression::zstd && n > 100000) {
        EXPECT_LT(sealed.size(), n / 5) << "text compresses";
      }
      if (c == Compression::none) {
        EXPECT_EQ(sealed.size(), n + kBlobHeaderBytes + kBlobTagBytes);
      }
    }
}

TEST(BlobCrypto, StreamedInOddPiecesOpensTheSame) {
  const BlobKey k = test_key();
  const std::string plain = repetitive(500000) + random_text(200000);
  ObjectSealer s(k, "name", Compression::zstd);
  std::string sealed = s.header();
  for (std::size_t at = 0; at < plain.size(); at += 777) s.update(plain.data() + at, std::min<std::size_t>(777, plain.size() - at), &sealed);
  s.finish(&sealed);
  ObjectOpener o(k, "name");
  std::string out, error;
  for (std::size_t at = 0; at < sealed.size(); at += 5)
    ASSERT_TRUE(o.update(sealed.data() + at, std::min<std::size_t>(5, sealed.size() - at), &out, &error)) << error;
  ASSERT_TRUE(o.finish(&out, &error)) << error;
  EXPECT_EQ(out, plain);
  EXPECT_EQ(o.compression(), Compression::zstd);
}

TEST(BlobCrypto, TamperingFails) {
  const BlobKey k = test_key();
  for (Compression c : {Compression::none, Compression::zstd}) {
    const std::string a = repetitive(10000), b = repetitive(9000);
    const std::string sa = sha_of(a), sb = sha_of(b);
    const std::string sealed = seal_object(k, sa, a, c);
    std::string error;
    // every single flipped byte, header, body and tag alike
    for (std::size_t i = 0; i < sealed.size(); i += std::max<std::size_t>(1, sealed.size() / 300)) {
      std::string bad = sealed;
      bad[i] ^= 0x01;
      EXPECT_FALSE(open_object(k, sa, bad, &error)) << "byte " << i;
    }
    // another blob's object in this blob's place
    EXPECT_FALSE(open_object(k, sa, seal_object(k, sb, b, c), &error));
    EXPECT_NE(error.find("authentication failed"), std::string::npos) << error;
    // a wrong passphrase
    EXPECT_FALSE(open_object(test_key("another-passphrase-of-twenty"), sa, sealed, &error));
    // truncated, and the tag alone
    EXPECT_FALSE(open_object(k, sa, sealed.substr(0, sealed.size() - 1), &error));
    EXPECT_FALSE(open_object(k, sa, sealed.substr(0, kBlobHeaderBytes + 3), &error));
    EXPECT_FALSE(open_object(k, sa, sealed.substr(0, 10), &error));
    // a header edited to say the other compression
    std::string edited = sealed;
    edited[5] = static_cast<char>(c == Compression::none ? Compression::zstd : Compression::none);
    EXPECT_FALSE(open_object(k, sa, edited, &error));
  }
}

TEST(BlobCrypto, EveryObjectHasItsOwnNonce) {
  const BlobKey k = test_key();
  EXPECT_NE(seal_object(k, "x", "same bytes", Compression::none), seal_object(k, "x", "same bytes", Compression::none));
}

TEST(BlobCrypto, CompressionOnlyWhereItHelps) {
  EXPECT_TRUE(zstd_helps(repetitive(kCompressionSample)));
  EXPECT_FALSE(zstd_helps(random_text(kCompressionSample))) << "JPEG, PNG, WebP bytes look like this";
  EXPECT_FALSE(zstd_helps(""));
  // 10 % compressible, 90 % noise: under the 5 % gain? no, over: 10 % > 5 %
  EXPECT_TRUE(zstd_helps(repetitive(200000) + random_text(800000)));
  // 2 % compressible: not worth it
  EXPECT_FALSE(zstd_helps(std::string(20000, 'a') + random_text(980000)));
}

TEST(BlobCrypto, Hex) {
  EXPECT_EQ(to_hex(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(from_hex("00ff10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(from_hex("0"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_FALSE(from_hex("AB"));
}

TEST(BlobKeyFile, OpensWithItsPassphraseOnly) {
  const std::string text = new_key_file_text("the-right-passphrase-123", 1000);
  EXPECT_EQ(text.find("the-right-passphrase-123"), std::string::npos) << "never the passphrase";
  std::string error;
  auto k = key_from_file_text(text, "the-right-passphrase-123", &error);
  ASSERT_TRUE(k) << error;
  EXPECT_EQ(text.find(to_hex(std::string(reinterpret_cast<const char*>(k->bytes.data()), k->bytes.size()))),
            std::string::npos) << "never the key";
  EXPECT_FALSE(key_from_file_text(text, "the-wrong-passphrase-123", &error));
  EXPECT_NE(error.find("does not open"), std::string::npos) << error;
  EXPECT_FALSE(key_from_file_text("{}", "the-right-passphrase-123", &error));
  EXPECT_FALSE(key_from_file_text("not json", "the-right-passphrase-123", &error));
  // two repositories: two salts, two keys from one passphrase
  auto k2 = key_from_file_text(new_key_file_text("the-right-passphrase-123", 1000), "the-right-passphrase-123", &error);
  ASSERT_TRUE(k2);
  EXPECT_NE(k->bytes, k2->bytes);
}

TEST(BlobManifestJson, RoundTripAndRefusals) {
  const std::string s1(64, 'a'), s2(64, 'b');
  BlobManifest m{"db1", "20260101-000000F", "db1",
                 {{s1, "aa/aa/" + s1 + ".png", 10}, {s2, "bb/bb/" + s2 + ".jpg", 20}}};
  BlobManifest back = manifest_from_json(manifest_to_json(m));
  EXPECT_EQ(back.stanza, "db1");
  EXPECT_EQ(back.label, m.label);
  ASSERT_EQ(back.blobs.size(), 2u);
  EXPECT_EQ(back.blobs[1].file_path, m.blobs[1].file_path);
  EXPECT_EQ(back.blobs[1].size, 20u);
  EXPECT_THROW(manifest_from_json("[]"), std::runtime_error);
  BlobManifest bad = m;
  bad.blobs[0].file_path = "../../etc/passwd";
  EXPECT_THROW(manifest_from_json(manifest_to_json(bad)), std::runtime_error);
  bad = m;
  bad.blobs[0].sha256 = "ABC";
  EXPECT_THROW(manifest_from_json(manifest_to_json(bad)), std::runtime_error);
}

TEST(BlobRepositoryFiles, CopyOnceVerifyAndDetectDamage) {
  TempDir t;
  const fs::path store = t.path / "store";
  BlobRepository repo(t.path / "repo");
  std::string error;
  ASSERT_TRUE(repo.lock(true, &error)) << error;
  auto key = repo.key("a-passphrase-of-twenty-chars", true, &error);
  ASSERT_TRUE(key) << error;
  EXPECT_FALSE(repo.key("another-passphrase-of-twenty", false, &error));

  const std::string png = "\x89PNG\r\n\x1a\n" + random_text(300000, 1);
  const std::string txt = repetitive(2000000);
  const std::string sp = sha_of(png), st = sha_of(txt);
  spit(store / crawler::blob_relative_path(sp, "png"), png);
  spit(store / crawler::blob_relative_path(st, "svg"), txt);
  const std::string missing(64, 'c');
  // a store file whose bytes are not its name's
  const std::string liar = sha_of("the real bytes");
  spit(store / crawler::blob_relative_path(liar, "gif"), "other bytes");
  std::vector<BlobRef> refs{{sp, crawler::blob_relative_path(sp, "png").string(), png.size()},
                            // recorded with another extension than the store holds: still found
                            {st, crawler::blob_relative_path(st, "xml").string(), txt.size()},
                            {missing, crawler::blob_relative_path(missing, "png").string(), 1},
                            {liar, crawler::blob_relative_path(liar, "gif").string(), 11}};
  CopyReport r = copy_blobs(repo, *key, store, refs);
  EXPECT_EQ(r.referenced, 4u);
  EXPECT_EQ(r.copied, 2u);
  EXPECT_EQ(r.compressed, 1u) << "the text, not the PNG";
  EXPECT_EQ(r.read_bytes, png.size() + txt.size() + 11);
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_NE(r.problems[0].find(missing), std::string::npos);
  EXPECT_NE(r.problems[0].find("is not in the store"), std::string::npos);
  EXPECT_NE(r.problems[1].find(liar), std::string::npos);
  EXPECT_NE(r.problems[1].find("hashes to"), std::string::npos);
  EXPECT_FALSE(fs::exists(repo.object_path(liar))) << "a wrong hash leaves nothing";
  EXPECT_FALSE(fs::exists(repo.object_path(missing)));
  EXPECT_EQ(repo.objects(), (std::vector<std::string>{std::min(sp, st), std::max(sp, st)}));
  EXPECT_EQ(slurp(repo.object_path(sp)).find(png.substr(100, 64)), std::string::npos) << "no clear bytes";
  for (const auto& s : {sp, st}) EXPECT_TRUE(check_object(repo, *key, s).ok);

  // again: nothing copied
  CopyReport again = copy_blobs(repo, *key, store, {refs[0], refs[1]});
  EXPECT_EQ(again.copied, 0u);
  EXPECT_EQ(again.present, 2u);
  EXPECT_EQ(again.read_bytes, 0u);

  // a flipped byte, an object swapped for another, a missing one
  std::string obj = slurp(repo.object_path(sp));
  obj[obj.size() / 2] ^= 0x20;
  spit(repo.object_path(sp), obj);
  ObjectCheck c = check_object(repo, *key, sp);
  EXPECT_FALSE(c.ok);
  EXPECT_FALSE(c.missing);
  fs::copy_file(repo.object_path(st), repo.object_path(sp), fs::copy_options::overwrite_existing);
  EXPECT_FALSE(check_object(repo, *key, sp).ok) << "another blob's object in its place";
  c = check_object(repo, *key, missing);
  EXPECT_TRUE(c.missing);

  // manifests: written, read, bound to their name
  BlobManifest m{"db1", "20260101-000000F", "db1", {refs[0], refs[1]}};
  ASSERT_TRUE(write_manifest(repo, *key, m, &error)) << error;
  auto mb = read_manifest(repo, *key, "db1", "20260101-000000F", &error);
  ASSERT_TRUE(mb) << error;
  EXPECT_EQ(mb->blobs.size(), 2u);
  fs::create_directories(repo.manifest_path("db2", "x").parent_path());
  fs::copy_file(repo.manifest_path("db1", "20260101-000000F"), repo.manifest_path("db2", "20260101-000000F"));
  EXPECT_FALSE(read_manifest(repo, *key, "db2", "20260101-000000F", &error)) << "another backup's manifest";
  EXPECT_EQ(repo.manifests().size(), 2u);
  EXPECT_EQ(repo.remove_temporaries(), 0);
}

TEST(BlobRetention, PlanKeepsWhatKeptBackupsNeed) {
  auto set = [](std::initializer_list<std::string> l) { return std::optional<std::set<std::string>>(l); };
  std::map<std::string, std::set<std::string>> kept{{"db1", {"L2", "L3"}}, {"db2", {"M1"}}};
  std::vector<ManifestRefs> manifests{{"db1", "L1", set({"a", "b", "c"})},
                                      {"db1", "L2", set({"b", "c", "d"})},
                                      {"db1", "L3", set({"d", "e"})},
                                      {"db2", "M0", set({"f", "g"})},
                                      {"db2", "M1", set({"g", "a"})},
                                      // a stanza info could not read: kept, whatever its labels
                                      {"db3", "N1", set({"h"})}};
  ExpiryPlan p = plan_blob_expiry(kept, manifests, {"a", "b", "c", "d", "e", "f", "g", "h", "orphan"});
  EXPECT_EQ(p.manifests, (std::vector<std::pair<std::string, std::string>>{{"db1", "L1"}, {"db2", "M0"}}));
  EXPECT_EQ(p.objects, (std::vector<std::string>{"f", "orphan"}))
      << "a: still M1's (another stanza); b, c: L2's; only f and the orphan go";
  EXPECT_EQ(p.kept_manifests, 4u);
  EXPECT_EQ(p.kept_objects, 7u);
  EXPECT_TRUE(p.refused.empty());

  // a kept manifest that cannot be read: no object removed, expired manifests still go
  manifests[2].blobs.reset();
  p = plan_blob_expiry(kept, manifests, {"a", "f", "orphan"});
  EXPECT_TRUE(p.objects.empty());
  EXPECT_EQ(p.manifests.size(), 2u);
  EXPECT_NE(p.refused.find("L3"), std::string::npos);

  // no manifest at all: every object is an orphan
  p = plan_blob_expiry(kept, {}, {"x"});
  EXPECT_EQ(p.objects, std::vector<std::string>{"x"});
}

TEST(BlobRetention, ExpireRemovesOnlyUnneededObjectsAndExpiredManifests) {
  TempDir t;
  BlobRepository repo(t.path / "repo");
  std::string error;
  ASSERT_TRUE(repo.lock(true, &error));
  auto key = repo.key("a-passphrase-of-twenty-chars", true, &error);
  ASSERT_TRUE(key) << error;
  const fs::path store = t.path / "store";
  std::vector<BlobRef> refs;
  for (int i = 0; i < 3; ++i) {
    const std::string bytes = random_text(1000, 10 + i);
    const std::string s = sha_of(bytes);
    spit(store / crawler::blob_relative_path(s, "jpg"), bytes);
    refs.push_back({s, crawler::blob_relative_path(s, "jpg").string(), 1000});
  }
  ASSERT_TRUE(copy_blobs(repo, *key, store, refs).problems.empty());
  ASSERT_TRUE(write_manifest(repo, *key, {"db1", "L1", "db1", {refs[0], refs[1]}}, &error));
  ASSERT_TRUE(write_manifest(repo, *key, {"db1", "L2", "db1", {refs[1], refs[2]}}, &error));
  ExpiryReport e = expire_blobs(repo, *key, {{"db1", {"L2"}}});
  EXPECT_TRUE(e.problems.empty());
  EXPECT_EQ(e.plan.objects, std::vector<std::string>{refs[0].sha256});
  EXPECT_FALSE(fs::exists(repo.object_path(refs[0].sha256)));
  EXPECT_TRUE(fs::exists(repo.object_path(refs[1].sha256)));
  EXPECT_TRUE(fs::exists(repo.object_path(refs[2].sha256)));
  EXPECT_FALSE(fs::exists(repo.manifest_path("db1", "L1")));
  EXPECT_TRUE(fs::exists(repo.manifest_path("db1", "L2")));
  EXPECT_GT(e.removed_bytes, 1000u);
}
