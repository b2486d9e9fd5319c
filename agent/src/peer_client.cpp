#include "crawler/agent/peer_client.hpp"

#include "crawler/agent/blob_events.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "crawler/blob_bundle.hpp"
#include "crawler/sha256.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler::agent {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kMaxReplyBody = 16u << 20;
constexpr std::size_t kMaxErrorBody = 512;

int abort_on_stop(void* stopper, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Stopper*>(stopper)->stopped() ? 1 : 0;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  std::size_t len = size * n;
  if (s->size() + len > kMaxReplyBody) return 0;  // aborts: the peer talks too much
  s->append(data, len);
  return len;
}

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// What a download's callbacks share.
struct Sink {
  int fd = -1;
  SharedPacer* pacer = nullptr;
  Stopper* stop = nullptr;
  std::uint64_t have = 0;       // bytes in the part file before the call
  std::uint64_t max_bytes = 0;
  CURL* curl = nullptr;
  bool decided = false;         // the first body byte of the final answer was seen
  bool to_file = false;         // the body goes to the part file (200 / 206)
  bool too_long = false, bad_range = false, write_failed = false, restarted = false, resumed = false;
  long range_start = -1;        // Content-Range's first byte, -1 when absent
  std::uint64_t written = 0;    // body bytes written this call
  std::uint64_t file_size = 0;  // the part file's size as written
  std::string error_body;
  std::string write_error;
  // The part file's hash as it is written: the bytes kept from before a
  // resume, then each piece received, so that no one reads the file again.
  std::unique_ptr<Sha256> md;
};

// Hashes the first `n` bytes of the part file (what a resume keeps).
bool hash_prefix(Sink* s, std::uint64_t n) {
  std::vector<char> buf(256 * 1024);
  std::uint64_t off = 0;
  while (off < n) {
    ssize_t r = ::pread(s->fd, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), n - off)),
                        static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    s->md->update(buf.data(), static_cast<std::size_t>(r));
    off += static_cast<std::uint64_t>(r);
  }
  return true;
}

size_t on_header(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<Sink*>(p);
  std::string line(data, size * n);
  // A new status line (after "100 Continue"): forget the previous answer's.
  if (line.rfind("HTTP/", 0) == 0) s->range_start = -1;
  static const char kName[] = "content-range:";
  if (line.size() > sizeof kName - 1 && strncasecmp(line.c_str(), kName, sizeof kName - 1) == 0) {
    // "bytes <first>-<last>/<total>"
    auto pos = line.find("bytes", sizeof kName - 1);
    if (pos != std::string::npos) {
      const char* p2 = line.c_str() + pos + 5;
      while (*p2 == ' ') ++p2;
      char* end = nullptr;
      long long first = std::strtoll(p2, &end, 10);
      if (end != p2 && *end == '-') s->range_start = static_cast<long>(first);
    }
  }
  return size * n;
}

