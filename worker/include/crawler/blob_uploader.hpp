// Uploads of finished images to the primary node's agent (--storage-agent):
// PUT <agent_url>/api/blobs/<sha256>.<ext> with the bearer token, the
// file's bytes from the spool, "Expect: 100-continue" (an agent that has
// the blob answers 200 without reading the body), TLS verified. Transfers
// run on the worker's loop through a multi handle of their own
// (curl_multi.hpp), so uploads neither wait behind nor count against the
// crawl's transfers; no thread per upload.
//
// The agent's URL comes from the database (crawl_blob_target(), through the
// write API), which is the writable primary's: it is cached, and dropped
// when the agent does not answer (no connection, reset, timeout, 502/503/
// 504), when the database connection was made again (a failover may have
// moved the primary), and every 30 s. After such a failure the uploader
// waits (0.2 s doubling to 5 s), asks the database again and sends the
// upload again: for as long as the crawl runs, bounded by what the crawler
// lets wait (--max-spool-bytes, --max-pending-writes). Every other answer
// ends the upload (upload_outcome.hpp says which means what).
//
// Invariant 9's half in the worker: an upload's callback says kStored only
// after the agent answered 2xx, i.e. the bytes are durable at the primary's
// node (on both nodes in sync mode); the crawler records the row only then.
#pragma once
#include <curl/curl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "crawler/curl_multi.hpp"
#include "crawler/upload_outcome.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

class PendingFile;

// How the uploader connects and how long it waits.
struct UploaderSettings {
  std::string token;    // the agents' bearer token
  std::string ca_file;  // CA bundle for the agents' TLS; "" = the system's
  long connect_timeout_ms = 10000;
  long low_speed_bytes = 1000;   // slower than this ...
  long low_speed_seconds = 20;   // ... for this long (plus the sync wait) is a timeout
  // Uploads at once. Each waits for two of the agent's group syncs (the
  // bytes, then the name) before it is answered, so it is latency, not
  // bandwidth: with 8, a crawl of small images through the agents took
  // 2.27-2.45 s against 2.02 s with 32 (bench/files, 5 rounds each).
  int max_in_flight = 32;
};

// What waits for the agent, for progress lines.
struct UploadBacklog {
  std::size_t uploads = 0;   // handed to the uploader and not yet ended
  std::uint64_t bytes = 0;   // their files' bytes in the spool
  bool agent_down = false;   // the last attempt failed and none has worked since
  std::string agent_url;     // the current target ("" while unknown)
};

class BlobUploader {
 public:
  // Runs on the loop once per upload. The verdict is never kTryAgain: that
  // is retried here. kStopped: the worker is stopping and the agent did not
  // take the file.
  using Done = std::function<void(const UploadOutcome&)>;
  // `db_epoch` counts the database's reconnections: when it changes the
  // cached agent URL is not trusted any more.
  BlobUploader(boost::asio::io_context& io, WriteApi& api, UploaderSettings settings,
               std::function<std::uint64_t()> db_epoch);
  ~BlobUploader();
  BlobUploader(const BlobUploader&) = delete;
  BlobUploader& operator=(const BlobUploader&) = delete;

  // Uploads the finished, hashed `file` as <sha256>.<ext>; `file` is kept
  // (and with it the spooled bytes) until done() has run.
  void upload(std::shared_ptr<PendingFile> file, const std::string& sha256, const std::string& ext, Done done);
  // From now on an upload that would be retried ends kStopped instead, and
  // so do those waiting for a retry; uploads under way run to their end.
  void stop();
  UploadBacklog backlog() const;
  std::size_t pending() const { return pending_; }
  std::uint64_t spooled_bytes() const { return spooled_bytes_; }

 private:
  struct Job {
    std::shared_ptr<PendingFile> file;
    std::string name;  // <sha256>.<ext>
    std::uint64_t size = 0;
    Done done;
  };
  struct Transfer;
  // Starts what can start: asks for the target first when there is none.
  void pump();
  void ask_target();
  void start(Job&& job);
  void finished(CURL* easy, CURLcode code);
  // The agent did not answer: the job goes back to the front of the queue,
  // the target is forgotten (if it is still the one that failed), and
  // nothing starts until the back-off has passed.
  void retry_later(Job&& job, const std::string& url, const std::string& error);
  void back_off();
  void end(Job& job, const UploadOutcome& outcome);
  // Logs a failure when the agent was fine until now, then every 30 s;
  // `misconfigured` (no agent_url on the primary) is logged as an error.
  void note_failure(const std::string& what, bool misconfigured = false);
  static std::size_t on_read(char* buf, std::size_t size, std::size_t n, void* t);
  static int on_seek(void* t, curl_off_t offset, int origin);
  static std::size_t on_body(char* p, std::size_t size, std::size_t n, void* t);

  boost::asio::io_context& io_;
  WriteApi& api_;
  UploaderSettings settings_;
  std::function<std::uint64_t()> db_epoch_;
  CurlMulti multi_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> running_;
  std::deque<Job> waiting_;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};
  bool holding_ = false;  // a back-off is running
  bool asking_ = false;   // crawl_blob_target() is out
  bool stopping_ = false;
  // The current target, the database epoch it was read in and when.
  std::optional<BlobTarget> target_;
  std::uint64_t target_epoch_ = 0;
  std::chrono::steady_clock::time_point target_read_at_;
  std::string announced_url_;  // the agent last logged as the target
  std::size_t pending_ = 0;
  std::uint64_t spooled_bytes_ = 0;
  bool agent_down_ = false;
  std::chrono::steady_clock::time_point last_failure_log_;
};

}  // namespace crawler
