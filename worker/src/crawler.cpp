#include "crawler/crawler.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cmath>
#include <ctime>
#include <sstream>

#include "crawler/extract.hpp"
#include "crawler/outcome.hpp"
#include "crawler/image_info.hpp"
#include "crawler/log.hpp"
#include "crawler/url.hpp"

namespace crawler {
namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t kRobotsMaxBytes = 512 * 1024;
constexpr std::size_t kEnqueueChunk = 1000;
// URLs in one crawl_enqueue_many() call (the function takes 100,000).
constexpr std::size_t kMaxLinksPerCall = 20000;
// URLs remembered per session as already sent (about 100 bytes each).
constexpr std::size_t kMaxRemembered = 500000;
// Robots files whose rules add up to more than this are matched on a thread
// of their own: a few microseconds per URL below it, up to tens of
// milliseconds at the 500 KiB a robots.txt may have.
constexpr std::size_t kInlineRobotsBytes = 16 * 1024;

std::string pg_array(const std::vector<std::string>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string pg_id_array(const std::vector<std::int64_t>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "}";
}

std::string seconds_interval(double s) {
  std::ostringstream o;
  o << s << " seconds";
  return o.str();
}

std::string utc_timestamp_after(long seconds) {
  std::time_t t = std::time(nullptr) + seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", &tm);
  return buf;
}

std::string media_type(const std::string& content_type) {
  std::string m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && m.back() == ' ') m.pop_back();
  for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return m;
}

// The content type image_record() is given: a media type is printable ASCII
// (the database refuses control characters); anything else, or nothing, is
// recorded as unknown rather than refused with the image.
Param recorded_media_type(const std::string& content_type) {
  std::string m = media_type(content_type).substr(0, 200);
  for (unsigned char c : m)
    if (c < 0x20 || c >= 0x7f) return Param{};
  return m.empty() ? Param{} : Param{m};
}

bool is_html(const std::string& mt) {
  return mt.empty() || mt == "text/html" || mt == "application/xhtml+xml";
}

std::uint64_t to_u64(const Param& p, std::uint64_t dflt) {
  return p ? std::stoull(*p) : dflt;
}

// Text the database accepts: valid UTF-8 (anything else becomes '?'), no
// NUL, at most n bytes.
std::string valid_text(const std::string& in, std::size_t n) {
  std::string out;
  out.reserve(std::min(in.size(), n));
  for (std::size_t i = 0; i < in.size();) {
    auto c = static_cast<unsigned char>(in[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= in.size() && c != 0;
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) >> 6) == 2;
    if (!ok) len = 1;
    if (out.size() + len > n) break;
    if (ok) out.append(in, i, len);
    else out.push_back('?');
    i += len;
  }
  return out;
}

// One line of text for error messages.
std::string clip(std::string s, std::size_t n = 4000) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return valid_text(s, n);
}

}  // namespace

Crawler::Crawler(asio::io_context& io, const WorkerOptions& opts, Database& db, FileStore& store)
    : io_(io),
      opts_(opts),
      db_(db),
      store_(store),
      fetcher_(io, FetchLimits{opts.concurrency, opts.host_connections, opts.connect_timeout_ms,
                               opts.timeout_ms, opts.low_speed_bytes, opts.low_speed_seconds,
                               opts.max_redirects}),
      parsers_(2),
      robots_checks_(1),
      files_(8),
      claim_timer_(io),
      renew_timer_(io) {
  committer_ = std::thread([this] { commit_loop(); });
}

Crawler::~Crawler() {
  if (vips_starter_.joinable()) vips_starter_.join();
  parsers_.join();
  robots_checks_.join();
  files_.join();
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.notify_all();
  committer_.join();
}

void Crawler::start() {
  // libvips takes 2-40 ms of CPU to start: on a thread of its own at the
  // lowest priority, so that it takes no CPU from the first pages.
  vips_starter_ = std::thread([] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    init_image_library("crawler-worker");
  });
  int stale = store_.remove_stale_temporaries();
  if (stale) CRAWLER_LOG(info) << "removed " << stale << " temporary file(s) left by a crash";
  preload_settings();
  claim();
  renew();
}

void Crawler::reload(const WorkerOptions& opts) {
  opts_.user_agent = opts.user_agent;
  opts_.max_pending_writes = opts.max_pending_writes;
  opts_.claim_batch = opts.claim_batch;
  settings_.clear();
  robots_.clear();
  preload_settings();
  CRAWLER_LOG(info) << "reloaded: session settings and robots.txt will be read again";
}

