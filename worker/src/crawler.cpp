#include "crawler/crawler.hpp"

#include <boost/asio/post.hpp>
#include <cmath>
#include <ctime>
#include <unordered_set>

#include "crawler/extract.hpp"
#include "crawler/log.hpp"
#include "crawler/media_type.hpp"
#include "crawler/outcome.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/url.hpp"

namespace crawler {
namespace asio = boost::asio;
using std::chrono::milliseconds;


Crawler::Crawler(asio::io_context& io, const WorkerOptions& opts, WriteApi& api, FileStore& store,
                 BlobUploader* uploader)
    : io_(io),
      opts_(opts),
      api_(api),
      store_(store),
      uploader_(uploader),
      fetcher_(io, FetchLimits{opts.concurrency, opts.host_connections, opts.connect_timeout_ms,
                               opts.timeout_ms, opts.low_speed_bytes, opts.low_speed_seconds,
                               opts.max_redirects, opts.proxy, opts.cookies_file}),
      settings_(api),
      robots_(io, fetcher_, api),
      links_(api, LinkBatcher::Hooks{
                      [this](std::uint64_t queued) {
                        stats_.queued += queued;
                        // New work: ask for it now rather than after the idle back-off.
                        idle_delay_ = milliseconds(0);
                        request_claim(true);
                      },
                      [this](const PageLinks& p) {
                        if (auto f = items_.find(p.item); f != items_.end())
                          complete(f->second, p.status, p.bytes, p.note);
                      },
                      [this] { request_claim(); },
                      [this](std::int64_t session, std::vector<ClaimedItem>&& leased,
                             const std::vector<std::string>& gone) {
                        // Not leased to this worker, unless by a claim that
                        // ran first (its item takes the early fetch when it
                        // reaches its transfer).
                        std::unordered_set<std::string> mine;
                        for (const auto& [id, it] : items_)
                          if (it.session == session) mine.insert(it.url);
                        for (const auto& u : gone)
                          if (!mine.count(u)) early_.drop(session, u);
                        if (!stopping_) hold(std::move(leased));
                        else if (!leased.empty()) {
                          std::vector<std::int64_t> ids;
                          for (const auto& c : leased) ids.push_back(c.id);
                          api_.release(ids, [](const CallStatus& st) {
                            if (!st.ok) CRAWLER_LOG(warn) << "crawl_release: " << st.error << "; the leases will expire";
                          });
                        }
                      }}),
      early_(io, fetcher_, static_cast<std::size_t>(opts.concurrency)),
      images_(io, store, uploader != nullptr,
              [this](std::int64_t id, StoredImage&& image) { image_stored(id, std::move(image)); }),
      parsers_(2),
      claim_timer_(io),
      renew_timer_(io) {
  prepare_sitemap_parser();  // libxml2's state, from this thread before any other uses it
}

Crawler::~Crawler() { parsers_.join(); }

void Crawler::start() {
  images_.start();
  settings_.preload();
  claim();
  renew();
}

void Crawler::reload(const WorkerOptions& opts) {
  opts_.user_agent = opts.user_agent;
  opts_.max_pending_writes = opts.max_pending_writes;
  opts_.max_spool_bytes = opts.max_spool_bytes;
  opts_.claim_batch = opts.claim_batch;
  settings_.forget();
  robots_.forget();
  settings_.preload();
  CRAWLER_LOG(info) << "reloaded: session settings and robots.txt will be read again";
}

std::string Crawler::user_agent_for(const SessionSettings& s) const {
  return opts_.user_agent.empty() ? s.user_agent : opts_.user_agent;
}

long Crawler::backoff_seconds(int attempts) const {
  // 2 s, 4 s, 8 s ... at most 5 minutes.
  return static_cast<long>(std::min(300.0, 2.0 * std::pow(2.0, std::max(0, attempts - 1))));
}

void Crawler::enter(Item& it, Stage to) {
  if (!it.enter(to))
    CRAWLER_LOG(error) << "item " << it.id << ": no way from stage " << stage_name(it.stage) << " to "
                       << stage_name(to) << " (a bug)";
}

// ---- Leases ----

void Crawler::request_claim(bool new_work) {
  // Now, right behind whatever was just queued on the claims' connection;
  // or as soon as the claim that is out comes back. After a claim that
  // found less than it asked for, only new work (or the idle timer) asks
  // again: a finished transfer alone is no reason to expect more, and each
  // empty claim is a transaction on the path of the next links.
  if (stopping_) return;
  if (new_work) queue_short_ = false;
  else if (queue_short_) return;
  if (claim_in_flight_) claim_again_ = true;
  else claim();
}

void Crawler::schedule_claim(milliseconds after) {
  if (stopping_) return;
  claim_timer_.expires_after(after);
  claim_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) claim();
  });
}

