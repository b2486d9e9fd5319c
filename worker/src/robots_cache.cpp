#include "crawler/robots_cache.hpp"

#include <boost/asio/post.hpp>

#include "crawler/log.hpp"

namespace crawler {
namespace asio = boost::asio;

namespace {

// Robots files whose rules add up to more than this are matched on a thread
// of their own: a few microseconds per URL below it, up to tens of
// milliseconds at the 500 KiB a robots.txt may have.
constexpr std::size_t kInlineRobotsBytes = 16 * 1024;
// How long a host's robots.txt is kept (RFC 9309: at most a day), and how
// long a failure to get it holds.
constexpr std::chrono::seconds kKeep{86400}, kKeepFailure{60};
// The longest Crawl-delay passed on to the database's politeness.
constexpr double kMaxCrawlDelayS = 86400;

}  // namespace

RobotsCache::RobotsCache(asio::io_context& io, Fetcher& fetcher, WriteApi& api)
    : io_(io), fetcher_(fetcher), api_(api) {}

RobotsCache::~RobotsCache() { matchers_.join(); }

void RobotsCache::check(const UrlParts& url, const std::string& user_agent, Done done) {
  std::string host = host_key(url);
  Host& h = hosts_[host];
  if (h.ready && std::chrono::steady_clock::now() > h.expires) {
    h.ready = false;
    h.by_agent.clear();
  }
  if (!h.ready) {
    h.waiters.push_back([this, url, user_agent, done = std::move(done)] { check(url, user_agent, done); });
    if (!h.loading) load(host, url.scheme, user_agent);
    return;
  }
  if (h.temporary_failure) {
    done(Verdict::kUnavailable);
    return;
  }
  std::string agent = agent_token(user_agent);
  auto found = h.by_agent.find(agent);
  if (found == h.by_agent.end())
    found = h.by_agent.emplace(agent, std::make_shared<const Robots>(Robots::parse(h.text, agent))).first;
  std::shared_ptr<const Robots> robots = found->second;
  if (robots->pattern_bytes() <= kInlineRobotsBytes) {
    done(robots->allowed(url.path) ? Verdict::kAllowed : Verdict::kDisallowed);
    return;
  }
  // Each rule costs a pass over the path: hundreds of kilobytes of rules
  // take tens of milliseconds per URL, which the loop's transfers and
  // database calls must not wait for.
  asio::post(matchers_, [this, robots = std::move(robots), path = url.path, done = std::move(done)] {
    bool allowed = robots->allowed(path);
    asio::post(io_, [allowed, done] { done(allowed ? Verdict::kAllowed : Verdict::kDisallowed); });
  });
}

bool RobotsCache::allows_now_without_delay(const UrlParts& url, const std::string& user_agent) {
  auto f = hosts_.find(host_key(url));
  if (f == hosts_.end()) return false;
  Host& h = f->second;
  if (!h.ready || h.temporary_failure || std::chrono::steady_clock::now() > h.expires) return false;
  std::string agent = agent_token(user_agent);
  auto found = h.by_agent.find(agent);
  if (found == h.by_agent.end())
    found = h.by_agent.emplace(agent, std::make_shared<const Robots>(Robots::parse(h.text, agent))).first;
  const Robots& robots = *found->second;
  if (robots.crawl_delay().value_or(0) > 0 || robots.pattern_bytes() > kInlineRobotsBytes) return false;
  return robots.allowed(url.path);
}

void RobotsCache::forget() {
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    if (it->second.loading) {
      ++it;
    } else {
      it = hosts_.erase(it);
    }
  }
}

std::string RobotsCache::failure(const std::string& host) const {
  auto f = hosts_.find(host);
  if (f == hosts_.end() || f->second.failure.empty()) return "server error or unreachable";
  return f->second.failure;
}

const std::vector<std::string>& RobotsCache::sitemaps(const std::string& host) const {
  static const std::vector<std::string> none;
  auto f = hosts_.find(host);
  if (f == hosts_.end() || !f->second.ready || f->second.temporary_failure) return none;
  return f->second.sitemaps;
}

void RobotsCache::load(const std::string& host, const std::string& scheme, const std::string& user_agent) {
  hosts_[host].loading = true;
  // Another worker may have fetched it already: the database shares it.
  api_.stored_robots(host, [this, host, scheme, user_agent](const CallStatus&, std::optional<StoredRobots> stored) {
    if (stored && stored->age_s < kKeep.count()) {
      Host& h = hosts_[host];
      h.text = std::move(stored->text);
      h.temporary_failure = false;
      loaded(host);
      return;
    }
    FetchRequest req;
    req.url = scheme + "://" + host + "/robots.txt";
    req.user_agent = user_agent;
    req.max_bytes = kRobotsMaxBytes;
    std::string agent = agent_token(user_agent);
    fetcher_.start(std::move(req), [this, host, agent](FetchResult&& res) { fetched(host, agent, std::move(res)); });
  });
}

void RobotsCache::fetched(const std::string& host, const std::string& agent, FetchResult&& res) {
  Host& h = hosts_[host];
  bool ok = res.code == CURLE_OK || res.too_large;
  if (ok && res.status >= 200 && res.status < 300) {
    h.text = std::move(res.body);  // a robots.txt over 512 KiB is read as far as it goes
    h.temporary_failure = false;
    h.failure.clear();
  } else if (ok && res.status >= 400 && res.status < 500) {
    h.text.clear();  // RFC 9309: unavailable (4xx) means no restrictions
    h.temporary_failure = false;
    h.failure.clear();
  } else {
    // RFC 9309: unreachable (5xx, network) means complete disallow for now.
    h.failure = ok ? "HTTP " + std::to_string(res.status)
                   : std::string(curl_easy_strerror(res.code)) + (res.error.empty() ? "" : ": " + res.error);
    CRAWLER_LOG(warn) << "robots.txt of " << host << ": " << h.failure;
    h.temporary_failure = true;
    loaded(host);
    return;
  }
  // The Crawl-delay of the group that applies to this crawler's agent.
  std::optional<double> delay = Robots::parse(h.text, agent).crawl_delay();
  if (delay) delay = std::min(*delay, kMaxCrawlDelayS);
  api_.set_host_robots(host, delay, h.text, [host](const CallStatus& st) {
    if (!st.ok) CRAWLER_LOG(warn) << "crawl_host_set " << host << ": " << st.error;
  });
  loaded(host);
}

void RobotsCache::loaded(const std::string& host) {
  Host& h = hosts_[host];
  h.loading = false;
  h.ready = true;
  h.by_agent.clear();
  h.sitemaps = h.temporary_failure ? std::vector<std::string>{} : robots_sitemaps(h.text);
  h.expires = std::chrono::steady_clock::now() + (h.temporary_failure ? kKeepFailure : kKeep);
  auto waiters = std::move(h.waiters);
  h.waiters.clear();
  for (auto& w : waiters) w();
}

}  // namespace crawler
