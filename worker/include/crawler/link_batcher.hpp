// The links found on pages, on their way to the frontier: each URL is sent
// once per session at its shallowest depth, and the pages parsed while a
// call is out go together in the next crawl_enqueue_many() call (pages of
// a session up to 20,000 URLs a call), on the claims' connection so that the
// claim sent behind them sees them. A call the database refuses is sent
// again page by page with crawl_enqueue(), so one bad link costs only its
// page. The links this worker fetches already (early_fetch.hpp) are leased
// to it right behind their enqueue (crawl_lease_early()), before any claim.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crawler/write_api.hpp"

namespace crawler {

// A link whose depth or found_on is not that of its item's other links: an
// image a sitemap lists with a page (found on that page, a level below it),
// a sitemap an index lists (at the index's own depth).
struct FoundLink {
  std::string url;
  const char* kind = "page";  // "page", "image" or "sitemap"
  int depth = 0;
  std::string found_on;
};

// A parsed page's links not sent before (or a sitemap's entries).
struct PageLinks {
  std::int64_t item = 0, session = 0;  // item 0: links of no item (a robots.txt's sitemaps)
  int depth = 0;    // of the links
  std::string url;  // the page: their found_on
  long status = 0;  // the page's transfer, for its completion
  std::uint64_t bytes = 0;
  std::string note;  // for its completion (a sitemap cut off at the protocol's limits)
  std::vector<std::string> pages, images;
  std::vector<FoundLink> more;  // each with its own depth and found_on
  std::vector<std::string> early;  // those of them fetched already, to be leased to this worker
};

class LinkBatcher {
 public:
  struct Hooks {
    std::function<void(std::uint64_t queued)> queued;  // new URLs in the frontier: worth a claim now
    std::function<void(const PageLinks& page)> page_done;  // the page's links are in, or given up: complete it
    std::function<void()> answered;  // a batch's call came back
    // The answer to the lease of early-fetched URLs of `session`: the items
    // leased, and the URLs that will never be leased to this worker (every
    // one of `urls` when the call failed); the others are still queued.
    std::function<void(std::int64_t session, std::vector<ClaimedItem>&& leased, const std::vector<std::string>& gone)>
        early_leased;
  };
  LinkBatcher(WriteApi& api, Hooks hooks) : api_(api), hooks_(std::move(hooks)) {}

  // The URLs of `found`, of `kind` ("page" or "image"), that this worker has
  // not sent for `session` at `depth` or shallower; they count as sent from
  // now on. The database would skip the others too: most links repeat on
  // every page of a site.
  std::vector<std::string> unsent(std::int64_t session, int depth, const std::vector<std::string>& found,
                                  const char* kind);
  // Queues a page's links: sent at once when no call is out, else with the
  // pages parsed meanwhile.
  void add(PageLinks page);

 private:
  void send();
  void send_each(PageLinks page);
  // crawl_lease_early() for early-fetched `urls` of `session`, sent behind
  // their enqueue.
  void lease_early(std::int64_t session, std::vector<std::string> urls);
  int send_chunks(const PageLinks& page, const std::vector<std::string>& urls, const char* kind,
                  const std::function<void()>& then);
  // PageLinks::more, in crawl_enqueue_many() calls of kEnqueueChunk links.
  int send_more(const PageLinks& page, const std::function<void()>& then);

  WriteApi& api_;
  Hooks hooks_;
  // Per session: URLs (kind letter + URL) sent, and the depth they were sent with.
  std::unordered_map<std::int64_t, std::unordered_map<std::string, int>> sent_;
  std::deque<PageLinks> waiting_;
  int in_flight_ = 0;
};

}  // namespace crawler