void Crawler::claim() {
  if (stopping_ || claim_in_flight_) return;
  // Back-pressure: results wait in memory until the database has them.
  if (api_.pending() >= static_cast<std::size_t>(opts_.max_pending_writes)) {
    schedule_claim(milliseconds(100));
    return;
  }
  // The same for files waiting for the agent: while none answers, finished
  // downloads stay bounded in number (memory) and in bytes (the spool).
  if (uploader_ && (uploader_->pending() >= static_cast<std::size_t>(opts_.max_pending_writes) ||
                    uploader_->spooled_bytes() >= static_cast<std::uint64_t>(opts_.max_spool_bytes))) {
    schedule_claim(milliseconds(100));
    return;
  }
  // Items whose result is written and only awaits the database's answer
  // are not work any more: they are bounded by max_pending_writes above.
  std::size_t cap = static_cast<std::size_t>(opts_.concurrency) * 2;
  std::size_t working = active_items();
  if (working >= cap) {
    schedule_claim(milliseconds(20));
    return;
  }
  int want = static_cast<int>(std::min<std::size_t>(cap - working, opts_.claim_batch));
  claim_in_flight_ = true;
  ++claims_sent_;
  api_.claim(want, [this, want](const CallStatus& st, std::vector<ClaimedItem> items) {
    claim_in_flight_ = false;
    if (stopping_) {
      // Leased while stopping: give them straight back.
      std::vector<std::int64_t> ids;
      for (const auto& c : items) ids.push_back(c.id);
      if (ids.empty()) {
        maybe_finish_stop();
      } else {
        claim_in_flight_ = true;
        api_.release(ids, [this](const CallStatus&) {
          claim_in_flight_ = false;
          maybe_finish_stop();
        });
      }
      return;
    }
    if (!st.ok) {
      CRAWLER_LOG(warn) << "crawl_claim: " << st.error << " [" << st.sqlstate << "]";
      schedule_claim(milliseconds(1000));
      return;
    }
    claimed(want, std::move(items));
  });
  // Holding nothing, this claim may end the session: the status goes right
  // behind it, not one answer later.
  if (items_.empty() && on_idle_) on_idle_();
}

void Crawler::hold(std::vector<ClaimedItem>&& items) {
  for (auto& c : items) {
    if (items_.count(c.id)) continue;  // a repeat after a lost reply
    Item it;
    it.id = c.id;
    it.session = c.session;
    it.url = std::move(c.url);
    it.kind = std::move(c.kind);
    it.depth = c.depth;
    it.attempts = c.attempts;
    it.found_on = std::move(c.found_on);
    it.known_etag = std::move(c.known_etag);
    it.known_last_modified = std::move(c.known_last_modified);
    it.known_fresh = c.known_fresh;
    items_.emplace(c.id, std::move(it));
    dispatch(c.id);
  }
}

void Crawler::claimed(int want, std::vector<ClaimedItem>&& items) {
  std::size_t got = items.size();
  bool none = items.empty();
  hold(std::move(items));
  // Full batch: more is likely waiting. Empty: back off a little.
  if (static_cast<int>(got) == want) idle_delay_ = milliseconds(0);
  else if (!none) idle_delay_ = milliseconds(20);
  else idle_delay_ = std::min(milliseconds(500), std::max(milliseconds(20), idle_delay_ * 2));
  queue_short_ = static_cast<int>(got) < want;
  if (claim_again_) idle_delay_ = milliseconds(0);  // work came while it was out
  claim_again_ = false;
  schedule_claim(idle_delay_);
  // Short of work: a host may only be waiting out its politeness delay. Ask
  // when it is due and claim then, not at the back-off's next step, which
  // would overshoot a 1 s delay by up to its longest wait (500 ms).
  if (queue_short_ && idle_delay_ > milliseconds(0)) {
    std::uint64_t asked_at = claims_sent_;
    api_.next_claim_in([this, asked_at](const CallStatus&, std::optional<milliseconds> due) {
      // A claim since (new work, the timer) has rescheduled already.
      if (!due || stopping_ || claim_in_flight_ || asked_at != claims_sent_) return;
      milliseconds at = *due + kDueMargin;
      if (at < idle_delay_) schedule_claim(at);
    });
  }
}