void Crawler::load_settings(Settings& st, const DbResult& r, std::size_t row) {
  st.loaded = true;
  st.status = r.at(row, "status").value_or("");
  st.user_agent = r.at(row, "user_agent").value_or("crawler_ha");
  st.robots = r.at(row, "robots").value_or("true") == "true";
  st.max_page_bytes = to_u64(r.at(row, "max_page_bytes"), st.max_page_bytes);
  st.max_image_bytes = to_u64(r.at(row, "max_image_bytes"), st.max_image_bytes);
  st.max_pixels = to_u64(r.at(row, "max_pixels"), st.max_pixels);
  st.min_width = static_cast<int>(to_u64(r.at(row, "min_width"), 0));
  st.min_height = static_cast<int>(to_u64(r.at(row, "min_height"), 0));
  st.images_any_host = r.at(row, "images_any_host").value_or("false") == "true";
  st.allowed_domains.clear();
  std::istringstream domains(r.at(row, "allowed_domains").value_or(""));  // host names: no spaces
  for (std::string d; domains >> d;) st.allowed_domains.push_back(d);
}

void Crawler::preload_settings() {
  // The settings of every running session, asked for ahead of the first
  // claim on the same connection: its items need not wait for a second
  // round trip.
  db_.call(Stmt::session_settings, {Param{}}, [this](DbResult&& r) {
    for (std::size_t i = 0; r.ok && i < r.rows.size(); ++i) {
      Settings& st = settings_[std::stoll(r.at(i, "id").value_or("0"))];
      if (!st.loaded && !st.loading) load_settings(st, r, i);
    }
  });
}

std::string Crawler::user_agent_for(const Settings& s) const {
  return opts_.user_agent.empty() ? s.user_agent : opts_.user_agent;
}

long Crawler::backoff_seconds(int attempts) const {
  // 2 s, 4 s, 8 s ... at most 5 minutes.
  return static_cast<long>(std::min(300.0, 2.0 * std::pow(2.0, std::max(0, attempts - 1))));
}

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
  if (db_.pending() >= static_cast<std::size_t>(opts_.max_pending_writes)) {
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
  db_.call(Stmt::crawl_claim,
           {opts_.worker_id, std::to_string(want), std::to_string(opts_.lease_seconds) + " seconds"},
           [this, want](DbResult&& r) {
             claim_in_flight_ = false;
             if (stopping_) {
               // Leased while stopping: give them straight back.
               std::vector<std::int64_t> ids;
               for (std::size_t i = 0; r.ok && i < r.rows.size(); ++i) ids.push_back(std::stoll(*r.at(i, "item_id")));
               if (ids.empty()) {
                 maybe_finish_stop();
               } else {
                 claim_in_flight_ = true;
                 db_.call(Stmt::crawl_release, {opts_.worker_id, pg_id_array(ids)}, [this](DbResult&&) {
                   claim_in_flight_ = false;
                   maybe_finish_stop();
                 });
               }
               return;
             }
             if (!r.ok) {
               CRAWLER_LOG(warn) << "crawl_claim: " << r.error << " [" << r.sqlstate << "]";
               schedule_claim(milliseconds(1000));
               return;
             }
             for (std::size_t i = 0; i < r.rows.size(); ++i) {
               Item it;
               it.id = std::stoll(*r.at(i, "item_id"));
               it.session = std::stoll(*r.at(i, "session_id"));
               it.url = r.at(i, "url").value_or("");
               it.kind = r.at(i, "kind").value_or("page");
               it.depth = std::stoi(r.at(i, "depth").value_or("0"));
               it.attempts = std::stoi(r.at(i, "attempts").value_or("1"));
               it.found_on = r.at(i, "found_on").value_or("");
               std::int64_t id = it.id;
               if (items_.count(id)) continue;  // a repeat after a lost reply
               items_.emplace(id, std::move(it));
               dispatch(id);
             }
             // Full batch: more is likely waiting. Empty: back off a little.
             if (static_cast<int>(r.rows.size()) == want) idle_delay_ = milliseconds(0);
             else if (!r.rows.empty()) idle_delay_ = milliseconds(20);
             else idle_delay_ = std::min(milliseconds(500), std::max(milliseconds(20), idle_delay_ * 2));
             queue_short_ = static_cast<int>(r.rows.size()) < want;
             if (claim_again_) idle_delay_ = milliseconds(0);  // work came while it was out
             claim_again_ = false;
             if (r.rows.empty() && items_.empty() && on_idle_) on_idle_();
             schedule_claim(idle_delay_);
           });
}

