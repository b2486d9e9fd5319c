#include "crawler/link_batcher.hpp"

#include <memory>

#include "crawler/log.hpp"

namespace crawler {
namespace {

// URLs in one crawl_enqueue() call, when a page goes alone.
constexpr std::size_t kEnqueueChunk = 1000;
// URLs in one crawl_enqueue_many() call (the function takes 100,000).
constexpr std::size_t kMaxLinksPerCall = 20000;
// URLs remembered per session as already sent (about 100 bytes each).
constexpr std::size_t kMaxRemembered = 500000;

}  // namespace

std::vector<std::string> LinkBatcher::unsent(std::int64_t session, int depth, const std::vector<std::string>& found,
                                             const char* kind) {
  auto& sent = sent_[session];
  if (sent.size() > kMaxRemembered) sent.clear();
  std::vector<std::string> urls;
  for (const auto& u : found) {
    auto [at, fresh] = sent.try_emplace(kind[0] + u, depth);
    if (!fresh) {
      if (at->second <= depth) continue;
      at->second = depth;
    }
    urls.push_back(u);
  }
  return urls;
}

void LinkBatcher::add(PageLinks page) {
  waiting_.push_back(std::move(page));
  // One call at a time: the pages parsed while it is out go in the next.
  if (in_flight_ == 0) send();
}

void LinkBatcher::send() {
  while (!waiting_.empty()) {
    // One call per session, at most kMaxLinksPerCall URLs (a larger page
    // goes alone).
    std::int64_t session = waiting_.front().session;
    std::vector<PageLinks> group;
    std::size_t n = 0;
    while (!waiting_.empty() && waiting_.front().session == session) {
      const PageLinks& next = waiting_.front();
      std::size_t k = next.pages.size() + next.images.size() + next.more.size();
      if (!group.empty() && n + k > kMaxLinksPerCall) break;
      n += k;
      group.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    if (n > kMaxLinksPerCall) {  // one huge page: in chunks, page by page
      send_each(std::move(group.front()));
      continue;
    }
    // Pages before images: their ids come first in the claims' order.
    LinkBatch batch(session);
    for (const char* kind : {"page", "image"})
      for (const auto& p : group)
        for (const auto& u : kind[0] == 'p' ? p.pages : p.images) batch.add(u, kind, p.depth, p.url);
    for (const auto& p : group)
      for (const auto& l : p.more) batch.add(l.url, l.kind, l.depth, l.found_on);
    ++in_flight_;
    std::vector<std::string> early;
    for (const auto& p : group) early.insert(early.end(), p.early.begin(), p.early.end());
    api_.enqueue_many(batch, [this, group = std::move(group)](const CallStatus& st, std::uint64_t queued) mutable {
      --in_flight_;
      if (!st.ok) {
        // Each page on its own, so that one bad link costs only its page.
        CRAWLER_LOG(warn) << "crawl_enqueue_many: " << st.error << " [" << st.sqlstate << "]; sending page by page";
        for (auto& p : group) send_each(std::move(p));
      } else {
        if (queued > 0) hooks_.queued(queued);
        for (const auto& p : group) hooks_.page_done(p);
      }
      if (in_flight_ == 0 && !waiting_.empty()) send();
      hooks_.answered();
    });
    lease_early(session, std::move(early));
  }
}

void LinkBatcher::lease_early(std::int64_t session, std::vector<std::string> urls) {
  if (urls.empty()) return;
  api_.lease_early(session, urls, [this, session, urls](const CallStatus& st, std::vector<ClaimedItem> leased) {
    std::vector<ClaimedItem> items;
    std::vector<std::string> gone;
    if (!st.ok) {
      CRAWLER_LOG(debug) << "crawl_lease_early: " << st.error << " [" << st.sqlstate
                         << "]; the early fetches are dropped, their URLs claimed as usual";
      gone = urls;
    }
    for (auto& c : leased) {
      if (c.id == 0) gone.push_back(std::move(c.url));  // item_id NULL: never to be leased here
      else items.push_back(std::move(c));
    }
    hooks_.early_leased(session, std::move(items), gone);
  });
}

void LinkBatcher::send_each(PageLinks page) {
  auto left = std::make_shared<int>(0);
  auto p = std::make_shared<const PageLinks>(std::move(page));
  auto then = [this, p, left] {
    if (--*left > 0) return;
    hooks_.page_done(*p);
  };
  *left = send_chunks(*p, p->pages, "page", then) + send_chunks(*p, p->images, "image", then) + send_more(*p, then);
  lease_early(p->session, p->early);
  if (*left == 0) hooks_.page_done(*p);
}

int LinkBatcher::send_chunks(const PageLinks& p, const std::vector<std::string>& urls, const char* kind,
                             const std::function<void()>& then) {
  int calls = 0;
  for (std::size_t at = 0; at < urls.size(); at += kEnqueueChunk) {
    ++calls;
    std::vector<std::string> chunk(urls.begin() + static_cast<long>(at),
                                   urls.begin() + static_cast<long>(std::min(urls.size(), at + kEnqueueChunk)));
    api_.enqueue(p.session, chunk, p.depth, kind, p.url,
                 [this, url = p.url, session = p.session, kind, chunk, then](const CallStatus& st, std::uint64_t n) {
                   if (!st.ok) {
                     CRAWLER_LOG(warn) << "crawl_enqueue from " << url << ": " << st.error << " [" << st.sqlstate << "]";
                     // Not queued: a later page may send them again.
                     auto& sent = sent_[session];
                     for (const auto& u : chunk) sent.erase(kind[0] + u);
                   } else if (n > 0) {
                     hooks_.queued(n);
                   }
                   then();
                 });
  }
  return calls;
}

int LinkBatcher::send_more(const PageLinks& p, const std::function<void()>& then) {
  int calls = 0;
  for (std::size_t at = 0; at < p.more.size(); at += kEnqueueChunk) {
    ++calls;
    LinkBatch batch(p.session);
    std::vector<std::string> keys;
    for (std::size_t i = at; i < std::min(p.more.size(), at + kEnqueueChunk); ++i) {
      const FoundLink& l = p.more[i];
      batch.add(l.url, l.kind, l.depth, l.found_on);
      keys.push_back(l.kind[0] + l.url);
    }
    api_.enqueue_many(batch, [this, url = p.url, session = p.session, keys = std::move(keys), then](
                                 const CallStatus& st, std::uint64_t n) {
      if (!st.ok) {
        CRAWLER_LOG(warn) << "crawl_enqueue_many from " << url << ": " << st.error << " [" << st.sqlstate << "]";
        auto& sent = sent_[session];  // not queued: a later sitemap may send them again
        for (const auto& k : keys) sent.erase(k);
      } else if (n > 0) {
        hooks_.queued(n);
      }
      then();
    });
  }
  return calls;
}

}  // namespace crawler