void Crawler::renew() {
  renew_timer_.expires_after(std::chrono::seconds(std::max(1, opts_.lease_seconds / 3)));
  renew_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::vector<std::int64_t> ids;
    for (const auto& [id, it] : items_) ids.push_back(id);
    if (!ids.empty())
      api_.renew(ids, [n = ids.size()](const CallStatus& st, std::optional<long long> renewed) {
        if (!st.ok) CRAWLER_LOG(warn) << "crawl_renew: " << st.error;
        else if (renewed && static_cast<std::size_t>(*renewed) < n)
          CRAWLER_LOG(debug) << "crawl_renew: " << *renewed << " of " << n
                             << " leases renewed (the rest were finished meanwhile)";
      });
    renew();
  });
}

std::size_t Crawler::active_items() const {
  std::size_t quarters = 0;
  for (const auto& [id, it] : items_) quarters += static_cast<std::size_t>(work_quarters(it.stage));
  return quarters / 4;
}

// ---- An item's way to its transfer ----

void Crawler::dispatch(std::int64_t id) {
  if (stopping_) return;  // its lease is returned
  auto f = items_.find(id);
  if (f == items_.end()) return;
  settings_.with(f->second.session, [this, id](SettingsCache::Settings s, const std::string&) {
    auto f2 = items_.find(id);
    if (f2 == items_.end()) return;
    Item& it = f2->second;
    if (!s) {
      fail(it, "settings", "session settings unavailable", 30);
      return;
    }
    if (stopping_) return;  // its lease is returned
    it.settings = std::move(s);
    // A known image confirmed within image_expiry_s: nothing to fetch (nor
    // robots.txt to ask).
    if (it.kind == "image" && it.known_fresh) {
      confirm_unchanged(it, false);
      return;
    }
    if (it.settings->robots) check_robots(id);
    else fetch(id);
  });
}

void Crawler::check_robots(std::int64_t id) {
  Item& it = items_.at(id);
  auto parts = split_url(it.current());
  if (!parts) {
    fail(it, "invalid_url", it.at.empty() ? "invalid URL" : "invalid redirect target " + one_line(it.at, 500), std::nullopt);
    return;
  }
  robots_.check(*parts, user_agent_for(*it.settings), [this, id, scheme = parts->scheme,
                                                       host = host_key(*parts)](RobotsCache::Verdict v) {
    auto f = items_.find(id);
    if (f == items_.end() || stopping_) return;  // stopping: its lease is returned
    Item& item = f->second;
    queue_robots_sitemaps(item, scheme, host);
    switch (v) {
      case RobotsCache::Verdict::kUnavailable:
        // The reason is the item's error: when the host is down, the
        // robots.txt fetch is what shows it.
        fail(item, "robots_unavailable", "robots.txt of " + host + " is unavailable (" + robots_.failure(host) + ")", 60);
        return;
      case RobotsCache::Verdict::kDisallowed:
        ++stats_.skipped;
        fail(item, "robots_disallowed",
             item.at.empty() ? "disallowed by robots.txt"
                             : "redirected to " + one_line(item.at, 500) + ": disallowed by robots.txt",
             std::nullopt);
        return;
      case RobotsCache::Verdict::kAllowed:
        fetch(id);
        return;
    }
  });
}

FetchRequest Crawler::request_for(const std::string& kind, const std::string& url, const SessionSettings& s,
                                  PendingFile* file) const {
  FetchRequest req;
  req.url = url;
  req.user_agent = user_agent_for(s);
  // Each hop of a redirect is checked against robots.txt before it is
  // fetched (redirected() below), so curl does not follow them itself.
  req.follow_redirects = false;
  if (kind == "image") {
    req.max_bytes = s.max_image_bytes;
    req.file = file;
  } else if (kind == "sitemap") {
    // As large as the protocol lets a sitemap be, whatever max_page_bytes
    // (a larger one is read as far as this, then cut off); ahead of the
    // queue, as pages are: it leads to more work. Any Content-Type: XML,
    // text and gzip are all sitemaps, and the body says which.
    req.first = true;
    req.max_bytes = SitemapLimits{}.max_bytes;
  } else {
    req.first = true;
    req.max_bytes = s.max_page_bytes;
    req.accept = [](long, const std::string& ct) -> std::string {
      std::string mt = media_type(ct);
      if (is_html_media_type(mt) || mt == "text/css") return "";
      return "not a page: Content-Type " + mt;
    };
  }
  return req;
}