void Crawler::renew() {
  renew_timer_.expires_after(std::chrono::seconds(std::max(1, opts_.lease_seconds / 3)));
  renew_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::vector<std::int64_t> ids;
    for (const auto& [id, it] : items_) ids.push_back(id);
    if (!ids.empty())
      db_.call(Stmt::crawl_renew,
               {opts_.worker_id, pg_id_array(ids), std::to_string(opts_.lease_seconds) + " seconds"},
               [n = ids.size()](DbResult&& r) {
                 if (!r.ok) CRAWLER_LOG(warn) << "crawl_renew: " << r.error;
                 else if (r.at(0, "renewed") && std::stoul(*r.at(0, "renewed")) < n)
                   CRAWLER_LOG(debug) << "crawl_renew: " << *r.at(0, "renewed") << " of " << n
                                      << " leases renewed (the rest were finished meanwhile)";
               });
    renew();
  });
}

void Crawler::dispatch(std::int64_t id) {
  if (stopping_) return;  // its lease is returned
  auto iit = items_.find(id);
  if (iit == items_.end()) return;
  Item& it = iit->second;
  Settings& s = settings_[it.session];
  if (!s.loaded) {
    s.waiters.push_back(id);
    if (s.loading) return;
    s.loading = true;
    std::int64_t session = it.session;
    db_.call(Stmt::session_settings, {std::to_string(session)}, [this, session](DbResult&& r) {
      Settings& st = settings_[session];
      st.loading = false;
      if (!r.ok || r.rows.empty()) {
        CRAWLER_LOG(warn) << "session " << session << ": cannot read settings: " << r.error;
        auto waiters = std::move(st.waiters);
        st.waiters.clear();
        for (auto w : waiters)
          if (auto f = items_.find(w); f != items_.end()) fail(f->second, "session settings unavailable", 30);
        return;
      }
      load_settings(st, r, 0);
      auto waiters = std::move(st.waiters);
      st.waiters.clear();
      for (auto w : waiters) dispatch(w);
    });
    return;
  }
  if (s.robots) check_robots(id, s);
  else fetch(id);
}

void Crawler::check_robots(std::int64_t id, Settings& s) {
  if (stopping_) return;
  Item& it = items_.at(id);
  auto parts = split_url(it.current());
  if (!parts) {
    fail(it, it.at.empty() ? "invalid URL" : "invalid redirect target " + clip(it.at, 500), std::nullopt);
    return;
  }
  std::string host = host_key(*parts);
  HostRobots& hr = robots_[host];
  if (hr.ready && std::chrono::steady_clock::now() > hr.expires) {
    hr.ready = false;
    hr.by_agent.clear();
  }
  if (!hr.ready) {
    hr.waiters.push_back(id);
    if (!hr.loading) load_robots(host, parts->scheme);
    return;
  }
  if (hr.temporary_failure) {
    fail(it, "robots.txt of " + host + " is unavailable (server error or unreachable)", 60);
    return;
  }
  std::string agent = agent_token(user_agent_for(s));
  auto found = hr.by_agent.find(agent);
  if (found == hr.by_agent.end())
    found = hr.by_agent.emplace(agent, std::make_shared<const Robots>(Robots::parse(hr.text, agent))).first;
  std::shared_ptr<const Robots> robots = found->second;
  std::string path = parts->path;
  if (robots->pattern_bytes() <= kInlineRobotsBytes) {
    robots_decided(id, robots->allowed(path));
    return;
  }
  // Each rule costs a pass over the path: hundreds of kilobytes of rules
  // take tens of milliseconds per URL, which the loop's transfers and
  // database calls must not wait for.
  asio::post(robots_checks_, [this, id, robots = std::move(robots), path = std::move(path)] {
    bool allowed = robots->allowed(path);
    asio::post(io_, [this, id, allowed] { robots_decided(id, allowed); });
  });
}

void Crawler::robots_decided(std::int64_t id, bool allowed) {
  auto f = items_.find(id);
  if (f == items_.end() || stopping_) return;  // stopping: its lease is returned
  Item& it = f->second;
  if (!allowed) {
    ++stats_.skipped;
    fail(it, it.at.empty() ? "disallowed by robots.txt" : "redirected to " + clip(it.at, 500) + ": disallowed by robots.txt",
         std::nullopt);
    return;
  }
  fetch(id);
}

