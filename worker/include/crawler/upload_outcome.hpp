// What the answer to a blob upload means (the agent's PUT /api/blobs/
// contract), as a pure function of the transfer's end, so that every
// status's consequence is decided, and tested, in one place: the uploader
// (blob_uploader.hpp) acts on it, the crawler reports the item by it.
#pragma once
#include <curl/curl.h>

#include <string>
#include <string_view>

namespace crawler {

enum class UploadVerdict {
  kStored,        // 2xx: the bytes are durable at the agent; the row may be recorded
  kTryAgain,      // the agent is down or unavailable (no connection, reset, timeout, 502/503/504):
                  // forget its URL, back off, ask the database where to go, send again
  kBadFile,       // 422 (the agent's hash differs) or the spooled file unreadable:
                  // the item fails and is retried by the session's attempts rule
  kStoreFull,     // 507: the item fails ("store_full"), retried later by the attempts rule
  kTooLarge,      // 413: over the agent's limit; the item fails for good
  kUnauthorized,  // 401/403: the token is wrong; fatal for the whole worker
  kRejected,      // any other answer: the item fails, retried by the attempts rule
  kStopped,       // never from classify_upload(): the worker stopped before the agent took it
};

struct UploadOutcome {
  UploadVerdict verdict = UploadVerdict::kTryAgain;
  std::string error;     // for the item's last_error or the log; "" when stored
  bool created = false;  // stored: true when this upload made the file (201)
};

// The meaning of an upload that ended with curl's `code`, the HTTP
// `status` (0 when none) and the answer's `body` (the agent's JSON, read
// only for its "error" and "created" members); `curl_error` is curl's
// message for a failed transfer.
UploadOutcome classify_upload(CURLcode code, long status, std::string_view body, std::string_view curl_error);

// The string value of the top-level member `name` of a JSON object, or
// "" (the agent's short answers; nothing here needs a full parser).
std::string json_member(std::string_view json, std::string_view name);

// A verdict's name, for logs and tests.
const char* verdict_name(UploadVerdict v);

}  // namespace crawler