void Crawler::fetch(std::int64_t id) {
  if (stopping_) return;
  Item& it = items_.at(id);
  // Fetched already while its enqueue committed (only its first hop: a
  // redirect's next one is fetched as the hop it is).
  if (it.at.empty() &&
      early_.take(it.session, it.kind, it.url, [this, id](FetchResult&& r, std::shared_ptr<PendingFile> file) {
        fetched(id, std::move(r), std::move(file));
      })) {
    enter(it, Stage::kFetching);
    return;
  }
  std::shared_ptr<PendingFile> file;
  if (it.kind == "image") {
    std::string err;
    file.reset(store_.create(&err).release());
    if (!file) {
      fail(it, "store", err, 60);
      return;
    }
  }
  FetchRequest req = request_for(it.kind, it.current(), *it.settings, file.get());
  if (it.kind == "image") {
    // A re-crawl: the validators of the previous fetch (the last hop's, so
    // every hop carries them); a 304 is confirmed without the body.
    req.if_none_match = it.known_etag;
    req.if_modified_since = it.known_last_modified;
  }
  enter(it, Stage::kFetching);
  fetcher_.start(std::move(req), [this, id, file](FetchResult&& r) mutable { fetched(id, std::move(r), std::move(file)); });
}

void Crawler::fetched(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file) {
  // Every response counts by its status (0: none came), each hop of a
  // redirect too; not a transfer cut short by a stop.
  if (!(stopping_ && r.code == CURLE_ABORTED_BY_CALLBACK)) ++stats_.statuses[r.status];
  auto f = items_.find(id);
  if (file) on_image(id, std::move(r), std::move(file));
  else if (f != items_.end() && f->second.kind == "sitemap") on_sitemap(id, std::move(r));
  else on_page(id, std::move(r));
}

std::vector<std::string> Crawler::fetch_early(const Item& page, const std::vector<std::string>& urls,
                                              const char* kind) {
  std::vector<std::string> started;
  // What may be fetched before its lease, so that politeness holds as the
  // frontier holds it: only with the session's delay at 0, only links on
  // the page's own host (inside the crawl's scope whatever its rule; other
  // hosts wait for the frontier's answer), only without URL patterns for
  // the kind, only as deep as pages are
  // followed, only what robots.txt allows now without a Crawl-delay, and
  // only while this worker's leases and early fetches on the host stay
  // under per_host.
  // An early image needs a free transfer slot (it never queues ahead of
  // leased work); an early page goes to the head of the queue, as any page.
  const SessionSettings& s = *page.settings;
  if (opts_.no_early_fetch || stopping_ || s.delay_ms != 0 || page.depth + 1 > s.max_depth) return started;
  // A re-crawl's images wait for their leases, which say what is known of
  // them: fetched early they would come whole, unasked.
  if (kind[0] == 'i' && s.revisit) return started;
  // URL patterns are the frontier's to apply: with any for this kind, its
  // links wait for their leases, so that a URL they exclude is never asked for.
  if (kind[0] == 'i' ? s.image_patterns : s.page_patterns) return started;
  auto origin = split_url(page.url);
  if (!origin) return started;
  std::string host = host_key(*origin);
  // This worker's leases on the host (the frontier counts them against
  // per_host until their results are in), and its early fetches.
  std::size_t on_host = early_.held_on(host);
  for (const auto& [id, it] : items_) {
    auto p = split_url(it.url);
    if (p && host_key(*p) == host) ++on_host;
  }
  for (const auto& url : urls) {
    // Images only into a free slot; a page may wait for one at the head of
    // the queue, as a leased page would (it leads to the next level).
    if (kind[0] == 'i' && fetcher_.active() + fetcher_.waiting() >= static_cast<std::size_t>(opts_.concurrency))
      break;
    if (on_host >= static_cast<std::size_t>(s.per_host)) break;
    auto parts = split_url(url);
    if (!parts || host_key(*parts) != host) continue;
    if (s.robots && !robots_.allows_now_without_delay(*parts, user_agent_for(s))) continue;
    std::shared_ptr<PendingFile> file;
    if (kind[0] == 'i') {
      std::string err;
      file.reset(store_.create(&err).release());
      if (!file) break;  // the leased fetch will say why
    }
    if (early_.start(page.session, kind, request_for(kind, url, s, file.get()), file)) {
      ++on_host;
      started.push_back(url);
    }
  }
  return started;
}