void Crawler::load_robots(const std::string& host, const std::string& scheme) {
  robots_[host].loading = true;
  // Another worker may have fetched it already: the database shares it.
  db_.call(Stmt::host_robots, {host}, [this, host, scheme](DbResult&& r) {
    HostRobots& hr = robots_[host];
    if (r.ok && !r.rows.empty() && r.at(0, "robots_txt") && r.at(0, "age") &&
        std::stoll(*r.at(0, "age")) < 86400) {
      hr.text = *r.at(0, "robots_txt");
      hr.temporary_failure = false;
      robots_loaded(host, hr);
      return;
    }
    FetchRequest req;
    req.url = scheme + "://" + host + "/robots.txt";
    req.user_agent = opts_.user_agent.empty() ? std::string("crawler_ha/") + CRAWLER_VERSION : opts_.user_agent;
    if (!hr.waiters.empty()) {
      auto w = items_.find(hr.waiters.front());
      if (w != items_.end()) req.user_agent = user_agent_for(settings_[w->second.session]);
    }
    req.max_bytes = kRobotsMaxBytes;
    std::string agent = agent_token(req.user_agent);
    fetcher_.start(std::move(req), [this, host, agent](FetchResult&& res) {
      HostRobots& h = robots_[host];
      bool ok = res.code == CURLE_OK || res.too_large;
      if (ok && res.status >= 200 && res.status < 300) {
        h.text = std::move(res.body);  // a robots.txt over 512 KiB is read as far as it goes
        h.temporary_failure = false;
      } else if (ok && res.status >= 400 && res.status < 500) {
        h.text.clear();  // RFC 9309: unavailable (4xx) means no restrictions
        h.temporary_failure = false;
      } else {
        // RFC 9309: unreachable (5xx, network) means complete disallow for now.
        CRAWLER_LOG(warn) << "robots.txt of " << host << ": "
                          << (ok ? "HTTP " + std::to_string(res.status) : res.error);
        h.temporary_failure = true;
        robots_loaded(host, h);
        return;
      }
      // The Crawl-delay of the group that applies to this crawler's agent.
      std::optional<double> delay = Robots::parse(h.text, agent).crawl_delay();
      db_.call(Stmt::crawl_host_set,
               {host, delay ? Param{seconds_interval(std::min(*delay, 86400.0))} : Param{}, valid_text(h.text, kRobotsMaxBytes), Param{}},
               [host](DbResult&& r2) {
                 if (!r2.ok) CRAWLER_LOG(warn) << "crawl_host_set " << host << ": " << r2.error;
               });
      robots_loaded(host, h);
    });
  });
}

void Crawler::robots_loaded(const std::string& host, HostRobots& hr) {
  hr.loading = false;
  hr.ready = true;
  hr.by_agent.clear();
  hr.expires = std::chrono::steady_clock::now() +
               (hr.temporary_failure ? std::chrono::seconds(60) : std::chrono::seconds(86400));
  auto waiters = std::move(hr.waiters);
  hr.waiters.clear();
  (void)host;
  for (auto w : waiters) {
    auto f = items_.find(w);
    if (f == items_.end()) continue;
    check_robots(w, settings_[f->second.session]);
  }
}

void Crawler::fetch(std::int64_t id) {
  if (stopping_) return;
  Item& it = items_.at(id);
  const Settings& s = settings_[it.session];
  FetchRequest req;
  req.url = it.current();
  req.user_agent = user_agent_for(s);
  // Each hop of a redirect is checked against robots.txt before it is
  // fetched (redirected() below), so curl does not follow them itself.
  req.follow_redirects = false;
  it.in_transfer = true;
  if (it.kind == "image") {
    std::string err;
    std::shared_ptr<PendingFile> file(store_.create(&err));
    if (!file) {
      it.in_transfer = false;
      fail(it, err, 60);
      return;
    }
    req.max_bytes = s.max_image_bytes;
    req.file = file.get();
    fetcher_.start(std::move(req), [this, id, file](FetchResult&& r) mutable {
      on_image(id, std::move(r), std::move(file));
    });
  } else {
    req.first = true;
    req.max_bytes = s.max_page_bytes;
    req.accept = [](long, const std::string& ct) -> std::string {
      std::string mt = media_type(ct);
      if (is_html(mt) || mt == "text/css") return "";
      return "not a page: Content-Type " + mt;
    };
    fetcher_.start(std::move(req), [this, id](FetchResult&& r) { on_page(id, std::move(r)); });
  }
}

