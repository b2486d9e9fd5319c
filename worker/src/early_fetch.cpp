#include "crawler/early_fetch.hpp"

#include <boost/asio/post.hpp>

#include "crawler/log.hpp"
#include "crawler/url.hpp"

namespace crawler {
namespace asio = boost::asio;

std::string early_fetch_line(const EarlyFetchStats& s) {
  if (s.started == 0) return "";
  return "early fetches: " + std::to_string(s.started) + " started, " + std::to_string(s.used) +
         " used by leases, " + std::to_string(s.dropped) + " dropped (not leased to this worker)";
}

EarlyFetches::EarlyFetches(asio::io_context& io, Fetcher& fetcher, std::size_t max_held)
    : io_(io), fetcher_(fetcher), max_held_(max_held), sweep_timer_(io) {}

EarlyFetches::~EarlyFetches() { sweep_timer_.cancel(); }

std::string EarlyFetches::key(std::int64_t session, const std::string& kind, const std::string& url) {
  return std::to_string(session) + ' ' + kind + ' ' + url;
}

bool EarlyFetches::start(std::int64_t session, const std::string& kind, FetchRequest req,
                         std::shared_ptr<PendingFile> file) {
  if (held_.size() >= max_held_) return false;
  auto parts = split_url(req.url);
  if (!parts) return false;
  std::string k = key(session, kind, req.url);
  auto [at, fresh] = held_.try_emplace(k);
  if (!fresh) return false;
  at->second.host = host_key(*parts);
  at->second.file = std::move(file);
  req.file = at->second.file.get();
  ++stats_.started;
  // The file lives as long as the transfer writes to it, also when the
  // early fetch is dropped before it ends.
  fetcher_.start(std::move(req), [this, k, keep = at->second.file](FetchResult&& r) { finished(k, std::move(r)); });
  if (!sweeping_) sweep();
  return true;
}

void EarlyFetches::finished(const std::string& k, FetchResult&& r) {
  auto f = held_.find(k);
  if (f == held_.end()) return;  // cleared meanwhile
  if (f->second.taker) {
    Taker taker = std::move(f->second.taker);
    std::shared_ptr<PendingFile> file = std::move(f->second.file);
    held_.erase(f);
    taker(std::move(r), std::move(file));
    return;
  }
  if (r.code == CURLE_ABORTED_BY_CALLBACK) {  // a stop: nobody will take it
    ++stats_.dropped;
    held_.erase(f);
    return;
  }
  f->second.result = std::move(r);
  f->second.done_at = std::chrono::steady_clock::now();
}

bool EarlyFetches::take(std::int64_t session, const std::string& kind, const std::string& url, Taker taker) {
  auto f = held_.find(key(session, kind, url));
  if (f == held_.end()) return false;
  ++stats_.used;
  if (!f->second.result) {  // still running: its end goes to the item
    f->second.taker = std::move(taker);
    return true;
  }
  FetchResult r = std::move(*f->second.result);
  std::shared_ptr<PendingFile> file = std::move(f->second.file);
  held_.erase(f);
  asio::post(io_, [taker = std::move(taker), r = std::move(r), file = std::move(file)]() mutable {
    taker(std::move(r), std::move(file));
  });
  return true;
}

void EarlyFetches::drop(std::int64_t session, const std::string& url) {
  for (const char* kind : {"page", "image"}) {
    auto f = held_.find(key(session, kind, url));
    if (f == held_.end() || f->second.taker) continue;
    ++stats_.dropped;
    held_.erase(f);
  }
}

std::size_t EarlyFetches::held_on(const std::string& host) const {
  std::size_t n = 0;
  for (const auto& [k, h] : held_)
    if (h.host == host && !h.taker) ++n;
  return n;
}

void EarlyFetches::clear() {
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.taker) {
      ++it;  // its item waits for the transfer's (aborted) end
    } else {
      ++stats_.dropped;  // fetched (or started) and never used
      it = held_.erase(it);
    }
  }
  if (held_.empty()) sweep_timer_.cancel();  // nothing keeps the loop
}

void EarlyFetches::sweep() {
  // Results no lease came for: the frontier gave the URL to another worker,
  // or refused it (a duplicate, the page budget), or it waits behind others.
  auto now = std::chrono::steady_clock::now();
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.result && !it->second.taker && now - it->second.done_at > kKeep) {
      CRAWLER_LOG(debug) << "early fetch not leased to this worker within " << kKeep.count() << " s, dropped: "
                         << it->first.substr(it->first.find(' ', it->first.find(' ') + 1) + 1);
      ++stats_.dropped;
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  sweeping_ = !held_.empty();
  if (!sweeping_) return;
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) sweep();
    else sweeping_ = false;
  });
}

}  // namespace crawler