// ---- A transfer's end ----

bool Crawler::fetch_failed(Item& it, const FetchResult& r) {
  if (r.code == CURLE_ABORTED_BY_CALLBACK && stopping_) return true;  // lease goes back
  FetchOutcome o = classify_fetch(r, it.url, {backoff_seconds(it.attempts), opts_.max_retry_after_s});
  if (o.kind == FetchOutcome::Kind::kSuccess) return false;
  if (o.host_waits) {
    if (auto p = split_url(it.url)) {
      // The whole host waits, for every worker.
      api_.set_host_back_off(host_key(*p), std::time(nullptr) + o.retry_after_s, [](const CallStatus& st) {
        if (!st.ok) CRAWLER_LOG(warn) << "crawl_host_set back-off: " << st.error;
      });
    }
  }
  fail(it, o.cause.c_str(), o.error, o.kind == FetchOutcome::Kind::kRetry ? std::optional<long>(o.retry_after_s) : std::nullopt);
  return true;
}

bool Crawler::redirected(std::int64_t id, Item& it, const FetchResult& r) {
  if (r.redirect_url.empty()) return false;  // set only for a 3xx that was not followed
  if (++it.redirects > opts_.max_redirects) {
    fail(it, "redirects", "too many redirects (more than " + std::to_string(opts_.max_redirects) + " followed; the last to " +
             one_line(r.redirect_url, 500) + ")",
         std::nullopt);
    return true;
  }
  auto target = split_url(r.redirect_url);
  if (!target || (target->scheme != "http" && target->scheme != "https")) {
    fail(it, "redirects", "HTTP " + std::to_string(r.status) + " redirect to an unusable Location " + one_line(r.redirect_url, 500),
         std::nullopt);
    return true;
  }
  CRAWLER_LOG(debug) << it.current() << ": HTTP " << r.status << " to " << r.redirect_url;
  enter(it, Stage::kClaimed);
  // The crawl's scope holds for every hop, as crawl_enqueue() holds it for
  // links; the extension rules it. The rule is a function of the host and
  // the kind (crawl_scope_ok), and the current URL is inside the crawl, so
  // a hop on the same host needs no question.
  auto current = split_url(it.current());
  if (current && host_key(*current) == host_key(*target)) {
    follow_redirect(id, r.redirect_url);
    return true;
  }
  api_.redirect_allowed(it.session, r.redirect_url, it.kind,
                        [this, id, status = r.status, url = r.redirect_url](const CallStatus& st, bool allowed) {
                          auto f = items_.find(id);
                          if (f == items_.end() || stopping_) return;  // stopping: its lease is returned
                          Item& item = f->second;
                          if (!st.ok && st.sqlstate.rfind("22", 0) == 0) {
                            fail(item, "redirects", "HTTP " + std::to_string(status) + " redirect to an unusable Location " +
                                           one_line(url, 500) + ": " + st.error,
                                 std::nullopt);
                          } else if (!st.ok) {
                            fail(item, "scope_check", "could not check the crawl's scope for the redirect to " + one_line(url, 500) +
                                           ": " + st.error,
                                 30);
                          } else if (!allowed) {
                            ++stats_.skipped;
                            complete(item, status, 0,
                                     "redirected to " + one_line(url, 500) +
                                         ", outside the crawl's allowed domains: not followed");
                          } else {
                            follow_redirect(id, url);
                          }
                        });
  return true;
}

void Crawler::follow_redirect(std::int64_t id, const std::string& url) {
  Item& it = items_.at(id);
  it.at = url;
  dispatch(id);  // robots.txt of the target's host first, then the fetch
}

