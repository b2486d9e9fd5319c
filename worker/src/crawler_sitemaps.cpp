// Crawler, a sitemap's way from its transfer to the frontier: the body read
// off the loop (sitemap.hpp), its pages, their images and the sitemaps of an
// index queued through the same link batches as a page's links, so that the
// crawl's scope, patterns, depth, budget and duplicates apply to them as to
// links; and the sitemaps a host's robots.txt names, queued when a URL of
// the host is first checked against it.
#include <curl/curl.h>

#include <boost/asio/post.hpp>
#include <unordered_map>

#include "crawler/crawler.hpp"
#include "crawler/log.hpp"

namespace crawler {
namespace asio = boost::asio;

void Crawler::on_sitemap(std::int64_t id, FetchResult&& r) {
  Item* arrived_item = arrived(id, r);
  if (!arrived_item) return;
  Item& it = *arrived_item;
  if (redirected(id, it, r)) return;
  // Past the protocol's 50 MB the body is read as far as it came: the
  // entries before the cut are as good as any (SitemapEntries::cut says it).
  bool truncated = r.code == CURLE_WRITE_ERROR && r.too_large && r.status >= 200 && r.status < 300;
  if (!truncated && fetch_failed(it, r)) return;
  enter(it, Stage::kParsing);
  // Reading 50 MB of XML takes a second or so: off the loop, on the pages'
  // parser threads.
  asio::post(parsers_, [this, id, url = it.url, truncated, r = std::move(r)]() mutable {
    SitemapEntries entries;
    try {
      entries = parse_sitemap(r.body, truncated);
    } catch (const std::exception& e) {  // std::bad_alloc: this sitemap's, not the process's
      entries = SitemapEntries{};
      entries.error = std::string("not read: ") + e.what();
    }
    CRAWLER_LOG(debug) << "sitemap " << url << ": " << entries.pages.size() << " pages, " << entries.images.size()
                       << " images, " << entries.sitemaps.size() << " sitemaps"
                       << (entries.error.empty() ? "" : ": " + entries.error);
    r.body.clear();
    r.body.shrink_to_fit();
    asio::post(io_, [this, id, r = std::move(r), entries = std::move(entries)]() mutable {
      on_sitemap_entries(id, r, std::move(entries));
    });
  });
}

void Crawler::on_sitemap_entries(std::int64_t id, const FetchResult& r, SitemapEntries&& e) {
  auto f = items_.find(id);
  if (f == items_.end() || stopping_) return;  // stopping: its lease is returned
  Item& it = f->second;
  if (!e.error.empty()) {
    fail(it, "not_parsed", "not a sitemap: " + e.error, std::nullopt);
    return;
  }
  ++stats_.pages;
  ++stats_.sitemaps;
  stats_.bytes += r.bytes;
  // The pages a sitemap lists are links of the URL that led to it, a level
  // below it; their images one level further, found on their page; an
  // index's sitemaps at the index's own depth (crawl_depth_within()).
  PageLinks p = links_of(id, it, r);
  p.note = e.cut;
  if (e.skipped > 0)
    p.note += std::string(p.note.empty() ? "" : "; ") + std::to_string(e.skipped) +
              " entries without a usable http(s) URL skipped";
  p.pages = links_.unsent(it.session, p.depth, e.pages, "page");
  std::vector<std::string> image_urls;
  std::unordered_map<std::string, std::string> page_of;
  for (auto& i : e.images) {
    image_urls.push_back(i.url);
    page_of.emplace(std::move(i.url), std::move(i.page));
  }
  for (auto& u : links_.unsent(it.session, p.depth + 1, image_urls, "image"))
    p.more.push_back(FoundLink{u, "image", p.depth + 1, page_of[u]});
  for (auto& u : links_.unsent(it.session, it.depth, e.sitemaps, "sitemap"))
    p.more.push_back(FoundLink{std::move(u), "sitemap", it.depth, it.url});
  if (!e.cut.empty()) CRAWLER_LOG(warn) << "sitemap " << it.url << ": " << e.cut;
  if (p.pages.empty() && p.more.empty()) {
    complete(it, r.status, r.bytes, p.note);
    return;
  }
  p.early = fetch_early(it, p.pages, "page");
  enter(it, Stage::kLinksQueued);
  links_.add(std::move(p));
  request_claim(true);
}

void Crawler::queue_robots_sitemaps(const Item& it, const std::string& scheme, const std::string& host) {
  // A sitemap is queued only where its pages can still be (a level below
  // it within max_depth): the frontier refuses the others anyway.
  if (!it.settings || !it.settings->sitemaps || it.depth + 1 > it.settings->max_depth) return;
  const std::vector<std::string>& named = robots_.sitemaps(host);
  if (named.empty()) return;
  std::vector<std::string> fresh = links_.unsent(it.session, it.depth, named, "sitemap");
  if (fresh.empty()) return;
  // Links of no item (item 0): nothing is completed when they are in. They
  // go through the batches on the claims' connection, ahead of the links of
  // the page this check lets through, so they are queued at the depth of the
  // first URL of the host that was checked, before anything deeper of it.
  PageLinks p;
  p.session = it.session;
  p.depth = it.depth;
  p.url = scheme + "://" + host + "/robots.txt";
  for (auto& u : fresh) p.more.push_back(FoundLink{std::move(u), "sitemap", it.depth, p.url});
  CRAWLER_LOG(debug) << p.url << ": " << p.more.size() << " sitemaps queued for session " << it.session;
  links_.add(std::move(p));
}

}  // namespace crawler
