// The crawl loop of one worker: leases and dispatch. It leases URLs from
// the frontier, takes each item through its stages (item.hpp): its
// session's settings (settings_cache.hpp), its host's robots.txt
// (robots_cache.hpp), the transfer, what the transfer means
// (outcome.hpp), then a page's links or a sitemap's entries
// (link_batcher.hpp, sitemap.hpp) or an image's file
// (image_pipeline.hpp), with --storage-agent uploaded to the primary's agent
// (blob_uploader.hpp) before its row is recorded, and reports the outcome
// through the write API (write_api.hpp); it renews the leases while working
// and returns them on a clean stop.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crawler/blob_uploader.hpp"
#include "crawler/early_fetch.hpp"
#include "crawler/fetcher.hpp"
#include "crawler/image_pipeline.hpp"
#include "crawler/item.hpp"
#include "crawler/link_batcher.hpp"
#include "crawler/options.hpp"
#include "crawler/robots_cache.hpp"
#include "crawler/settings_cache.hpp"
#include "crawler/sitemap.hpp"
#include "crawler/store.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

struct CrawlStats {
  std::uint64_t pages = 0, images = 0, bytes = 0, errors = 0, retries = 0, skipped = 0;
  std::uint64_t sitemaps = 0;  // sitemap items read (in `pages` too, as the database counts them)
  std::uint64_t queued = 0;  // URLs this worker added to the frontier
  // Re-crawls: known images confirmed by a 304, or fresh and not fetched.
  std::uint64_t unchanged = 0, fresh = 0;
  // Responses by HTTP status (0: the transfer got none), every hop of a
  // redirect included.
  std::map<long, std::uint64_t> statuses;
  // Failures and retries by kind ("http", "timeout", "robots_disallowed" ...;
  // FetchOutcome::cause and Crawler::fail's callers).
  std::map<std::string, std::uint64_t> error_kinds;
};

// What this worker added to one session's counters, counted as the
// database counts them (crawl_status()): page and sitemap items it completed
// (parsed or not: a link to a PDF is a page item too), image rows it recorded and their
// bytes. Counted when the database acknowledged them.
struct SessionTally {
  std::uint64_t pages = 0, images = 0, bytes = 0;
};

class Crawler {
 public:
  // `store` is where downloads are written: the store, or the spool when
  // `uploader` (not null with --storage-agent) takes the files to the agent.
  Crawler(boost::asio::io_context& io, const WorkerOptions& opts, WriteApi& api, FileStore& store,
          BlobUploader* uploader = nullptr);
  ~Crawler();
  // Starts claiming, renewing and the image library.
  void start();
  // Graceful stop: no new leases, transfers abandoned, their leases returned,
  // finished results written. `done` runs when nothing is left.
  void stop(std::function<void()> done);
  // SIGHUP: options that can change at run time; caches are dropped.
  void reload(const WorkerOptions& opts);
  const CrawlStats& stats() const { return stats_; }
  // This worker's part of `session`'s counters (zero for a session it did
  // not work on).
  SessionTally tally(std::int64_t session) const;
  std::size_t held() const { return items_.size(); }
  std::size_t transfers() const { return fetcher_.active() + fetcher_.waiting(); }
  // Links fetched before their lease: started, used by a lease, dropped.
  const EarlyFetchStats& early_fetches() const { return early_.stats(); }
  bool stopping() const { return stopping_; }
  // Work was announced (a session started): claims now, or right after the
  // claim that is out, instead of after the idle back-off.
  void work_announced() {
    idle_delay_ = std::chrono::milliseconds(0);
    request_claim(true);
  }
  // Called right after a claim is queued while this worker holds nothing:
  // that claim may find nothing and finish the session (crawl_claim does),
  // so a call made now goes right behind it on the same connection and sees
  // its outcome without waiting for its answer first (the crawl command
  // asks for the session's status then).
  void on_idle(std::function<void()> f) { on_idle_ = std::move(f); }
  // Called once when this worker cannot go on as configured (the agent
  // refused its token): the caller logs it, stops the crawler and exits
  // with an error. Without it the crawler stops itself.
  void on_fatal(std::function<void(const std::string&)> f) { on_fatal_ = std::move(f); }
  // What waits for the agent; nullopt without --storage-agent.
  std::optional<UploadBacklog> upload_backlog() const;