Item* Crawler::arrived(std::int64_t id, const FetchResult& r) {
  auto f = items_.find(id);
  if (f == items_.end()) return nullptr;
  Item& it = f->second;
  if (stopping_ && r.code == CURLE_ABORTED_BY_CALLBACK) {
    enter(it, Stage::kClaimed);  // abandoned: its lease is returned
    maybe_finish_stop();
    return nullptr;
  }
  return &it;
}

PageLinks Crawler::links_of(std::int64_t id, const Item& it, const FetchResult& r) const {
  PageLinks p;
  p.item = id;
  p.session = it.session;
  p.depth = it.depth + 1;
  p.url = it.url;
  p.status = r.status;
  p.bytes = r.bytes;
  return p;
}

void Crawler::on_page(std::int64_t id, FetchResult&& r) {
  Item* arrived_item = arrived(id, r);
  if (!arrived_item) return;
  Item& it = *arrived_item;
  if (r.code == CURLE_WRITE_ERROR && !r.refused.empty()) {
    // A link to something that is not a page (a PDF, a script): done, not
    // an error; the reason is kept in the item's result.
    ++stats_.skipped;
    complete(it, r.status, 0, r.refused + "; not parsed");
    return;
  }
  if (redirected(id, it, r)) return;
  if (fetch_failed(it, r)) return;
  enter(it, Stage::kParsing);
  parse_page(id, std::move(r));
}

void Crawler::parse_page(std::int64_t id, FetchResult&& r) {
  // Parsing takes about 50 ms per MB (more for pages dense with links): off the loop, two at a time,
  // while the loop goes on with transfers and the database.
  // With robots on, the page's own directives hold too (X-Robots-Tag, meta).
  const Item& it = items_.at(id);
  std::optional<RobotsDirectives> directives;
  std::string agent;
  if (it.settings->robots) {
    agent = agent_token(user_agent_for(*it.settings));
    directives = RobotsDirectives::of(r.robots_tags, agent);
  }
  asio::post(parsers_, [this, id, url = it.url, r = std::move(r), directives, agent]() mutable {
    std::string base = r.effective_url.empty() ? url : r.effective_url;
    std::string mt = media_type(r.content_type);
    Links links;
    // whatever a page does to the parser costs that page, never the process
    try {
      if (mt == "text/css") {
        if (!directives || directives->page_images_allowed()) links.images = extract_css(r.body, base);
      } else if (directives) {
        links = extract_html(r.body, base, *directives, agent);
      } else {
        links = extract_html(r.body, base);
      }
    } catch (const std::exception& e) {
      links = Links{};
      links.refused = std::string("not parsed: ") + e.what();
    }
    CRAWLER_LOG(debug) << "page " << url << ": " << links.images.size() << " images, " << links.pages.size() << " links";
    if (links.dropped > 0)
      CRAWLER_LOG(warn) << "page " << url << ": " << links.dropped << " more distinct URLs than the "
                        << kMaxLinksPerPage << " images and " << kMaxLinksPerPage
                        << " links taken from one page were left out";
    r.body.clear();
    r.body.shrink_to_fit();
    asio::post(io_, [this, id, r = std::move(r), links = std::move(links)]() mutable {
      if (!links.refused.empty()) {
        auto f = items_.find(id);
        if (f != items_.end() && !stopping_) fail(f->second, "not_parsed", links.refused, std::nullopt);
        return;
      }
      on_links(id, r, links.images, links.pages);
    });
  });
}

void Crawler::on_links(std::int64_t id, const FetchResult& r, const std::vector<std::string>& images,
                       const std::vector<std::string>& pages) {
  auto f = items_.find(id);
  if (f == items_.end() || stopping_) return;  // stopping: its lease is returned
  Item& it = f->second;
  ++stats_.pages;
  stats_.bytes += r.bytes;
  // The links go on the claims' connection, so the claim sent right behind
  // them sees them (one round trip from a page to its links' leases). The
  // page is completed once they are in: a completion applied first could
  // end the session with its links still unqueued.
  PageLinks p = links_of(id, it, r);
  p.pages = links_.unsent(it.session, p.depth, pages, "page");
  p.images = links_.unsent(it.session, p.depth, images, "image");
  if (p.pages.empty() && p.images.empty()) {
    complete(it, r.status, r.bytes);
    return;
  }
  p.early = fetch_early(it, p.pages, "page");
  for (auto& u : fetch_early(it, p.images, "image")) p.early.push_back(std::move(u));
  enter(it, Stage::kLinksQueued);
  links_.add(std::move(p));
  request_claim(true);
}

