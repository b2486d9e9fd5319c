// HTTP calls to the peer node's agent (libcurl, one easy handle per thread
// so that its connection is kept between calls): the resumable download of
// a blob, the upload of a blob in the sync replication modes, and the
// orphan sweep's question. TLS is verified (ca_file, else the system's
// CAs); the bearer token goes with every call.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "crawler/agent/pacer.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/token_file.hpp"

typedef void CURL;
struct curl_slist;

namespace crawler::agent {

struct PeerSettings {
  std::string ca_file;                 // empty: the system's CAs
  int timeout_ms = 10000;              // connect timeout; also no byte for this long ends a transfer
  SharedPacer* download_pacer = nullptr;    // holds the rate of all downloads together; null: no limit
};

// What a download did to the part file.
struct Download {
  bool ok = false;           // the part file holds the whole body (status 200 or 206), not fsynced
  long status = 0;           // the answer's HTTP status; 0 when none came
  bool resumed = false;      // a Range request was answered with 206 and appended to
  bool restarted = false;    // the part file was emptied (200 to a Range request)
  bool discard = false;      // the part file is useless: the caller removes it
  std::uint64_t received = 0;  // body bytes written by this call
  std::uint64_t size = 0;      // the part file's size afterwards
  std::string sha256;          // when ok: the part file's sha256 (hex), hashed as it was written
  std::string error;           // why not ok (curl's error, the status and the body's start)
};

// One blob asked for in a bundle download.
struct BundleItem {
  std::string name;                // "<sha256>.<ext>" (or the sha256 alone), as sent
  std::string sha256;
  std::filesystem::path part;      // written from its first byte (a bundle does not resume)
  std::uint64_t max_bytes = 0;     // a longer blob is refused; 0: no limit
};

// What a bundle download gave: per item, in the order asked, a Download as
// download() describes it (status 200 when the bytes came, 404 when the
// peer does not hold the blob; `discard` whenever not ok).
struct BundleDownload {
  long status = 0;            // the answer's HTTP status; 0 when none came
  std::string error;          // why the call as a whole failed, if it did
  std::vector<Download> items;
};

// An answer with a small body (at most 16 MiB kept).
struct Reply {
  long status = 0;  // 0: no answer (error says why)
  std::string body;
  std::string error;
};

class PeerClient {
 public:
  // `token` and `stop` outlive this. stop() aborts a transfer in flight.
  PeerClient(PeerSettings settings, TokenFile& token, Stopper& stop);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // GET `url` into `part`. A part file with bytes in it is resumed with
  // `Range: bytes=<size>-`: 206 with a Content-Range starting there
  // appends, 200 starts over, 416 leaves the part file as it is (it may
  // hold the whole blob: the caller's hash decides). A body longer than
  // `max_bytes` (when not 0) is abandoned and the part marked to discard:
  // a peer cannot fill the disk. A transfer that breaks keeps what it wrote
  // for the next resume.
  Download download(const std::string& url, const std::filesystem::path& part, std::uint64_t max_bytes);

  // POST the names of `items` to `url` (a peer's /api/blobs/bundle) and
  // write each blob of the answer to its part file, hashed as it is
  // written. A broken answer fails the items it had not finished; a peer
  // without the route answers 404 or 405 (the caller fetches one by one).
  BundleDownload download_bundle(const std::string& url, const std::vector<BundleItem>& items);

  // PUT `file` to `url` (Expect: 100-continue, so a refusal costs no
  // upload). `timeout_ms` > 0 bounds the whole call.
  Reply put_file(const std::string& url, const std::filesystem::path& file, long timeout_ms);

  // POST a JSON body to `url`.
  Reply post_json(const std::string& url, const std::string& json);

 private:
  // Runs the transfer set up on curl_. *status gets the answer's HTTP status
  // (0 when none came). Returns "" when the transfer completed, otherwise
  // curl's error with its detail.
  std::string perform(long* status);
  curl_slist* common_headers(const char* content_type, bool expect_continue);
  void common_options();
  PeerSettings settings_;
  TokenFile& token_;
  Stopper& stop_;
  CURL* curl_;
};

}  // namespace crawler::agent