 private:
  // Leases.
  void request_claim(bool new_work = false);
  void schedule_claim(std::chrono::milliseconds after);
  void claim();
  void claimed(int want, std::vector<ClaimedItem>&& items);
  void renew();
  std::size_t active_items() const;  // leased and not yet reported, storing images a quarter
  // An item's way: settings, robots.txt, transfer.
  void dispatch(std::int64_t id);
  void check_robots(std::int64_t id);
  void fetch(std::int64_t id);
  // The transfer of `url` as an item of `kind` crawled with `s` asks for
  // it (its body into `file` for an image).
  FetchRequest request_for(const std::string& kind, const std::string& url, const SessionSettings& s,
                           PendingFile* file) const;
  // The links of a page just parsed that may be fetched before the
  // frontier leases them, started: see maybe_fetch_early() in crawler.cpp.
  // Returns the URLs started.
  std::vector<std::string> fetch_early(const Item& page, const std::vector<std::string>& urls, const char* kind);
  // Leased URLs taken into this worker's hands and dispatched (a claim's, or
  // crawl_lease_early()'s; a repeat after a lost reply is skipped).
  void hold(std::vector<ClaimedItem>&& items);
  // A transfer's result, the item's own or an early one: to its handler.
  void fetched(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file);
  // A transfer's end.
  // The item a transfer ended for, or nullptr when there is nothing more to
  // do with it: it is gone, or a stop abandoned its transfer (its lease
  // then goes back).
  Item* arrived(std::int64_t id, const FetchResult& r);
  // The links of item `id` (a page or a sitemap) just read: for its
  // session, one level below it, found on it, with its transfer's status and
  // bytes for its completion; no URLs yet.
  PageLinks links_of(std::int64_t id, const Item& it, const FetchResult& r) const;
  void on_page(std::int64_t id, FetchResult&& r);
  void parse_page(std::int64_t id, FetchResult&& r);
  void on_links(std::int64_t id, const FetchResult& r, const std::vector<std::string>& images,
                const std::vector<std::string>& pages);
  // A sitemap's transfer, read off the loop (crawler_sitemaps.cpp), then its
  // entries to the frontier.
  void on_sitemap(std::int64_t id, FetchResult&& r);
  void on_sitemap_entries(std::int64_t id, const FetchResult& r, SitemapEntries&& entries);
  // The sitemaps the robots.txt of `host` names, queued for `it`'s session
  // at `it`'s depth when its settings say so (once per session and worker;
  // the frontier refuses what another worker queued).
  void queue_robots_sitemaps(const Item& it, const std::string& scheme, const std::string& host);
  void on_image(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file);
  void image_stored(std::int64_t id, StoredImage&& image);
  // The image's file to the agent; recorded once the agent has it.
  void upload(Item& item, StoredImage&& image);
  // Uploads blob `blob` of the image: 0 its file, then its thumbnails one
  // after the other; the row is recorded once the agent holds them all.
  void upload_blob(std::int64_t id, StoredImage&& image, std::size_t blob);
  void uploaded(std::int64_t id, StoredImage&& image, std::size_t blob, const UploadOutcome& o);
  // The row of an image whose file is stored (locally or at the agent).
  void record(Item& item, StoredImage&& image);
  // An item nothing was written for goes back to the queue unfinished.
  void give_back(Item& item);
  void fatal(const std::string& why);
  bool fetch_failed(Item& it, const FetchResult& r);  // true when it was a failure
  // true when it was a redirect: the next hop is dispatched, or the item ended
  bool redirected(std::int64_t id, Item& it, const FetchResult& r);
  // The next hop of a redirect the crawl's scope allows: dispatched again.
  void follow_redirect(std::int64_t id, const std::string& url);
  // Reports; the item is forgotten when the database answers.
  void complete(Item& it, long status, std::uint64_t bytes, const std::string& note = "");
  // Reports `it` failed (or to be retried after retry_after_s) with `error`,
  // counted under `kind` (docs/crawler.md lists the kinds).
  void fail(Item& it, const char* kind, const std::string& error, std::optional<long> retry_after_s);
  // A re-crawl's known image confirmed without its body: after a 304
  // (`fetched`), or fresh (not fetched); its item completed.
  void confirm_unchanged(Item& it, bool fetched);
  void acknowledged(std::int64_t id, const CallStatus& r, const char* what);
  // Moves an item to a stage; a move the stage rules forbid is logged.
  void enter(Item& it, Stage to);
  void maybe_finish_stop();
  std::string user_agent_for(const SessionSettings& s) const;
  long backoff_seconds(int attempts) const;

  boost::asio::io_context& io_;
  WorkerOptions opts_;
  WriteApi& api_;
  FileStore& store_;
  BlobUploader* uploader_;
  Fetcher fetcher_;
  SettingsCache settings_;
  RobotsCache robots_;
  LinkBatcher links_;
  EarlyFetches early_;
  ImagePipeline images_;
  boost::asio::thread_pool parsers_;  // pages
  boost::asio::steady_timer claim_timer_, renew_timer_;
  std::unordered_map<std::int64_t, Item> items_;
  CrawlStats stats_;
  std::unordered_map<std::int64_t, SessionTally> tallies_;
  bool claim_in_flight_ = false, claim_again_ = false, stopping_ = false, release_sent_ = false;
  bool queue_short_ = false;  // the last claim found less than it asked for
  bool fatal_ = false;
  std::chrono::milliseconds idle_delay_{50};
  // Claims sent: an answer to "when is the next host due" applies only if no
  // claim went out after it was asked.
  std::uint64_t claims_sent_ = 0;
  // After a host's due time, so that its claim does not arrive a moment early.
  static constexpr std::chrono::milliseconds kDueMargin{2};
  std::function<void()> on_stopped_, on_idle_;
  std::function<void(const std::string&)> on_fatal_;
};

}  // namespace crawler