void Crawler::give_back(Item& item) {
  enter(item, Stage::kClaimed);
  if (!stopping_ || !release_sent_) {
    // A stop returns it with the others (returned_on_stop(kClaimed)).
    maybe_finish_stop();
    return;
  }
  // The stop's batch of leases went back already: this one on its own.
  api_.release({item.id}, [this, id = item.id](const CallStatus& st) {
    if (!st.ok) CRAWLER_LOG(warn) << "crawl_release: " << st.error << "; the lease will expire";
    items_.erase(id);
    maybe_finish_stop();
  });
}

void Crawler::fatal(const std::string& why) {
  if (fatal_) return;
  fatal_ = true;
  if (on_fatal_) on_fatal_(why);
  else {
    CRAWLER_LOG(error) << why;
    stop(nullptr);
  }
}

SessionTally Crawler::tally(std::int64_t session) const {
  auto f = tallies_.find(session);
  return f == tallies_.end() ? SessionTally{} : f->second;
}

std::optional<UploadBacklog> Crawler::upload_backlog() const {
  if (!uploader_) return std::nullopt;
  return uploader_->backlog();
}

// ---- Reports ----

void Crawler::complete(Item& it, long status, std::uint64_t bytes, const std::string& note) {
  enter(it, Stage::kReported);
  request_claim();
  api_.complete(it.id, it.session, CrawlResult{status, bytes, note},
                [this, id = it.id, session = it.session, page = it.kind != "image"](const CallStatus& st) {
                  if (st.ok && page) ++tallies_[session].pages;
                  acknowledged(id, st, "crawl_complete");
                });
}

void Crawler::fail(Item& it, const char* kind, const std::string& error, std::optional<long> retry_after_s) {
  enter(it, Stage::kReported);
  if (retry_after_s) ++stats_.retries;
  else ++stats_.errors;
  ++stats_.error_kinds[*kind ? kind : "other"];
  request_claim();
  CRAWLER_LOG(info) << (retry_after_s ? "retry " : "failed ") << it.url << ": " << error
                    << (retry_after_s ? " (again in " + std::to_string(*retry_after_s) + " s)" : "");
  api_.fail(it.id, it.session, error, retry_after_s,
            [this, id = it.id](const CallStatus& st) { acknowledged(id, st, "crawl_fail"); });
}

void Crawler::acknowledged(std::int64_t id, const CallStatus& r, const char* what) {
  if (!r.ok) {
    // 55000: the lease is gone (expired and taken by another worker): that
    // worker reports the item. Anything else is logged; the lease expires.
    CRAWLER_LOG(warn) << what << " for item " << id << ": " << r.error << " [" << r.sqlstate << "]";
  }
  items_.erase(id);
  if (stopping_) maybe_finish_stop();
  else if (items_.empty()) request_claim(true);  // the session may be over: ask now
  else if (active_items() < static_cast<std::size_t>(opts_.concurrency))
    request_claim();
}

// ---- Stop ----

void Crawler::stop(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  claim_timer_.cancel();
  fetcher_.cancel_all();  // their handlers see CURLE_ABORTED_BY_CALLBACK
  early_.clear();
  if (uploader_) uploader_->stop();  // an agent that does not answer does not hold the stop up
  maybe_finish_stop();
}

void Crawler::maybe_finish_stop() {
  if (!stopping_) return;
  if (!release_sent_) {
    for (const auto& [id, it] : items_)
      if (it.stage == Stage::kFetching) return;
    std::vector<std::int64_t> ids;
    for (const auto& [id, it] : items_)
      if (returned_on_stop(it.stage)) ids.push_back(id);
    release_sent_ = true;
    if (!ids.empty()) {
      CRAWLER_LOG(info) << "returning " << ids.size() << " lease(s)";
      api_.release(ids, [this, ids](const CallStatus& st) {
        if (!st.ok) CRAWLER_LOG(warn) << "crawl_release: " << st.error << "; the leases will expire";
        for (auto id : ids) items_.erase(id);
        maybe_finish_stop();
      });
      return;
    }
  }
  if (!items_.empty() || claim_in_flight_) return;
  renew_timer_.cancel();
  if (on_stopped_) {
    auto cb = std::move(on_stopped_);
    on_stopped_ = nullptr;
    cb();
  }
}

}  // namespace crawler
