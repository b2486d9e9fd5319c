// robots.txt, per host: read from the database when another worker stored
// it within a day, else fetched once (by whichever item needs it first) and
// stored for every worker with its Crawl-delay; kept a day, or a minute
// after a failure. Matching a URL against a host whose rules are large runs
// on a thread of its own, never on the loop.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "crawler/fetcher.hpp"
#include "crawler/robots.hpp"
#include "crawler/url.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

class RobotsCache {
 public:
  enum class Verdict {
    kAllowed,
    kDisallowed,
    kUnavailable,  // RFC 9309: a 5xx or an unreachable host disallows everything, for now
  };
  using Done = std::function<void(Verdict)>;

  RobotsCache(boost::asio::io_context& io, Fetcher& fetcher, WriteApi& api);
  ~RobotsCache();  // waits for the matches under way
  RobotsCache(const RobotsCache&) = delete;
  RobotsCache& operator=(const RobotsCache&) = delete;

  // Whether `url` may be fetched as `user_agent` (the group of its agent
  // token applies). `done` runs on the loop: at once when the host's rules
  // are known and small, else when they are loaded or matched. The first
  // check of a host fetches its robots.txt as `user_agent`.
  void check(const UrlParts& url, const std::string& user_agent, Done done);
  // Whether `url` may be fetched as `user_agent` before the frontier leases
  // it, decided now without loading anything: true only when the host's
  // rules are known, small, allow the path, and set no Crawl-delay (the
  // frontier spaces fetches by it; an early fetch would not be).
  bool allows_now_without_delay(const UrlParts& url, const std::string& user_agent);
  // Every host's robots.txt is read again when next needed (a reload); a
  // load under way keeps its waiters.
  void forget();
  // Why `host`'s robots.txt is unavailable ("HTTP 503", or curl's error
  // when the host did not answer), after check() said kUnavailable;
  // "server error or unreachable" when not known.
  std::string failure(const std::string& host) const;
  // The sitemaps `host`'s robots.txt names (robots_sitemaps()), once check()
  // has answered for the host; none before, or when it is unavailable.
  const std::vector<std::string>& sitemaps(const std::string& host) const;

 private:
  struct Host {
    bool ready = false, loading = false, temporary_failure = false;
    std::string text;
    std::string failure;  // why the last fetch failed (temporary_failure)
    std::vector<std::string> sitemaps;  // its Sitemap: lines, read once loaded
    std::map<std::string, std::shared_ptr<const Robots>> by_agent;  // shared with a matching thread
    std::chrono::steady_clock::time_point expires;
    std::vector<std::function<void()>> waiters;  // checks to run again once loaded
  };
  void load(const std::string& host, const std::string& scheme, const std::string& user_agent);
  void fetched(const std::string& host, const std::string& agent, FetchResult&& res);
  void loaded(const std::string& host);

  boost::asio::io_context& io_;
  Fetcher& fetcher_;
  WriteApi& api_;
  std::unordered_map<std::string, Host> hosts_;
  boost::asio::thread_pool matchers_{1};  // allowed() against large robots.txt files
};

}  // namespace crawler