bool Crawler::fetch_failed(Item& it, const FetchResult& r) {
  if (r.code == CURLE_ABORTED_BY_CALLBACK && stopping_) return true;  // lease goes back
  FetchOutcome o = classify_fetch(r, it.url, {backoff_seconds(it.attempts), opts_.max_retry_after_s});
  if (o.kind == FetchOutcome::Kind::kSuccess) return false;
  if (o.host_waits) {
    if (auto p = split_url(it.url)) {
      // The whole host waits, for every worker.
      db_.call(Stmt::crawl_host_set, {host_key(*p), Param{}, Param{}, utc_timestamp_after(o.retry_after_s)},
               [](DbResult&& r2) {
                 if (!r2.ok) CRAWLER_LOG(warn) << "crawl_host_set back-off: " << r2.error;
               });
    }
  }
  fail(it, o.error, o.kind == FetchOutcome::Kind::kRetry ? std::optional<long>(o.retry_after_s) : std::nullopt);
  return true;
}

bool Crawler::redirected(std::int64_t id, Item& it, const FetchResult& r) {
  if (r.redirect_url.empty()) return false;  // set only for a 3xx that was not followed
  if (++it.redirects > opts_.max_redirects) {
    fail(it, "too many redirects (more than " + std::to_string(opts_.max_redirects) + " followed; the last to " +
             clip(r.redirect_url, 500) + ")",
         std::nullopt);
    return true;
  }
  auto target = split_url(r.redirect_url);
  if (!target || (target->scheme != "http" && target->scheme != "https")) {
    fail(it, "HTTP " + std::to_string(r.status) + " redirect to an unusable Location " + clip(r.redirect_url, 500),
         std::nullopt);
    return true;
  }
  // The crawl's scope holds for every hop, as crawl_enqueue() holds it for links.
  const Settings& s = settings_[it.session];
  if (!(it.kind == "image" && s.images_any_host) && !in_domains(*target, s.allowed_domains)) {
    ++stats_.skipped;
    complete(it, r.status, 0, "redirected to " + clip(r.redirect_url, 500) + ", outside the crawl's allowed domains: not followed");
    return true;
  }
  CRAWLER_LOG(debug) << it.current() << ": HTTP " << r.status << " to " << r.redirect_url;
  it.at = r.redirect_url;
  dispatch(id);  // robots.txt of the target's host first, then the fetch
  return true;
}

