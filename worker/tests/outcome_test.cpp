#include <gtest/gtest.h>

#include "crawler/outcome.hpp"

using crawler::classify_fetch;
using crawler::FetchOutcome;
using crawler::FetchResult;
using Kind = FetchOutcome::Kind;

namespace {
const crawler::RetryPolicy kPolicy{/*backoff_s=*/40, /*max_retry_after_s=*/3};

FetchResult http(long status, long retry_after = -1) {
  FetchResult r;
  r.status = status;
  r.retry_after_s = retry_after;
  r.effective_url = "http://a.test/x.png";
  return r;
}
FetchResult curl_error(CURLcode code, std::string error = "detail") {
  FetchResult r;
  r.code = code;
  r.error = std::move(error);
  return r;
}
}  // namespace

TEST(Outcome, TwoHundredsSucceed) {
  for (long s : {200L, 204L, 299L}) EXPECT_EQ(classify_fetch(http(s), "http://a.test/x.png", kPolicy).kind, Kind::kSuccess);
}

TEST(Outcome, TooManyRequestsAndUnavailableMakeTheHostWait) {
  auto o = classify_fetch(http(429, 1), "http://a.test/x.png", kPolicy);
  EXPECT_EQ(o.kind, Kind::kRetry);
  EXPECT_TRUE(o.host_waits);
  EXPECT_EQ(o.retry_after_s, 1);
  EXPECT_EQ(o.error, "HTTP 429 (Retry-After 1 s)");
  auto capped = classify_fetch(http(503, 7200), "http://a.test/x.png", kPolicy);
  EXPECT_EQ(capped.retry_after_s, 3);  // a server's Retry-After, capped
  auto none = classify_fetch(http(503), "http://a.test/x.png", kPolicy);
  EXPECT_EQ(none.retry_after_s, 40);  // no Retry-After: the back-off
  EXPECT_EQ(none.error, "HTTP 503");
}

TEST(Outcome, ServerErrorsAreRetriedClientErrorsAreFinal) {
  for (long s : {408L, 500L, 502L, 504L}) {
    auto o = classify_fetch(http(s), "http://a.test/x.png", kPolicy);
    EXPECT_EQ(o.kind, Kind::kRetry) << s;
    EXPECT_FALSE(o.host_waits) << s;
    EXPECT_EQ(o.retry_after_s, 40) << s;
  }
  for (long s : {400L, 401L, 403L, 404L, 410L, 501L, 505L, 599L, 100L}) {
    auto o = classify_fetch(http(s), "http://a.test/x.png", kPolicy);
    EXPECT_EQ(o.kind, Kind::kFail) << s;
    EXPECT_EQ(o.error, "HTTP " + std::to_string(s)) << s;
  }
  EXPECT_EQ(classify_fetch(http(302), "http://a.test/x.png", kPolicy).error,
            "HTTP 302 redirect without a usable Location");
}

TEST(Outcome, AnErrorNamesWhereARedirectLed) {
  EXPECT_EQ(classify_fetch(http(404), "http://a.test/moved.png", kPolicy).error, "HTTP 404 at http://a.test/x.png");
}

TEST(Outcome, TransientTransferErrorsAreRetriedTheOthersAreFinal) {
  for (CURLcode c : {CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_RECV_ERROR,
                     CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_HTTP2, CURLE_HTTP2_STREAM,
                     CURLE_SSL_CONNECT_ERROR}) {
    auto o = classify_fetch(curl_error(c), "http://a.test/", kPolicy);
    EXPECT_EQ(o.kind, Kind::kRetry) << c;
    EXPECT_EQ(o.retry_after_s, 40) << c;
    EXPECT_EQ(o.error, std::string(curl_easy_strerror(c)) + ": detail") << c;
  }
  EXPECT_EQ(classify_fetch(curl_error(CURLE_FILESIZE_EXCEEDED), "http://a.test/", kPolicy).error,
            "too large: the declared size is over the limit");
  EXPECT_EQ(classify_fetch(curl_error(CURLE_TOO_MANY_REDIRECTS, "5"), "http://a.test/", kPolicy).error,
            "too many redirects (5)");
  FetchResult big = curl_error(CURLE_WRITE_ERROR, "body larger than 10 bytes");
  big.too_large = true;
  EXPECT_EQ(classify_fetch(big, "http://a.test/", kPolicy).error, "too large: body larger than 10 bytes");
  for (CURLcode c : {CURLE_WRITE_ERROR, CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION, CURLE_ABORTED_BY_CALLBACK})
    EXPECT_EQ(classify_fetch(curl_error(c), "http://a.test/", kPolicy).kind, Kind::kFail) << c;
}

TEST(Outcome, EveryFailureHasAKindForTheCounts) {
  EXPECT_EQ(classify_fetch(http(200), "http://a.test/x.png", kPolicy).cause, "");
  EXPECT_EQ(classify_fetch(http(404), "http://a.test/x.png", kPolicy).cause, "http");
  EXPECT_EQ(classify_fetch(http(503), "http://a.test/x.png", kPolicy).cause, "http");
  EXPECT_EQ(classify_fetch(http(302), "http://a.test/x.png", kPolicy).cause, "redirects");
  const std::pair<CURLcode, const char*> cases[] = {
      {CURLE_OPERATION_TIMEDOUT, "timeout"}, {CURLE_COULDNT_CONNECT, "connect"},
      {CURLE_COULDNT_RESOLVE_HOST, "dns"},   {CURLE_SSL_CONNECT_ERROR, "tls"},
      {CURLE_PEER_FAILED_VERIFICATION, "tls"}, {CURLE_RECV_ERROR, "network"},
      {CURLE_PARTIAL_FILE, "network"},       {CURLE_GOT_NOTHING, "network"},
      {CURLE_FILESIZE_EXCEEDED, "too_large"}, {CURLE_TOO_MANY_REDIRECTS, "redirects"},
      {CURLE_WRITE_ERROR, "refused"},        {CURLE_UNSUPPORTED_PROTOCOL, "transfer"}};
  for (auto [code, cause] : cases) EXPECT_EQ(classify_fetch(curl_error(code), "http://a.test/x.png", kPolicy).cause, cause) << code;
  FetchResult big = curl_error(CURLE_WRITE_ERROR, "body larger than 5 bytes");
  big.too_large = true;
  EXPECT_EQ(classify_fetch(big, "http://a.test/x.png", kPolicy).cause, "too_large");
}
