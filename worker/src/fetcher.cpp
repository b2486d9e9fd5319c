#include "crawler/fetcher.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <stdexcept>

#include "crawler/log.hpp"
#include "crawler/store.hpp"

namespace crawler {
namespace asio = boost::asio;

struct Fetcher::Transfer {
  std::uint64_t id = 0;
  CURL* easy = nullptr;
  FetchRequest req;
  Handler done;
  FetchResult result;
  bool headers_checked = false;
  bool discard = false;  // a non-2xx body: read and dropped
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;  // the conditional request's, alive as long as the transfer
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
};


Fetcher::Fetcher(asio::io_context& io, FetchLimits limits)
    : io_(io),
      limits_(limits),
      share_(curl_share_init(), &curl_share_cleanup),
      multi_(io, [this](CURL* easy, CURLcode code) { finished(easy, code); }) {
  if (!share_) throw std::runtime_error("libcurl: cannot create a share handle");
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (!limits_.cookies_file.empty()) load_cookies();
  CURLM* m = multi_.handle();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(limits_.host_connections));
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(limits_.concurrency));
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(limits_.concurrency * 2));
  curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
}

void Fetcher::load_cookies() {
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> e(curl_easy_init(), &curl_easy_cleanup);
  if (!e) throw std::runtime_error("libcurl: cannot create a handle to read the cookies");
  curl_easy_setopt(e.get(), CURLOPT_SHARE, share_.get());
  curl_easy_setopt(e.get(), CURLOPT_COOKIEFILE, limits_.cookies_file.c_str());
  curl_easy_setopt(e.get(), CURLOPT_COOKIELIST, "RELOAD");
  curl_slist* cookies = nullptr;
  std::size_t n = 0;
  if (curl_easy_getinfo(e.get(), CURLINFO_COOKIELIST, &cookies) == CURLE_OK)
    for (curl_slist* c = cookies; c; c = c->next) ++n;
  curl_slist_free_all(cookies);
  if (n == 0)
    CRAWLER_LOG(warn) << "--cookies " << limits_.cookies_file
                      << ": no cookie read (the Netscape format: one cookie per line, seven fields separated by tabs)";
  else
    CRAWLER_LOG(info) << "cookies: " << n << " read from " << limits_.cookies_file;
}

Fetcher::~Fetcher() {
  for (auto& [easy, t] : running_) multi_.remove(easy);
  running_.clear();
  waiting_.clear();
  // The multi handle (and its pooled connections) goes next, the share
  // handle after it (members' order).
}

std::uint64_t Fetcher::start(FetchRequest req, Handler done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->req = std::move(req);
  t->done = std::move(done);
  std::uint64_t id = t->id;
  auto at = waiting_.end();
  if (t->req.first)  // behind the other firsts, ahead of the rest
    at = std::find_if(waiting_.begin(), waiting_.end(), [](const auto& w) { return !w->req.first; });
  waiting_.insert(at, std::move(t));
  // Launch from the loop, never from inside a curl callback.
  asio::post(io_, [this] { launch_waiting(); });
  return id;
}

void Fetcher::launch_waiting() {
  // Only `concurrency` transfers are in curl at once: curl's timeouts then
  // measure the transfer, not the time spent queued behind others.
  while (!waiting_.empty() && running_.size() < static_cast<std::size_t>(limits_.concurrency)) {
    auto t = std::move(waiting_.front());
    waiting_.pop_front();
    CURL* e = curl_easy_init();
    if (!e) {
      t->result.code = CURLE_OUT_OF_MEMORY;
      t->result.error = "libcurl: cannot create a transfer";
      auto done = std::move(t->done);
      done(std::move(t->result));
      continue;
    }
    t->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, t->req.url.c_str());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Fetcher::on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, t->req.user_agent.c_str());
    if (!limits_.proxy.empty()) curl_easy_setopt(e, CURLOPT_PROXY, limits_.proxy.c_str());
    // "" starts the cookie engine without reading a file: the cookies are
    // the share's, loaded once (load_cookies).
    if (!limits_.cookies_file.empty()) curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");
    if (header_value_sendable(t->req.if_none_match))
      t->headers = curl_slist_append(t->headers, ("If-None-Match: " + t->req.if_none_match).c_str());
    if (header_value_sendable(t->req.if_modified_since))
      t->headers = curl_slist_append(t->headers, ("If-Modified-Since: " + t->req.if_modified_since).c_str());
    if (t->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // every encoding curl can decode
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, t->req.follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, limits_.max_redirects);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_AUTOREFERER, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, limits_.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, limits_.timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, limits_.low_speed_bytes);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, limits_.low_speed_seconds);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 300L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (t->req.max_bytes > 0)  // refused early when Content-Length says so
      curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t->req.max_bytes));
    CURL* key = e;
    running_.emplace(key, std::move(t));
    CURLMcode rc = multi_.add(e);
    if (rc != CURLM_OK) {
      auto node = running_.extract(key);
      node.mapped()->result.code = CURLE_FAILED_INIT;
      node.mapped()->result.error = curl_multi_strerror(rc);
      auto done = std::move(node.mapped()->done);
      done(std::move(node.mapped()->result));
    }
  }
}