bool decide(Sink* s) {
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  s->decided = true;
  if (status == 206) {
    if (s->range_start < 0 || static_cast<std::uint64_t>(s->range_start) != s->have) {
      s->bad_range = true;  // not the bytes that follow ours
      return false;
    }
    if (::lseek(s->fd, static_cast<off_t>(s->have), SEEK_SET) < 0) return false;
    s->md = std::make_unique<Sha256>();
    if (!hash_prefix(s, s->have)) return false;
    s->file_size = s->have;
    s->resumed = true;
    s->to_file = true;
  } else if (status == 200) {
    // The whole body from its first byte: whatever the part file held goes.
    // Only a part file with bytes is truncated: ext4 flushes a file
    // truncated to 0 when it is closed (its auto_da_alloc), and that
    // writeback would run on this transfer thread for every new blob.
    if ((s->have > 0 && ::ftruncate(s->fd, 0) != 0) || ::lseek(s->fd, 0, SEEK_SET) < 0) return false;
    s->md = std::make_unique<Sha256>();
    s->restarted = s->have > 0;
    s->file_size = 0;
    s->to_file = true;
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<Sink*>(p);
  std::size_t len = size * n;
  if (!s->decided && !decide(s)) return 0;
  if (!s->to_file) {
    if (s->error_body.size() < kMaxErrorBody)
      s->error_body.append(data, std::min(len, kMaxErrorBody - s->error_body.size()));
    return len;
  }
  if (s->max_bytes && s->file_size + len > s->max_bytes) {
    s->too_long = true;
    return 0;
  }
  std::size_t off = 0;
  while (off < len) {
    ssize_t w = ::write(s->fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      s->write_failed = true;
      s->write_error = std::strerror(errno);
      return 0;
    }
    off += static_cast<std::size_t>(w);
  }
  s->md->update(data, len);
  s->written += len;
  s->file_size += len;
  // Sleeping here holds the socket unread: TCP slows the peer down.
  if (s->pacer) {
    auto wait = s->pacer->account(len);
    if (wait.count() > 0 && !s->stop->sleep_for(wait)) return 0;  // stopped: abort
  }
  return len;
}
// What a bundle download's callbacks share.
struct BundleSink {
  CURL* curl = nullptr;
  SharedPacer* pacer = nullptr;
  Stopper* stop = nullptr;
  const std::vector<BundleItem>* items = nullptr;
  std::vector<Download>* out = nullptr;
  std::unique_ptr<BundleReader> reader;
  bool decided = false, to_reader = false, stopped = false;
  int fd = -1;                 // the part file of the entry being read
  std::unique_ptr<Sha256> md;  // its hash so far
  std::string failure;         // why reading stopped (a write, a size, the format)
  std::string error_body;

  ~BundleSink() {
    if (fd >= 0) ::close(fd);
  }

  bool begin(std::size_t i, std::uint64_t size) {
    const BundleItem& item = (*items)[i];
    Download& d = (*out)[i];
    d.status = 200;
    if (item.max_bytes && size > item.max_bytes) {
      d.error = "the peer sent " + std::to_string(size) + " bytes, more than the " +
                std::to_string(item.max_bytes) + " expected";
      failure = d.error;
      return false;
    }
    fd = ::open(item.part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      d.error = "cannot open " + item.part.string() + ": " + std::strerror(errno);
      failure = d.error;
      return false;
    }
    md = std::make_unique<Sha256>();
    return true;
  }

  bool data(std::size_t i, const char* p, std::size_t n) {
    Download& d = (*out)[i];
    for (std::size_t off = 0; off < n;) {
      ssize_t w = ::write(fd, p + off, n - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        d.error = "cannot write " + (*items)[i].part.string() + ": " + std::strerror(errno);
        failure = d.error;
        return false;
      }
      off += static_cast<std::size_t>(w);
    }
    md->update(p, n);
    d.received += n;
    d.size += n;
    if (pacer) {
      auto wait = pacer->account(n);
      if (wait.count() > 0 && !stop->sleep_for(wait)) {
        stopped = true;
        return false;
      }
    }
    return true;
  }

  bool end(std::size_t i) {
    Download& d = (*out)[i];
    ::close(fd);
    fd = -1;
    d.ok = true;
    d.discard = false;
    d.sha256 = md->hex_digest();
    return true;
  }

  bool absent(std::size_t i) {
    Download& d = (*out)[i];
    d.status = 404;
    d.error = "the peer's store does not hold it (bundle)";
    return true;
  }
};

size_t on_bundle_body(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<BundleSink*>(p);
  std::size_t len = size * n;
  if (!s->decided) {
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    s->decided = true;
    s->to_reader = status == 200;
  }
  if (!s->to_reader) {
    if (s->error_body.size() < kMaxErrorBody)
      s->error_body.append(data, std::min(len, kMaxErrorBody - s->error_body.size()));
    return len;
  }
  if (!s->reader->feed(data, len)) {
    if (s->failure.empty()) s->failure = s->reader->error();
    return 0;  // aborts the transfer
  }
  return len;
}
}  // namespace

