// HTTP transfers of the crawl: pages and images, on libcurl's multi-socket
// API driven by the loop (curl_multi.hpp), at most `concurrency` at once
// (the rest wait here, so curl's timeouts measure transfers, not queues).
#pragma once
#include <curl/curl.h>

#include "crawler/curl_multi.hpp"
#include "crawler/fetch_result.hpp"

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <unordered_map>

namespace crawler {

class PendingFile;

struct FetchLimits {
  int concurrency = 16;
  int host_connections = 8;
  long connect_timeout_ms = 10000;
  long timeout_ms = 120000;
  long low_speed_bytes = 1000;
  long low_speed_seconds = 20;
  long max_redirects = 5;
  std::string proxy;         // every transfer through it ("" = libcurl's default: the environment)
  std::string cookies_file;  // Netscape-format cookies, loaded once and shared ("" = no cookie engine)
};

struct FetchRequest {
  std::string url;
  std::string user_agent;
  std::uint64_t max_bytes = 0;   // body cap (after decompression)
  PendingFile* file = nullptr;   // stream the body here; else keep it in memory
  bool first = false;            // ahead of the others in the queue (pages: they lead to more work)
  // false: a 3xx ends the transfer with its target in redirect_url, so the
  // caller can check each hop (robots.txt) before it is fetched.
  bool follow_redirects = true;
  // Called once the response headers are in: return a reason to refuse the
  // body (e.g. a page that is not HTML), or "" to take it.
  std::function<std::string(long status, const std::string& content_type)> accept;
  // A conditional request (a re-crawl of a known image): sent as
  // If-None-Match and If-Modified-Since when not empty, and only when they
  // are printable ASCII (a value that is not is left out, never sent).
  std::string if_none_match, if_modified_since;
};


class Fetcher {
 public:
  using Handler = std::function<void(FetchResult&&)>;
  Fetcher(boost::asio::io_context& io, FetchLimits limits);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // Queues a transfer; `done` runs on the io_context when it ends.
  std::uint64_t start(FetchRequest req, Handler done);
  void cancel_all();  // every handler runs with CURLE_ABORTED_BY_CALLBACK
  std::size_t active() const { return running_.size(); }
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct Transfer;
  static std::size_t on_write(char* p, std::size_t size, std::size_t n, void* t);
  // A transfer curl finished: its result read and its handler called.
  void finished(CURL* easy, CURLcode code);
  void launch_waiting();
  // The cookies of limits_.cookies_file into the share every transfer uses:
  // read once, not by every transfer; how many is logged.
  void load_cookies();

  boost::asio::io_context& io_;
  FetchLimits limits_;
  std::unique_ptr<CURLSH, decltype(&curl_share_cleanup)> share_;  // outlives multi_
  CurlMulti multi_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> running_;
  std::deque<std::unique_ptr<Transfer>> waiting_;
  std::uint64_t next_id_ = 1;
};

}  // namespace crawler