void Crawler::on_page(std::int64_t id, FetchResult&& r) {
  auto f = items_.find(id);
  if (f == items_.end()) return;
  Item& it = f->second;
  it.in_transfer = false;
  if (stopping_ && r.code == CURLE_ABORTED_BY_CALLBACK) {
    maybe_finish_stop();
    return;
  }
  if (r.code == CURLE_WRITE_ERROR && !r.refused.empty()) {
    // A link to something that is not a page (a PDF, a script): done, not
    // an error; the reason is kept in the item's result.
    ++stats_.skipped;
    complete(it, r.status, 0, r.refused + "; not parsed");
    return;
  }
  if (redirected(id, it, r)) return;
  if (fetch_failed(it, r)) return;
  // Parsing takes about 50 ms per MB (more for pages dense with links): off the loop, two at a time,
  // while the loop goes on with transfers and the database.
  // With robots on, the page's own directives hold too (X-Robots-Tag, meta).
  const Settings& s = settings_[it.session];
  std::optional<RobotsDirectives> directives;
  std::string agent;
  if (s.robots) {
    agent = agent_token(user_agent_for(s));
    directives.emplace();
    for (const auto& v : r.robots_tags) directives->add(v, agent);
  }
  asio::post(parsers_, [this, id, url = it.url, r = std::move(r), directives, agent]() mutable {
    std::string base = r.effective_url.empty() ? url : r.effective_url;
    std::string mt = media_type(r.content_type);
    Links links;
    // whatever a page does to the parser costs that page, never the process
    try {
      if (mt == "text/css") {
        if (!directives || !directives->noimageindex) links.images = extract_css(r.body, base);
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
        if (f != items_.end() && !stopping_) fail(f->second, links.refused, std::nullopt);
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
  it.final_sent = true;
  PageLinks p;
  p.id = id;
  p.session = it.session;
  p.depth = it.depth + 1;
  p.url = it.url;
  p.status = r.status;
  p.bytes = r.bytes;
  p.pages = unsent(it, pages, "page");
  p.images = unsent(it, images, "image");
  if (p.pages.empty() && p.images.empty()) {
    complete(it, r.status, r.bytes);
    return;
  }
  waiting_links_.push_back(std::move(p));
  // One call at a time: the pages parsed while it is out go in the next.
  if (links_in_flight_ == 0) send_links();
  request_claim(true);
}

std::vector<std::string> Crawler::unsent(const Item& it, const std::vector<std::string>& found, const char* kind) {
  // A URL this worker already sent at this depth or shallower is skipped
  // here: the database would skip it too (most links repeat on every page).
  auto& sent = sent_[it.session];
  if (sent.size() > kMaxRemembered) sent.clear();
  std::vector<std::string> urls;
  for (const auto& u : found) {
    auto [at, fresh] = sent.try_emplace(kind[0] + u, it.depth + 1);
    if (!fresh) {
      if (at->second <= it.depth + 1) continue;
      at->second = it.depth + 1;
    }
    urls.push_back(u);
  }
  return urls;
}

void Crawler::send_links() {
  while (!waiting_links_.empty()) {
    // One call per session, at most kMaxLinksPerCall URLs (a larger page
    // goes alone).
    std::int64_t session = waiting_links_.front().session;
    std::vector<PageLinks> group;
    std::size_t n = 0;
    while (!waiting_links_.empty() && waiting_links_.front().session == session) {
      std::size_t k = waiting_links_.front().pages.size() + waiting_links_.front().images.size();
      if (!group.empty() && n + k > kMaxLinksPerCall) break;
      n += k;
      group.push_back(std::move(waiting_links_.front()));
      waiting_links_.pop_front();
    }
    if (n > kMaxLinksPerCall) {  // one huge page: in chunks, the old way
      enqueue_each(std::move(group.front()));
      continue;
    }
    // Pages before images: their ids come first in the claims' order.
    std::vector<std::string> urls, kinds, found_on;
    std::vector<std::int64_t> depths;
    for (const char* kind : {"page", "image"})
      for (const auto& p : group)
        for (const auto& u : kind[0] == 'p' ? p.pages : p.images) {
          urls.push_back(u);
          kinds.emplace_back(kind);
          depths.push_back(p.depth);
          found_on.push_back(p.url);
        }
    ++links_in_flight_;
    db_.call(Stmt::crawl_enqueue_many,
             {std::to_string(session), pg_array(urls), pg_array(kinds), pg_id_array(depths), pg_array(found_on)},
             [this, group = std::move(group)](DbResult&& r) mutable {
               --links_in_flight_;
               if (!r.ok) {
                 // Each page on its own, so that one bad link costs only its page.
                 CRAWLER_LOG(warn) << "crawl_enqueue_many: " << r.error << " [" << r.sqlstate
                                   << "]; sending page by page";
                 for (auto& p : group) enqueue_each(std::move(p));
               } else {
                 if (auto q = std::stoull(r.at(0, "queued").value_or("0")); q > 0) {
                   stats_.queued += q;
                   idle_delay_ = milliseconds(0);
                   request_claim(true);
                 }
                 for (const auto& p : group)
                   if (auto f = items_.find(p.id); f != items_.end()) complete(f->second, p.status, p.bytes);
               }
               if (links_in_flight_ == 0 && !waiting_links_.empty()) send_links();
               request_claim();
             },
             true, 0, session);
  }
}

void Crawler::enqueue_each(PageLinks p) {
  auto left = std::make_shared<int>(0);
  auto then = [this, id = p.id, status = p.status, bytes = p.bytes, left] {
    if (--*left > 0) return;
    if (auto f2 = items_.find(id); f2 != items_.end()) complete(f2->second, status, bytes);
  };
  *left = enqueue(p, p.pages, "page", then) + enqueue(p, p.images, "image", then);
  if (*left == 0)
    if (auto f = items_.find(p.id); f != items_.end()) complete(f->second, p.status, p.bytes);
}

int Crawler::enqueue(const PageLinks& p, const std::vector<std::string>& urls, const char* kind,
                     const std::function<void()>& then) {
  int calls = 0;
  for (std::size_t at = 0; at < urls.size(); at += kEnqueueChunk) {
    ++calls;
    std::vector<std::string> chunk(urls.begin() + static_cast<long>(at),
                                   urls.begin() + static_cast<long>(std::min(urls.size(), at + kEnqueueChunk)));
    std::string array = pg_array(chunk);
    db_.call(Stmt::crawl_enqueue,
             {std::to_string(p.session), std::move(array), std::to_string(p.depth), std::string(kind), p.url},
             [this, url = p.url, session = p.session, kind, chunk = std::move(chunk), then](DbResult&& r) {
               if (!r.ok) {
                 CRAWLER_LOG(warn) << "crawl_enqueue from " << url << ": " << r.error << " [" << r.sqlstate << "]";
                 // Not queued: a later page may send them again.
                 auto& sent2 = sent_[session];
                 for (const auto& u : chunk) sent2.erase(kind[0] + u);
               } else if (auto n = std::stoull(r.at(0, "queued").value_or("0")); n > 0) {
                 stats_.queued += n;
                 // New work: ask for it now rather than after the idle back-off.
                 idle_delay_ = milliseconds(0);
                 request_claim(true);
               }
               then();
             },
             true, 0, p.session);
  }
  return calls;
}

void Crawler::on_image(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file) {
  auto f = items_.find(id);
  if (f == items_.end()) return;
  Item& it = f->second;
  it.in_transfer = false;
  if (stopping_ && r.code == CURLE_ABORTED_BY_CALLBACK) {
    maybe_finish_stop();
    return;
  }
  if (redirected(id, it, r)) return;  // a new file for the next hop; this one goes with `file`
  if (fetch_failed(it, r)) return;  // `file` goes with this scope: no partial file stays
  if (r.bytes == 0) {
    fail(it, "not an image: the body is empty", std::nullopt);
    return;
  }
  const Settings s = settings_[it.session];
  it.final_sent = true;  // from here the outcome is decided off the loop
  it.processing = true;
  // Off the loop: writing, header reading and directories may block on
  // disk; the committer thread syncs and renames.
  asio::post(files_, [this, id, file, s, r = std::move(r)]() mutable {
    std::string sha, error;
    ImageInfo info;
    bool skipped = false;
    if (!file->finish(&sha, false)) {
      error = "store: " + file->error();
    } else {
      auto res = read_image_info(file->temp_path(), file->head());
      if (auto* e = std::get_if<std::string>(&res)) {
        error = *e;
        if (!r.content_type.empty()) error += " (Content-Type " + media_type(r.content_type) + ")";
      } else {
        info = std::get<ImageInfo>(res);
        std::uint64_t pixels = static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height);
        if (pixels > s.max_pixels) {
          error = "too many pixels: " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                  " is over max_pixels " + std::to_string(s.max_pixels);
        } else if (info.width < s.min_width || info.height < s.min_height) {
          skipped = true;
        } else if (!file->prepare()) {
          error = "store: " + file->error();
        } else {
          {
            std::lock_guard<std::mutex> lock(commit_mu_);
            to_commit_.push_back(ToCommit{id, std::move(file), std::move(r), info, sha});
          }
          commit_cv_.notify_one();
          return;
        }
      }
    }
    file.reset();  // an uncommitted temporary file is removed here
    asio::post(io_, [this, id, sha, error, info, skipped, r = std::move(r)]() {
      image_done(id, r, info, sha, "", error, skipped);
    });
  });
}

void Crawler::commit_loop() {
  for (;;) {
    std::vector<ToCommit> batch;
    {
      std::unique_lock<std::mutex> lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return commit_stop_ || !to_commit_.empty(); });
      if (to_commit_.empty()) return;
      batch.swap(to_commit_);
    }
    // The bytes of every file are on disk before any is renamed (a name in
    // the store always has all its bytes), and the renames before
    // image_record() names them: two syncfs for the whole batch.
    std::string err;
    std::vector<std::string> rels(batch.size()), errors(batch.size());
    bool synced = store_.sync(&err);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!synced) errors[i] = "store: " + err;
      else if (!batch[i].file->commit(batch[i].info.ext, &rels[i], false))
        errors[i] = "store: " + batch[i].file->error();
    }
    if (synced && !store_.sync(&err))
      for (auto& e : errors)
        if (e.empty()) e = "store: " + err;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].file.reset();  // an uncommitted temporary file is removed here
      asio::post(io_, [this, t = std::move(batch[i]), rel = std::move(rels[i]), error = std::move(errors[i])]() {
        image_done(t.id, t.r, t.info, t.sha, rel, error, false);
      });
    }
  }
}

