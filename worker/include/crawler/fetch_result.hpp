// What one transfer ended with: the fetcher's answer, and what the pure
// outcome rules (outcome.hpp) read, without Asio or a transfer.
#pragma once
#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crawler {

struct FetchResult {
  CURLcode code = CURLE_OK;
  std::string error;          // curl's message, or why the body was refused
  bool too_large = false;     // the body passed max_bytes
  std::string refused;        // the reason accept() gave
  long status = 0;            // HTTP status of the last response
  std::string content_type;
  std::string effective_url;  // after redirects
  std::string redirect_url;   // a 3xx not followed: its absolute target
  std::vector<std::string> robots_tags;  // the X-Robots-Tag header(s) of the response
  std::string etag, last_modified;        // the response's validators, as received ("" when none)
  long retry_after_s = -1;    // Retry-After in seconds (-1: none)
  std::string body;           // when no file was given (2xx only)
  std::uint64_t bytes = 0;    // body bytes received (2xx only)
  long redirects = 0;
  double seconds = 0;
};

// Whether `v` may go back into a request header as it is: 1 to 1024
// printable ASCII characters (no CR or LF that would start another header).
// A response's validators (etag, last_modified) are recorded (image_record)
// and sent in a re-crawl's conditional request only when it holds.
inline bool header_value_sendable(std::string_view v) {
  if (v.empty() || v.size() > 1024) return false;
  for (unsigned char c : v)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace crawler
