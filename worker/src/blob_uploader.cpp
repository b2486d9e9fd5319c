#include "crawler/blob_uploader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>

#include "crawler/log.hpp"
#include "crawler/store.hpp"

namespace crawler {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
constexpr milliseconds kFirstBackOff{200};
constexpr milliseconds kMaxBackOff{5000};
// A target older than this is asked for again (in the background): a
// primary whose agent_url changed without a failover is noticed too.
constexpr std::chrono::seconds kTargetMaxAge{30};
// An agent that stays down is logged this often, not at every retry.
constexpr std::chrono::seconds kFailureLogInterval{30};
// The most of an answer's body kept (the agent's answers are short JSON).
constexpr std::size_t kMaxAnswer = 4096;
// Bodies larger than this ask "Expect: 100-continue" before they are sent.
constexpr std::uint64_t kExpectContinueAbove = 64 * 1024;
}  // namespace

struct BlobUploader::Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  int fd = -1;
  const std::string* memory = nullptr;  // the body, when the file kept it in memory
  std::size_t memory_at = 0;            // how much of it was sent
  bool read_failed = false;
  Job job;
  std::string url;     // the agent's URL it went to (target_ may change meanwhile)
  std::string answer;  // the response body, clipped
  char errbuf[CURL_ERROR_SIZE] = {0};
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
    if (fd >= 0) ::close(fd);
  }
};

BlobUploader::BlobUploader(asio::io_context& io, WriteApi& api, UploaderSettings settings,
                           std::function<std::uint64_t()> db_epoch)
    : io_(io),
      api_(api),
      settings_(std::move(settings)),
      db_epoch_(std::move(db_epoch)),
      multi_(io, [this](CURL* easy, CURLcode code) { finished(easy, code); }),
      backoff_timer_(io) {
  // One agent at a time: a few connections kept alive to it are enough.
  curl_multi_setopt(multi_.handle(), CURLMOPT_MAXCONNECTS, static_cast<long>(settings_.max_in_flight));
}

BlobUploader::~BlobUploader() {
  backoff_timer_.cancel();
  for (auto& [easy, t] : running_) multi_.remove(easy);
  running_.clear();
}

void BlobUploader::upload(std::shared_ptr<PendingFile> file, const std::string& sha256, const std::string& ext,
                          Done done) {
  Job job;
  job.size = file->size();
  job.file = std::move(file);
  job.name = sha256 + "." + ext;
  job.done = std::move(done);
  ++pending_;
  spooled_bytes_ += job.size;
  waiting_.push_back(std::move(job));
  // From the loop, never inside the caller: done() must not run within upload().
  asio::post(io_, [this] { pump(); });
}

void BlobUploader::stop() {
  stopping_ = true;
  if (holding_) backoff_timer_.cancel();  // its handler ends what waits
  asio::post(io_, [this] { pump(); });
}

UploadBacklog BlobUploader::backlog() const {
  return UploadBacklog{pending_, spooled_bytes_, agent_down_, target_ ? target_->agent_url : std::string()};
}

void BlobUploader::pump() {
  if (holding_) return;
  if (target_ && db_epoch_() != target_epoch_) {
    // The database connection was made again: perhaps to another primary,
    // whose agent is another one. Nothing goes out before it is asked.
    CRAWLER_LOG(info) << "the database reconnected: asking where blobs go again";
    target_.reset();
  }
  if (!target_) {
    if (!waiting_.empty()) ask_target();
    return;
  }
  if (Clock::now() - target_read_at_ > kTargetMaxAge && !asking_) ask_target();  // uploads go on meanwhile
  while (!waiting_.empty() && running_.size() < static_cast<std::size_t>(settings_.max_in_flight)) {
    Job job = std::move(waiting_.front());
    waiting_.pop_front();
    start(std::move(job));
  }
}