PeerClient::PeerClient(PeerSettings settings, TokenFile& token, Stopper& stop)
    : settings_(std::move(settings)), token_(token), stop_(stop), curl_(curl_easy_init()) {
  if (!curl_) throw std::runtime_error("curl_easy_init failed");
}

PeerClient::~PeerClient() { curl_easy_cleanup(curl_); }

void PeerClient::common_options() {
  curl_easy_reset(curl_);  // keeps the connection cache
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, "crawler-ha-agent/" CRAWLER_VERSION);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings_.timeout_ms));
  // "No byte for timeout_ms": under 1 byte/s for that many seconds.
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, std::max(1L, (settings_.timeout_ms + 999L) / 1000L));
  curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, settings_.ca_file.c_str());
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
  curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, &stop_);
}

std::string PeerClient::perform(long* status) {
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(curl_);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);  // errbuf goes out of scope
  *status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, status);
  if (rc == CURLE_OK) return {};
  return std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
}

curl_slist* PeerClient::common_headers(const char* content_type, bool expect_continue) {
  curl_slist* h = nullptr;
  std::string token = token_.get();
  if (!token.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + token).c_str());
  if (content_type) h = curl_slist_append(h, (std::string("Content-Type: ") + content_type).c_str());
  // Without a body, curl adds none; with one, explicit so that it holds for
  // small files too.
  h = curl_slist_append(h, expect_continue ? "Expect: 100-continue" : "Expect:");
  return h;
}

Download PeerClient::download(const std::string& url, const fs::path& part, std::uint64_t max_bytes) {
  Download d;
  Sink s;
  s.curl = curl_;
  s.max_bytes = max_bytes;
  s.pacer = settings_.download_pacer;
  s.stop = &stop_;
  s.fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);  // read too: a resume hashes the kept bytes
  if (s.fd < 0) {
    d.error = "cannot open " + part.string() + ": " + std::strerror(errno);
    return d;
  }
  struct stat st;
  if (::fstat(s.fd, &st) == 0) s.have = static_cast<std::uint64_t>(st.st_size);
  common_options();
  std::unique_ptr<curl_slist, SlistFree> headers(common_headers(nullptr, false));
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  // Identity encoding: a Range counts bytes of the file, not of a
  // compressed form of it.
  std::string range = std::to_string(s.have) + "-";
  if (s.have > 0) curl_easy_setopt(curl_, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &s);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &s);
  const std::string failed = perform(&d.status);
  const bool completed = failed.empty();
  // An empty body (a 0-byte blob, or an answer without one) calls no write
  // callback: decide now.
  if (completed && !s.decided && !decide(&s) && !s.bad_range)
    d.error = std::string("cannot reset ") + part.string() + ": " + std::strerror(errno);
  d.resumed = s.resumed;
  d.restarted = s.restarted;
  d.received = s.written;
  if (s.too_long) {
    d.discard = true;
    d.error = "the peer sent more than the " + std::to_string(max_bytes) + " bytes expected";
  } else if (s.bad_range) {
    d.discard = true;
    d.error = "the peer answered a Range request for bytes " + std::to_string(s.have) +
              "- with a Content-Range starting at " + std::to_string(s.range_start);
  } else if (stop_.stopped()) {
    d.error = "abandoned: the agent is stopping";
  } else if (s.write_failed) {
    d.error = "cannot write " + part.string() + ": " + s.write_error;
  } else if (!completed) {
    d.error = failed;
  } else if (!s.to_file) {
    d.error = "HTTP " + std::to_string(d.status) +
              (s.error_body.empty() ? "" : ": " + one_line(s.error_body, 300));
  } else if (d.error.empty()) {
    d.ok = true;
    d.sha256 = s.md->hex_digest();
  }
  if (::fstat(s.fd, &st) == 0) d.size = static_cast<std::uint64_t>(st.st_size);
  ::close(s.fd);
  return d;
}