std::size_t Fetcher::on_write(char* p, std::size_t size, std::size_t n, void* tp) {
  auto* t = static_cast<Transfer*>(tp);
  std::size_t len = size * n;
  if (!t->headers_checked) {
    t->headers_checked = true;
    long status = 0;
    char* ct = nullptr;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
    t->result.status = status;
    t->result.content_type = ct ? ct : "";
    if (status < 200 || status >= 300) {
      t->discard = true;
    } else if (t->req.accept) {
      t->result.refused = t->req.accept(status, t->result.content_type);
      if (!t->result.refused.empty()) return 0;  // abort: CURLE_WRITE_ERROR
    }
  }
  if (t->discard) return len;
  if (t->req.max_bytes > 0 && t->result.bytes + len > t->req.max_bytes) {
    t->result.too_large = true;
    return 0;
  }
  t->result.bytes += len;
  if (t->req.file) {
    if (!t->req.file->write(p, len)) return 0;
  } else {
    t->result.body.append(p, len);
  }
  return len;
}

void Fetcher::finished(CURL* e, CURLcode code) {
  auto node = running_.extract(e);
  if (node.empty()) return;
  auto t = std::move(node.mapped());
  FetchResult& r = t->result;
  r.code = code;
  char* eff = nullptr;
  curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) r.effective_url = eff;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
  char* ct = nullptr;
  curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) r.content_type = ct;
  curl_off_t ra = -1;
  if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
    r.retry_after_s = static_cast<long>(ra);
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &r.redirects);
  // every X-Robots-Tag of the response (an index past the last one ends it)
  struct curl_header* h = nullptr;
  for (size_t i = 0; curl_easy_header(e, "X-Robots-Tag", i, CURLH_HEADER, -1, &h) == CURLHE_OK; ++i)
    r.robots_tags.emplace_back(h->value);
  // the validators a re-crawl sends back (the last response's, one each)
  if (curl_easy_header(e, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) r.etag = h->value;
  if (curl_easy_header(e, "Last-Modified", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) r.last_modified = h->value;
  char* target = nullptr;
  if (code == CURLE_OK && r.status >= 300 && r.status < 400 &&
      curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &target) == CURLE_OK && target)
    r.redirect_url = target;
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r.seconds);
  if (code != CURLE_OK) {
    if (r.too_large) r.error = "body larger than " + std::to_string(t->req.max_bytes) + " bytes";
    else if (!r.refused.empty()) r.error = r.refused;
    else r.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
  }
  if (t->discard) r.bytes = 0;
  auto done = std::move(t->done);
  FetchResult result = std::move(r);
  t.reset();
  done(std::move(result));
  if (!waiting_.empty()) launch_waiting();
}

void Fetcher::cancel_all() {
  std::vector<std::unique_ptr<Transfer>> all;
  for (auto& [e, t] : running_) {
    multi_.remove(e);
    all.push_back(std::move(t));
  }
  running_.clear();
  for (auto& t : waiting_) all.push_back(std::move(t));
  waiting_.clear();
  for (auto& t : all) {
    t->result.code = CURLE_ABORTED_BY_CALLBACK;
    t->result.error = "stopped";
    auto done = std::move(t->done);
    FetchResult r = std::move(t->result);
    t.reset();
    done(std::move(r));
  }
}

}  // namespace crawler