void BlobUploader::ask_target() {
  if (asking_) return;
  asking_ = true;
  std::uint64_t epoch = db_epoch_();
  api_.blob_target([this, epoch](const CallStatus& st, std::optional<BlobTarget> target) {
    asking_ = false;
    if (!target) {
      std::string why = "crawl_blob_target(): " + st.error + (st.sqlstate.empty() ? "" : " [" + st.sqlstate + "]");
      if (st.sqlstate == "55000")
        why += "; set crawler_ha.agent_url on the data nodes (docs/file-sync.md) or use --storage";
      note_failure(why, st.sqlstate == "55000");
      if (stopping_) {
        // Nobody says where to upload: what waits goes back with its lease.
        std::deque<Job> jobs;
        jobs.swap(waiting_);
        for (auto& j : jobs) end(j, UploadOutcome{UploadVerdict::kStopped, "stopped before the upload", false});
        return;
      }
      back_off();
      return;
    }
    if (target->agent_url != announced_url_)  // a retry that finds the same agent says nothing new
      CRAWLER_LOG(info) << "blobs go to the agent " << target->agent_url << " (replication mode "
                        << target->replication_mode << ")";
    announced_url_ = target->agent_url;
    target_ = std::move(target);
    // The epoch at the question: a reconnect while it was out makes the
    // answer suspect, and the next pump() asks again.
    target_epoch_ = epoch;
    target_read_at_ = Clock::now();
    pump();
  });
}

void BlobUploader::start(Job&& job) {
  auto t = std::make_unique<Transfer>();
  t->job = std::move(job);
  std::string base = target_->agent_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  t->url = target_->agent_url;
  const std::filesystem::path& path = t->job.file->temp_path();
  t->memory = t->job.file->memory();
  if (!t->memory) t->fd = path.empty() ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CURL* e = t->memory || t->fd >= 0 ? curl_easy_init() : nullptr;
  if (!e) {
    // The spooled file is gone or unreadable: a bad file, not a bad agent.
    UploadOutcome o{UploadVerdict::kBadFile,
                    t->fd < 0 ? "upload: cannot open the spooled file: " + std::string(std::strerror(errno))
                              : "upload: libcurl cannot create a transfer",
                    false};
    Job j = std::move(t->job);
    t.reset();
    end(j, o);
    return;
  }
  t->easy = e;
  t->headers = curl_slist_append(t->headers, ("Authorization: Bearer " + settings_.token).c_str());
  // 100-continue lets the agent refuse a large body before it is sent; for
  // a small one the extra round trip and answer cost more than the bytes.
  t->headers = curl_slist_append(t->headers, t->job.size > kExpectContinueAbove ? "Expect: 100-continue" : "Expect:");
  t->headers = curl_slist_append(t->headers, "Content-Type: application/octet-stream");
  curl_easy_setopt(e, CURLOPT_URL, (base + "/api/blobs/" + t->job.name).c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);  // PUT
  curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t->job.size));
  curl_easy_setopt(e, CURLOPT_READFUNCTION, &BlobUploader::on_read);
  curl_easy_setopt(e, CURLOPT_READDATA, t.get());
  curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &BlobUploader::on_seek);  // a resend after 417 or a dead connection
  curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &BlobUploader::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // the token goes to the agent the database named, only
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, settings_.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, settings_.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
  // In sync mode the agent answers only once the standby has the blob too:
  // that wait is not a stalled transfer.
  long stall_s = settings_.low_speed_seconds + target_->sync_timeout_ms / 1000 + 1;
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, settings_.low_speed_bytes);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, stall_s);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  CURL* key = e;
  running_.emplace(key, std::move(t));
  CURLMcode rc = multi_.add(e);
  if (rc != CURLM_OK) {
    auto node = running_.extract(key);
    retry_later(std::move(node.mapped()->job), node.mapped()->url,
                std::string("upload: ") + curl_multi_strerror(rc));
  }
}

std::size_t BlobUploader::on_read(char* buf, std::size_t size, std::size_t n, void* tp) {
  auto* t = static_cast<Transfer*>(tp);
  if (t->memory) {
    std::size_t got = std::min(size * n, t->memory->size() - t->memory_at);
    std::memcpy(buf, t->memory->data() + t->memory_at, got);
    t->memory_at += got;
    return got;
  }
  for (;;) {
    ssize_t got = ::read(t->fd, buf, size * n);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EINTR) continue;
    t->read_failed = true;
    return CURL_READFUNC_ABORT;
  }
}

