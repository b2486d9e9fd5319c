#include <gtest/gtest.h>

#include "crawler/upload_outcome.hpp"

using namespace crawler;

namespace {
UploadOutcome answer(long status, const char* body) { return classify_upload(CURLE_OK, status, body, ""); }
}  // namespace

TEST(UploadOutcome, TwoHundredsAreStoredAndSayWhetherTheFileIsNew) {
  auto created = answer(201, R"({"created":true,"sha256":"ab"})");
  EXPECT_EQ(created.verdict, UploadVerdict::kStored);
  EXPECT_TRUE(created.created);
  EXPECT_TRUE(created.error.empty());
  auto there = answer(200, R"({ "created" : false })");
  EXPECT_EQ(there.verdict, UploadVerdict::kStored);
  EXPECT_FALSE(there.created);
}

TEST(UploadOutcome, AnAgentThatCannotStoreNowIsTriedAgainElsewhereOrLater) {
  auto unwritable = answer(503, R"({"error":"store_unwritable"})");
  EXPECT_EQ(unwritable.verdict, UploadVerdict::kTryAgain);
  EXPECT_EQ(unwritable.error, "upload: HTTP 503 store_unwritable");
  EXPECT_EQ(answer(503, R"({"error":"replication_failed"})").verdict, UploadVerdict::kTryAgain);
  EXPECT_EQ(answer(502, "<html>bad gateway</html>").verdict, UploadVerdict::kTryAgain);
  EXPECT_EQ(answer(504, "").verdict, UploadVerdict::kTryAgain);
}

TEST(UploadOutcome, NoAnswerIsTriedAgain) {
  for (CURLcode c : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                     CURLE_GOT_NOTHING, CURLE_COULDNT_RESOLVE_HOST, CURLE_SSL_CONNECT_ERROR,
                     CURLE_PEER_FAILED_VERIFICATION}) {
    auto o = classify_upload(c, 0, "", "");
    EXPECT_EQ(o.verdict, UploadVerdict::kTryAgain) << curl_easy_strerror(c);
    EXPECT_EQ(o.error, std::string("upload: ") + curl_easy_strerror(c));
  }
  EXPECT_EQ(classify_upload(CURLE_COULDNT_CONNECT, 0, "", "Failed to connect to 10.0.0.5 port 8000").error,
            "upload: Failed to connect to 10.0.0.5 port 8000");
}

TEST(UploadOutcome, AFileTheAgentHashesDifferentlyOrWeCannotReadIsABadFile) {
  auto mismatch = answer(422, R"({"error":"hash_mismatch"})");
  EXPECT_EQ(mismatch.verdict, UploadVerdict::kBadFile);
  EXPECT_NE(mismatch.error.find("hash_mismatch"), std::string::npos);
  EXPECT_EQ(classify_upload(CURLE_READ_ERROR, 0, "", "").verdict, UploadVerdict::kBadFile);
}

TEST(UploadOutcome, AFullStoreIsAnItemErrorNamedStoreFull) {
  auto full = answer(507, R"({"error":"store_full"})");
  EXPECT_EQ(full.verdict, UploadVerdict::kStoreFull);
  EXPECT_EQ(full.error.rfind("store_full", 0), 0u);
}

TEST(UploadOutcome, TooLargeIsForGood) { EXPECT_EQ(answer(413, "").verdict, UploadVerdict::kTooLarge); }

TEST(UploadOutcome, AWrongTokenIsFatal) {
  auto o = answer(401, R"({"error":"bad_token"})");
  EXPECT_EQ(o.verdict, UploadVerdict::kUnauthorized);
  EXPECT_NE(o.error.find("--agent-token-file"), std::string::npos);
  EXPECT_EQ(answer(403, "").verdict, UploadVerdict::kUnauthorized);
}

TEST(UploadOutcome, AnythingElseIsRejectedWithWhatTheAgentSaid) {
  for (long s : {400L, 404L, 405L, 409L, 500L, 301L}) EXPECT_EQ(answer(s, "").verdict, UploadVerdict::kRejected) << s;
  EXPECT_EQ(answer(400, R"({"error":"bad \"name\"\nhere"})").error, "upload refused: HTTP 400 bad \"name\" here");
  EXPECT_EQ(answer(0, "").verdict, UploadVerdict::kRejected);  // a transfer that ended without a status
}

TEST(UploadOutcome, JsonMembersAreFoundAsKeysOnly) {
  EXPECT_EQ(json_member(R"({"detail":"error","error":"x"})", "error"), "x");
  EXPECT_EQ(json_member(R"({"created": true})", "created"), "true");
  EXPECT_EQ(json_member(R"({"created": false})", "error"), "");
  EXPECT_EQ(json_member("not json", "error"), "");
  EXPECT_EQ(json_member(R"({"error":)", "error"), "");
}