BundleDownload PeerClient::download_bundle(const std::string& url, const std::vector<BundleItem>& items) {
  BundleDownload result;
  result.items.resize(items.size());
  for (auto& d : result.items) d.discard = true;  // until its bytes are all written
  nlohmann::json query;
  query["blobs"] = nlohmann::json::array();
  std::vector<std::string> expected;
  for (const auto& item : items) {
    query["blobs"].push_back(item.name);
    expected.push_back(item.sha256);
  }
  const std::string body = query.dump();

  BundleSink sink;
  sink.curl = curl_;
  sink.pacer = settings_.download_pacer;
  sink.stop = &stop_;
  sink.items = &items;
  sink.out = &result.items;
  BundleReader::Callbacks cb;
  cb.begin = [&sink](std::size_t i, std::uint64_t size) { return sink.begin(i, size); };
  cb.data = [&sink](std::size_t i, const char* p, std::size_t n) { return sink.data(i, p, n); };
  cb.end = [&sink](std::size_t i) { return sink.end(i); };
  cb.absent = [&sink](std::size_t i) { return sink.absent(i); };
  sink.reader = std::make_unique<BundleReader>(std::move(expected), std::move(cb));

  common_options();
  std::unique_ptr<curl_slist, SlistFree> headers(common_headers("application/json", false));
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_bundle_body);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &sink);
  const std::string failed = perform(&result.status);
  if (sink.to_reader && failed.empty() && !sink.reader->complete())
    result.error = "the bundle ended after " + std::to_string(sink.reader->entries_done()) + " of " +
                   std::to_string(items.size()) + " entries";
  else if (stop_.stopped() || sink.stopped)
    result.error = "abandoned: the agent is stopping";
  else if (!sink.failure.empty())
    result.error = sink.failure;
  else if (!failed.empty())
    result.error = failed;
  else if (!sink.to_reader)
    result.error = "HTTP " + std::to_string(result.status) +
                   (sink.error_body.empty() ? "" : ": " + one_line(sink.error_body, 300));
  // An entry cut off (or never reached) fails with the call's reason.
  for (auto& d : result.items)
    if (!d.ok && d.error.empty()) d.error = result.error.empty() ? "not in the bundle" : result.error;
  if (!sink.to_reader)
    for (auto& d : result.items) d.status = result.status;
  return result;
}

Reply PeerClient::put_file(const std::string& url, const fs::path& file, long timeout_ms) {
  Reply r;
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) {
    r.error = "cannot open " + file.string() + ": " + std::strerror(errno);
    return r;
  }
  struct stat st;
  if (::fstat(::fileno(f), &st) != 0) {
    r.error = "cannot stat " + file.string() + ": " + std::strerror(errno);
    std::fclose(f);
    return r;
  }
  common_options();
  std::unique_ptr<curl_slist, SlistFree> headers(common_headers("application/octet-stream", true));
  // Appended to a list that is never empty, so the head stays the same.
  curl_slist_append(headers.get(), (std::string(kPeerCopyHeader) + ": 1").c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl_, CURLOPT_READDATA, f);  // curl's default reader is fread
  curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
  curl_easy_setopt(curl_, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
  if (timeout_ms > 0) curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
  r.error = perform(&r.status);
  std::fclose(f);
  if (!r.error.empty()) r.status = 0;
  return r;
}

Reply PeerClient::post_json(const std::string& url, const std::string& json) {
  Reply r;
  common_options();
  std::unique_ptr<curl_slist, SlistFree> headers(common_headers("application/json", false));
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
  r.error = perform(&r.status);
  if (!r.error.empty()) r.status = 0;
  return r;
}

}  // namespace crawler::agent
