#include "crawler/outcome.hpp"

#include <algorithm>

namespace crawler {
namespace {

FetchOutcome retry(std::string error, long after_s, bool host_waits = false) {
  return {FetchOutcome::Kind::kRetry, std::move(error), after_s, host_waits};
}

FetchOutcome fail(std::string error) { return {FetchOutcome::Kind::kFail, std::move(error), 0, false}; }

}  // namespace

FetchOutcome classify_fetch(const FetchResult& r, std::string_view item_url, const RetryPolicy& policy) {
  if (r.code == CURLE_OK && r.status >= 200 && r.status < 300) return {};
  const std::string where =
      (!r.effective_url.empty() && r.effective_url != item_url) ? " at " + r.effective_url : "";
  if (r.code == CURLE_OK) {
    const long s = r.status;
    const std::string http = "HTTP " + std::to_string(s);
    if (s == 429 || s == 503) {
      long after = r.retry_after_s >= 0 ? std::min(r.retry_after_s, policy.max_retry_after_s) : policy.backoff_s;
      return retry(http + where +
                       (r.retry_after_s >= 0 ? " (Retry-After " + std::to_string(r.retry_after_s) + " s)" : ""),
                   after, true);
    }
    if (s == 408 || s == 500 || s == 502 || s == 504) return retry(http + where, policy.backoff_s);
    if (s >= 300 && s < 400) return fail(http + " redirect without a usable Location" + where);
    return fail(http + where);
  }
  switch (r.code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return retry(std::string(curl_easy_strerror(r.code)) + ": " + r.error + where, policy.backoff_s);
    case CURLE_FILESIZE_EXCEEDED:
      return fail("too large: the declared size is over the limit" + where);
    case CURLE_TOO_MANY_REDIRECTS:
      return fail("too many redirects (" + r.error + ")");
    case CURLE_WRITE_ERROR:
      return fail((r.too_large ? "too large: " : "") + r.error + where);
    default:
      return fail(std::string(curl_easy_strerror(r.code)) + ": " + r.error + where);
  }
}

}  // namespace crawler