void Crawler::image_done(std::int64_t id, const FetchResult& r, const ImageInfo& info, const std::string& sha,
                         const std::string& rel, const std::string& error, bool skipped) {
  auto f2 = items_.find(id);
  if (f2 == items_.end()) return;
  Item& item = f2->second;
  item.final_sent = false;
  item.processing = false;
  if (!error.empty()) {
    fail(item, error, std::nullopt);
    return;
  }
  if (skipped) {
    ++stats_.skipped;
    complete(item, r.status, r.bytes,
             "smaller than min_width/min_height: " + std::to_string(info.width) + "x" + std::to_string(info.height));
    return;
  }
  item.final_sent = true;
  ++stats_.images;
  stats_.bytes += r.bytes;
  db_.call(Stmt::image_record,
           {std::to_string(item.session), item.url, sha, rel, std::to_string(r.bytes),
            std::to_string(info.width), std::to_string(info.height), info.format,
            recorded_media_type(r.content_type),
            item.found_on.empty() ? Param{} : Param{item.found_on}, std::to_string(r.status),
            url_filename(item.url).empty() ? Param{} : Param{clip(url_filename(item.url), 1000)},
            std::to_string(item.id), opts_.worker_id},
           [this, id](DbResult&& res) { acknowledged(id, res, "image_record"); }, true,
           static_cast<std::uint64_t>(id), item.session);
  request_claim();
}