int BlobUploader::on_seek(void* tp, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(tp);
  if (t->memory) {
    // libcurl only rewinds a body it sends again (SEEK_SET).
    if (origin != SEEK_SET || offset < 0 || static_cast<std::uint64_t>(offset) > t->memory->size())
      return CURL_SEEKFUNC_FAIL;
    t->memory_at = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
  return ::lseek(t->fd, static_cast<off_t>(offset), origin) < 0 ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

std::size_t BlobUploader::on_body(char* p, std::size_t size, std::size_t n, void* tp) {
  auto* t = static_cast<Transfer*>(tp);
  std::size_t len = size * n;
  if (t->answer.size() < kMaxAnswer) t->answer.append(p, std::min(len, kMaxAnswer - t->answer.size()));
  return len;
}

void BlobUploader::finished(CURL* e, CURLcode code) {
  auto node = running_.extract(e);
  if (node.empty()) return;
  std::unique_ptr<Transfer> t = std::move(node.mapped());
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (t->read_failed) code = CURLE_READ_ERROR;
  UploadOutcome o = classify_upload(code, status, t->answer, t->errbuf);
  Job job = std::move(t->job);
  std::string url = t->url;
  t.reset();  // the connection's file descriptor and the handle go now
  if (o.verdict == UploadVerdict::kTryAgain) {
    retry_later(std::move(job), url, o.error);
  } else {
    if (o.verdict == UploadVerdict::kStored) {
      backoff_ = milliseconds(0);
      if (agent_down_) CRAWLER_LOG(info) << "the agent " << url << " takes uploads again";
      agent_down_ = false;
    }
    CRAWLER_LOG(debug) << "upload " << job.name << " to " << url << ": " << verdict_name(o.verdict)
                       << (o.created ? " (new)" : "") << (o.error.empty() ? "" : ": " + o.error);
    end(job, o);
  }
  pump();
}

void BlobUploader::retry_later(Job&& job, const std::string& url, const std::string& error) {
  note_failure(url + ": " + error);
  if (stopping_) {
    end(job, UploadOutcome{UploadVerdict::kStopped, error, false});
    return;
  }
  // The failed agent is forgotten only if it is still the one named: a
  // target asked for meanwhile stays.
  if (target_ && target_->agent_url == url) target_.reset();
  waiting_.push_front(std::move(job));
  back_off();
}

void BlobUploader::back_off() {
  backoff_ = std::clamp(backoff_ * 2, kFirstBackOff, kMaxBackOff);
  if (holding_) return;  // one back-off at a time: uploads that fail together wait together
  holding_ = true;
  backoff_timer_.expires_after(backoff_);
  backoff_timer_.async_wait([this](const boost::system::error_code&) {
    holding_ = false;
    if (stopping_) {
      std::deque<Job> jobs;
      jobs.swap(waiting_);
      for (auto& j : jobs) end(j, UploadOutcome{UploadVerdict::kStopped, "stopped while the agent was unavailable", false});
      return;
    }
    pump();
  });
}

void BlobUploader::note_failure(const std::string& what, bool misconfigured) {
  auto now = Clock::now();
  if (!agent_down_ || now - last_failure_log_ >= kFailureLogInterval) {
    std::string line = "blob upload: " + what + "; " + std::to_string(pending_) +
                       " upload(s) wait, retrying (back-off up to " + std::to_string(kMaxBackOff.count() / 1000) +
                       " s)";
    if (misconfigured) CRAWLER_LOG(error) << line;
    else CRAWLER_LOG(warn) << line;
    last_failure_log_ = now;
  }
  agent_down_ = true;
}

void BlobUploader::end(Job& job, const UploadOutcome& outcome) {
  --pending_;
  spooled_bytes_ -= job.size;
  Done done = std::move(job.done);
  job.file.reset();  // the spooled file is removed here, whatever the verdict
  done(outcome);
}

}  // namespace crawler
