// The server's pure parts, with hostile input: byte ranges, blob names,
// routes, the bearer token, listen addresses, query strings.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "crawler/agent/server/bearer_token.hpp"
#include "crawler/agent/server/blob_name.hpp"
#include "crawler/agent/server/byte_range.hpp"
#include "crawler/agent/server/listen_address.hpp"
#include "crawler/agent/server/query_string.hpp"
#include "crawler/agent/server/router.hpp"

using namespace crawler::agent;
namespace http = boost::beast::http;

namespace {

const std::string kSha = std::string(64, 'a');

::testing::AssertionResult is_partial(const RangeAnswer& r, std::uint64_t first, std::uint64_t last) {
  if (r.kind != RangeAnswer::partial) return ::testing::AssertionFailure() << "kind " << r.kind;
  if (r.first != first || r.last != last)
    return ::testing::AssertionFailure() << r.first << "-" << r.last;
  return ::testing::AssertionSuccess();
}

TEST(QueryString, DecodesPairs) {
  std::string why;
  auto q = parse_query("/replica?lag=16MB&x=a%20b+c&flag", &why);
  ASSERT_TRUE(q) << why;
  EXPECT_EQ(q->size(), 3u);
  EXPECT_EQ(q->at("lag"), "16MB");
  EXPECT_EQ(q->at("x"), "a b c");
  EXPECT_EQ(q->at("flag"), "");
  EXPECT_TRUE(parse_query("/primary", &why)->empty());
  EXPECT_TRUE(parse_query("/primary?", &why)->empty());
  EXPECT_EQ(parse_query("/p?&&a=1&", &why)->size(), 1u);
  EXPECT_EQ(parse_query("/p?a=%41%3d", &why)->at("a"), "A=");
}

TEST(QueryString, RefusesMalformedQueries) {
  std::string why;
  for (const char* bad : {"/p?a=%", "/p?a=%4", "/p?a=%zz", "/p?a=%00", "/p?%00=1", "/p?=1", "/p?a=1&a=2",
                          "/p?a=%4g"}) {
    why.clear();
    EXPECT_FALSE(parse_query(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string many = "/p?";
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=1&";
  EXPECT_FALSE(parse_query(many, &why));
  EXPECT_FALSE(parse_query("/p?a=" + std::string(1025, 'x'), &why));
  EXPECT_TRUE(parse_query("/p?a=" + std::string(1024, 'x'), &why));
}

TEST(ByteRange, ServesTheThreeFormsOfOneRange) {
  EXPECT_TRUE(is_partial(parse_range("bytes=0-9", 100), 0, 9));
  EXPECT_TRUE(is_partial(parse_range("bytes=10-", 100), 10, 99));
  EXPECT_TRUE(is_partial(parse_range("bytes=-10", 100), 90, 99));
  EXPECT_TRUE(is_partial(parse_range("bytes=99-99", 100), 99, 99));
  EXPECT_TRUE(is_partial(parse_range("BYTES = 5-6 ", 100), 5, 6));
}

TEST(ByteRange, ClampsAnEndPastTheFile) {
  EXPECT_TRUE(is_partial(parse_range("bytes=50-1000", 100), 50, 99));
  EXPECT_TRUE(is_partial(parse_range("bytes=-1000", 100), 0, 99));
}

TEST(ByteRange, HugeNumbersSaturateInsteadOfOverflowing) {
  EXPECT_TRUE(is_partial(parse_range("bytes=0-99999999999999999999999999999999", 100), 0, 99));
  EXPECT_EQ(parse_range("bytes=18446744073709551616-", 100).kind, RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=99999999999999999999999999-", 100).kind, RangeAnswer::unsatisfiable);
  EXPECT_TRUE(is_partial(parse_range("bytes=-18446744073709551617", 100), 0, 99));
  // 2^64-1 - 1 would overflow a naive "last - first + 1" nowhere: last is clamped.
  EXPECT_TRUE(is_partial(parse_range("bytes=1-18446744073709551615", 100), 1, 99));
}

TEST(ByteRange, UnsatisfiableRanges) {
  EXPECT_EQ(parse_range("bytes=100-", 100).kind, RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=100-200", 100).kind, RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 100).kind, RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-0", 0).kind, RangeAnswer::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-5", 0).kind, RangeAnswer::unsatisfiable);
}

TEST(ByteRange, GarbageIsIgnoredAndTheWholeFileServed) {
  for (const char* h : {"", "bytes", "bytes=", "bytes=-", "bytes=--5", "bytes=-5-10", "bytes=+5-",
                        "bytes=5-+6", "bytes=a-b", "bytes=5", "bytes=10-5", "items=0-5", "bytes=0x10-",
                        "bytes=1 0-20", "bytes=-1-", "=0-5", "bytes=\xff-"})
    EXPECT_EQ(parse_range(h, 100).kind, RangeAnswer::whole) << "\"" << h << "\"";
  EXPECT_EQ(parse_range(std::string("bytes=0-5\0", 10), 100).kind, RangeAnswer::whole);
  EXPECT_EQ(parse_range(std::string("bytes=\0-5", 9), 100).kind, RangeAnswer::whole);
  EXPECT_EQ(parse_range(std::string(100000, '9'), 100).kind, RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=0-" + std::string(100000, '9'), 100).kind, RangeAnswer::partial);
}

TEST(ByteRange, SeveralRangesServeTheWholeFile) {
  EXPECT_EQ(parse_range("bytes=0-1,5-6", 100).kind, RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=0-1, -5", 100).kind, RangeAnswer::whole);
  EXPECT_EQ(parse_range("bytes=,", 100).kind, RangeAnswer::whole);
}

TEST(BlobName, AcceptsShaAndExtension) {
  auto n = parse_blob_name(kSha + ".png", true);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->sha256, kSha);
  EXPECT_EQ(n->ext, "png");
  auto bare = parse_blob_name(kSha, false);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->ext, "");
  EXPECT_TRUE(parse_blob_name(kSha + "." + std::string(16, 'z'), true));
}

TEST(BlobName, RefusesHostileNames) {
  EXPECT_FALSE(parse_blob_name(kSha, true));  // PUT needs an extension
  for (const std::string& s :
       {std::string("../") + kSha + ".png", kSha + "./png", kSha + ".p/g", kSha + "..png", kSha + ".",
        kSha + ".PNG", std::string(64, 'A') + ".png", kSha + ".png.png", kSha + ".p-g",
        kSha + "." + std::string(17, 'a'), kSha + std::string(".p\0g", 4), std::string(".png"),
        kSha.substr(1) + ".png", kSha + "a.png", kSha + "%2epng", kSha + ".png%00", std::string(100000, 'a'),
        kSha + "." + std::string(100000, 'a'), std::string(63, 'a') + "g.png", std::string("")})
    EXPECT_FALSE(parse_blob_name(s, false)) << s.substr(0, 80);
}

TEST(BlobName, ContentTypes) {
  EXPECT_EQ(content_type_for_extension("png"), "image/png");
  EXPECT_EQ(content_type_for_extension("jpg"), "image/jpeg");
  EXPECT_EQ(content_type_for_extension("jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for_extension("svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for_extension("tiff"), "image/tiff");
  EXPECT_EQ(content_type_for_extension("exe"), "application/octet-stream");
  EXPECT_EQ(content_type_for_extension(""), "application/octet-stream");
}

TEST(Router, MatchesRoutesAndMethods) {
  Route r = match_route(http::verb::put, "/api/blobs/" + kSha + ".png");
  EXPECT_EQ(r.id, RouteId::blob);
  EXPECT_TRUE(r.method_allowed);
  EXPECT_EQ(r.segment, kSha + ".png");
  EXPECT_EQ(match_route(http::verb::get, "/api/blobs/" + kSha + "?x=1").segment, kSha);
  Route del = match_route(http::verb::delete_, "/api/blobs/" + kSha);
  EXPECT_EQ(del.id, RouteId::blob);
  EXPECT_FALSE(del.method_allowed);
  EXPECT_EQ(del.allow, "GET, HEAD, PUT");
  EXPECT_EQ(match_route(http::verb::post, "/api/blobs/referenced").id, RouteId::blob_referenced);
  EXPECT_FALSE(match_route(http::verb::get, "/api/blobs/referenced").method_allowed);
  EXPECT_EQ(match_route(http::verb::get, "/api/file-sync/status").id, RouteId::file_sync_status);
  EXPECT_TRUE(match_route(http::verb::head, "/api/file-sync/status").method_allowed);
}

TEST(Router, UnknownPathsMatchNothing) {
  for (const char* t : {"/", "", "/api/blobs", "/api/blobs/", "/api/blobs/a/b", "/api/blobs/../x",
                        "/api/file-sync/status/x", "/API/blobs/x", "*", "http://x/api/blobs/y"})
    EXPECT_EQ(match_route(http::verb::get, t).id, RouteId::not_found) << t;
  EXPECT_EQ(match_route(http::verb::unknown, "/api/blobs/" + kSha).method_allowed, false);
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("token-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "token").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& content, mode_t mode) {
    std::ofstream(path_) << content;
    ::chmod(path_.c_str(), mode);
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(TokenTest, AcceptsOnlyTheExactBearerToken) {
  // Longer than a short string's inline buffer: read from the heap.
  write("s3cret-token-longer-than-sso\n", 0600);
  BearerToken t;
  std::string error;
  ASSERT_TRUE(t.load(path_, &error)) << error;
  EXPECT_TRUE(t.accepts("Bearer s3cret-token-longer-than-sso"));
  EXPECT_TRUE(t.accepts("bearer s3cret-token-longer-than-sso"));
  const std::string tok = "s3cret-token-longer-than-sso";
  for (const std::string& bad : {"Bearer " + tok.substr(1), "Bearer " + tok + " ", "Bearer " + tok + "X",
                                 "Basic " + tok, std::string("Bearer"), std::string("Bearer "), std::string(""),
                                 tok, "Bearer  " + tok, "Bearer " + tok + std::string(1, '\0'),
                                 std::string(100000, 'B')})
    EXPECT_FALSE(t.accepts(bad)) << bad.substr(0, 40);
}

TEST_F(TokenTest, NoTokenLoadedAcceptsNothing) {
  BearerToken t;
  EXPECT_FALSE(t.accepts("Bearer "));
  EXPECT_FALSE(t.accepts("Bearer x"));
}

TEST_F(TokenTest, RefusesFilesOpenToOthersEmptyOrMissing) {
  BearerToken t;
  std::string error;
  write("tok", 0644);
  EXPECT_FALSE(t.load(path_, &error));
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  write("tok", 0660);
  EXPECT_FALSE(t.load(path_, &error));
  write(" \n\t\n", 0600);
  EXPECT_FALSE(t.load(path_, &error));
  EXPECT_NE(error.find("empty"), std::string::npos) << error;
  EXPECT_FALSE(t.load((dir_ / "absent").string(), &error));
  EXPECT_FALSE(t.load(dir_.string(), &error));
}

TEST_F(TokenTest, AFailedReloadKeepsTheTokenInUse) {
  BearerToken t;
  std::string error;
  write("first", 0600);
  ASSERT_TRUE(t.load(path_, &error));
  write("", 0600);
  EXPECT_FALSE(t.load(path_, &error));
  EXPECT_TRUE(t.accepts("Bearer first"));
  write("second", 0600);
  ASSERT_TRUE(t.load(path_, &error));
  EXPECT_FALSE(t.accepts("Bearer first"));
  EXPECT_TRUE(t.accepts("Bearer second"));
}

TEST(ListenAddress, ParsesV4AndBracketedV6) {
  std::string error;
  auto a = parse_listen_address("127.0.0.1:8000", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->port(), 8000);
  auto b = parse_listen_address("[::1]:0", &error);
  ASSERT_TRUE(b) << error;
  EXPECT_TRUE(b->address().is_v6());
  for (const char* bad : {"", ":8000", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "::1:8000", "[::1]8000", "localhost:8000", "127.0.0.1:80a", "[]:80",
                          "1.2.3.4:99999999999999999999"})
    EXPECT_FALSE(parse_listen_address(bad, &error)) << bad;
}

}  // namespace