std::size_t Crawler::active_items() const {
  // Images being stored need no connection: they count for a quarter, so
  // transfers go on meanwhile and memory stays bounded.
  std::size_t n = 0, storing = 0;
  for (const auto& [id, it] : items_) {
    if (it.processing) ++storing;
    else if (!it.final_sent) ++n;
  }
  return n + storing / 4;
}

void Crawler::complete(Item& it, long status, std::uint64_t bytes, const std::string& note) {
  it.final_sent = true;
  std::string result = "{\"http_status\": " + std::to_string(status) + ", \"bytes\": " + std::to_string(bytes);
  if (!note.empty()) result += ", \"note\": " + json_string(note);
  result += "}";
  request_claim();
  db_.call(Stmt::crawl_complete, {std::to_string(it.id), opts_.worker_id, result},
           [this, id = it.id](DbResult&& r) { acknowledged(id, r, "crawl_complete"); }, true,
           static_cast<std::uint64_t>(it.id), it.session);
}

void Crawler::fail(Item& it, const std::string& error, std::optional<long> retry_after_s) {
  it.final_sent = true;
  if (retry_after_s) ++stats_.retries;
  else ++stats_.errors;
  request_claim();
  CRAWLER_LOG(info) << (retry_after_s ? "retry " : "failed ") << it.url << ": " << error
                    << (retry_after_s ? " (again in " + std::to_string(*retry_after_s) + " s)" : "");
  db_.call(Stmt::crawl_fail,
           {std::to_string(it.id), opts_.worker_id, clip(error),
            retry_after_s ? Param{std::to_string(std::max(1L, *retry_after_s)) + " seconds"} : Param{}},
           [this, id = it.id](DbResult&& r) { acknowledged(id, r, "crawl_fail"); }, true,
           static_cast<std::uint64_t>(it.id), it.session);
}

void Crawler::acknowledged(std::int64_t id, const DbResult& r, const char* what) {
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

void Crawler::stop(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  claim_timer_.cancel();
  fetcher_.cancel_all();  // their handlers see CURLE_ABORTED_BY_CALLBACK
  maybe_finish_stop();
}

void Crawler::maybe_finish_stop() {
  if (!stopping_) return;
  if (!release_sent_) {
    for (const auto& [id, it] : items_)
      if (it.in_transfer) return;
    std::vector<std::int64_t> ids;
    for (const auto& [id, it] : items_)
      if (!it.final_sent) ids.push_back(id);
    release_sent_ = true;
    if (!ids.empty()) {
      CRAWLER_LOG(info) << "returning " << ids.size() << " lease(s)";
      db_.call(Stmt::crawl_release, {opts_.worker_id, pg_id_array(ids)}, [this, ids](DbResult&& r) {
        if (!r.ok) CRAWLER_LOG(warn) << "crawl_release: " << r.error << "; the leases will expire";
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
