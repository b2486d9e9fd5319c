// The crawl loop of one worker: lease URLs from the frontier, fetch them,
// find links and images, store files, report every outcome through the
// write API; renew leases while working, return them on a clean stop.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "crawler/database.hpp"
#include "crawler/fetcher.hpp"
#include "crawler/image_info.hpp"
#include "crawler/options.hpp"
#include "crawler/robots.hpp"
#include "crawler/store.hpp"

namespace crawler {

struct CrawlStats {
  std::uint64_t pages = 0, images = 0, bytes = 0, errors = 0, retries = 0, skipped = 0;
  std::uint64_t queued = 0;  // URLs this worker added to the frontier
};

class Crawler {
 public:
  Crawler(boost::asio::io_context& io, const WorkerOptions& opts, Database& db, FileStore& store);
  ~Crawler();
  void start();
  // Graceful stop: no new leases, transfers abandoned, their leases returned,
  // finished results written. `done` runs when nothing is left.
  void stop(std::function<void()> done);
  // SIGHUP: options that can change at run time; caches are dropped.
  void reload(const WorkerOptions& opts);
  const CrawlStats& stats() const { return stats_; }
  std::size_t held() const { return items_.size(); }
  std::size_t transfers() const { return fetcher_.active() + fetcher_.waiting(); }
  bool stopping() const { return stopping_; }
  // Called when a claim found nothing and this worker holds nothing: the
  // session may be over (the crawl command then asks at once).
  void on_idle(std::function<void()> f) { on_idle_ = std::move(f); }

 private:
  struct Item {
    std::int64_t id = 0, session = 0;
    std::string url, kind, found_on;
    std::string at;             // the redirect target being fetched ("" = url)
    int depth = 0, attempts = 0;
    int redirects = 0;          // hops followed so far
    const std::string& current() const { return at.empty() ? url : at; }
    bool final_sent = false;  // complete/fail/image_record queued
    bool in_transfer = false;
    bool processing = false;  // on a file thread (hash, header, rename)
  };
  struct Settings {
    bool loaded = false, loading = false;
    std::string status, user_agent;
    bool robots = true;
    std::vector<std::string> allowed_domains;  // the crawl's scope, for redirect targets
    bool images_any_host = false;
    std::uint64_t max_page_bytes = 10485760, max_image_bytes = 52428800, max_pixels = 100000000;
    int min_width = 0, min_height = 0;
    std::vector<std::int64_t> waiters;
  };
  struct HostRobots {
    bool ready = false, loading = false, temporary_failure = false;
    std::string text;
    std::map<std::string, std::shared_ptr<const Robots>> by_agent;  // shared with a robots_checks_ thread
    std::chrono::steady_clock::time_point expires;
    std::vector<std::int64_t> waiters;
  };

  void load_settings(Settings& st, const DbResult& r, std::size_t row);
  void preload_settings();
  void request_claim(bool new_work = false);
  void schedule_claim(std::chrono::milliseconds after);
  void claim();
  void renew();
  void dispatch(std::int64_t id);
  void check_robots(std::int64_t id, Settings& s);
  // The robots.txt decision for an item, on the loop: fetched, or failed.
  void robots_decided(std::int64_t id, bool allowed);
  void load_robots(const std::string& host, const std::string& scheme);
  void robots_loaded(const std::string& host, HostRobots& hr);
  void fetch(std::int64_t id);
  void on_page(std::int64_t id, FetchResult&& r);
  // A page's links and images, found off the loop: queued, then the page
  // is completed.
  void on_links(std::int64_t id, const FetchResult& r, const std::vector<std::string>& images,
                const std::vector<std::string>& pages);
  void on_image(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file);
  // An image's outcome, back on the loop: recorded, skipped or failed.
  void image_done(std::int64_t id, const FetchResult& r, const ImageInfo& info, const std::string& sha,
                  const std::string& rel, const std::string& error, bool skipped);
  // The store's committer thread: renames finished files in batches, one
  // syncfs before the renames and one after.
  void commit_loop();
  // Reports; the item is forgotten when the database acknowledges.
  void complete(Item& it, long status, std::uint64_t bytes, const std::string& note = "");
  void fail(Item& it, const std::string& error, std::optional<long> retry_after_s);
  bool fetch_failed(Item& it, const FetchResult& r);  // true when it was a failure
  // true when it was a redirect: the next hop is dispatched, or the item ended
  bool redirected(std::int64_t id, Item& it, const FetchResult& r);
  // A parsed page's links not sent before, waiting for crawl_enqueue_many.
  struct PageLinks {
    std::int64_t id = 0, session = 0;
    int depth = 0;    // of the links
    std::string url;  // the page: their found_on
    long status = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> pages, images;
  };
  std::vector<std::string> unsent(const Item& it, const std::vector<std::string>& found, const char* kind);
  void send_links();
  // One page's links with crawl_enqueue, kind by kind, in chunks; the page
  // is completed after them.
  void enqueue_each(PageLinks p);
  // Queues links of one kind found on page `p`; `then` runs after each
  // call's answer. Returns the number of calls.
  int enqueue(const PageLinks& p, const std::vector<std::string>& urls, const char* kind,
              const std::function<void()>& then);
  void acknowledged(std::int64_t id, const DbResult& r, const char* what);
  void maybe_finish_stop();
  std::string user_agent_for(const Settings& s) const;
  std::size_t active_items() const;  // leased and not yet reported
  long backoff_seconds(int attempts) const;

  boost::asio::io_context& io_;
  WorkerOptions opts_;
  Database& db_;
  FileStore& store_;
  Fetcher fetcher_;
  boost::asio::thread_pool parsers_;  // pages
  boost::asio::thread_pool robots_checks_;  // allowed() against large robots.txt files
  boost::asio::thread_pool files_;    // flush, header reading, directories
  struct ToCommit {
    std::int64_t id;
    std::shared_ptr<PendingFile> file;
    FetchResult r;
    ImageInfo info;
    std::string sha;
  };
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::vector<ToCommit> to_commit_;
  bool commit_stop_ = false;
  std::thread committer_;
  std::thread vips_starter_;
  boost::asio::steady_timer claim_timer_, renew_timer_;
  std::unordered_map<std::int64_t, Item> items_;
  std::unordered_map<std::int64_t, Settings> settings_;
  std::unordered_map<std::string, HostRobots> robots_;
  // Per session: URLs (kind letter + URL) sent to crawl_enqueue, and the
  // depth they were sent with.
  std::unordered_map<std::int64_t, std::unordered_map<std::string, int>> sent_;
  std::deque<PageLinks> waiting_links_;
  int links_in_flight_ = 0;
  CrawlStats stats_;
  bool claim_in_flight_ = false, claim_again_ = false, stopping_ = false, release_sent_ = false;
  bool queue_short_ = false;  // the last claim found less than it asked for
  std::chrono::milliseconds idle_delay_{50};
  std::function<void()> on_stopped_, on_idle_;
};

}  // namespace crawler
