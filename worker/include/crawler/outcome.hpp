// What a finished transfer means for its frontier item: a pure rule, with
// no loop, database or transfer, so every case is unit-tested.
#pragma once
#include <string>
#include <string_view>

#include "crawler/fetch_result.hpp"

namespace crawler {

struct FetchOutcome {
  enum class Kind {
    kSuccess,  // 2xx: the body is the item's (a 3xx not followed is the caller's: redirect_url)
    kRetry,    // transient: the item goes back to the queue after retry_after_s
    kFail,     // final: the item fails with `error`
  };
  Kind kind = Kind::kSuccess;
  std::string error;        // the per-URL error recorded in the frontier
  long retry_after_s = 0;   // kRetry: how long the item waits
  bool host_waits = false;  // kRetry of a 429 or 503: the whole host waits as long, for every worker
  // The kind of failure, for the counts by kind (--stats-json): "http" (an
  // HTTP error status), "timeout", "connect", "dns", "network" (a reset,
  // truncated or empty answer), "tls", "too_large", "redirects", "refused"
  // (a body refused as it arrived: not a page) or "transfer" (any other of
  // curl's errors); "" for a success.
  std::string cause;
};

struct RetryPolicy {
  long backoff_s;          // the back-off for this item's attempt (exponential, the caller's)
  long max_retry_after_s;  // a server's Retry-After is honoured up to this
};

// The outcome of `r`, a transfer of `item_url` (an error names the URL the
// transfer ended at when a redirect moved it):
//   2xx: success; 429 and 503: retry after Retry-After (capped) or the
//   back-off, the host waiting too; 408, 500, 502, 504: retry after the
//   back-off; any other status, a 3xx without a usable Location among them:
//   final.  curl's timeouts, refused or reset connections, truncated bodies
//   and TLS handshake errors: retry after the back-off; a declared or
//   streamed size over the limit, too many redirects, a refused body and
//   anything else: final.
FetchOutcome classify_fetch(const FetchResult& r, std::string_view item_url, const RetryPolicy& policy);

}  // namespace crawler
