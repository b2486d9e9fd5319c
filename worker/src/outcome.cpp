#include "crawler/outcome.hpp"

#include <algorithm>

namespace crawler {
namespace {

FetchOutcome retry(std::string cause, std::string error, long after_s, bool host_waits = false) {
  return {FetchOutcome::Kind::kRetry, std::move(error), after_s, host_waits, std::move(cause)};
}

FetchOutcome fail(std::string cause, std::string error) {
  return {FetchOutcome::Kind::kFail, std::move(error), 0, false, std::move(cause)};
}

// The kind of a transfer error curl reported.
const char* curl_cause(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: return "tls";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "network";
    case CURLE_FILESIZE_EXCEEDED: return "too_large";
    case CURLE_TOO_MANY_REDIRECTS: return "redirects";
    default: return "transfer";
  }
}

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
      return retry("http", http + where +
                       (r.retry_after_s >= 0 ? " (Retry-After " + std::to_string(r.retry_after_s) + " s)" : ""),
                   after, true);
    }
    if (s == 408 || s == 500 || s == 502 || s == 504) return retry("http", http + where, policy.backoff_s);
    if (s >= 300 && s < 400) return fail("redirects", http + " redirect without a usable Location" + where);
    return fail("http", http + where);
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
      return retry(curl_cause(r.code), std::string(curl_easy_strerror(r.code)) + ": " + r.error + where,
                   policy.backoff_s);
    case CURLE_FILESIZE_EXCEEDED:
      return fail("too_large", "too large: the declared size is over the limit" + where);
    case CURLE_TOO_MANY_REDIRECTS:
      return fail("redirects", "too many redirects (" + r.error + ")");
    case CURLE_WRITE_ERROR:
      return fail(r.too_large ? "too_large" : "refused", (r.too_large ? "too large: " : "") + r.error + where);
    default:
      return fail(curl_cause(r.code), std::string(curl_easy_strerror(r.code)) + ": " + r.error + where);
  }
}

}  // namespace crawler
