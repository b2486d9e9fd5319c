// The extension's write API, and the few reads a worker needs, as typed
// calls: the one place that knows each function's parameters, their order
// and their SQL spelling (sql_literal.hpp), and that reads each answer by
// column name. Callers pass and get values; none builds a parameter list.
//
// Where a call goes is decided here too: a frontier item's result
// (complete, fail, record_image) is keyed by the item, so its calls stay in
// order on one results connection, batched, with the session as the lock
// order; claims, renewals, releases and links share the claims' connection
// (database.hpp says why). A value that cannot be sent (a NUL byte in a text
// array) fails its call with SQLSTATE 22021, as the server would, without
// sending it.
#pragma once
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crawler/db_call.hpp"
#include "crawler/session_settings.hpp"
#include "crawler/sql_literal.hpp"

namespace crawler {

// The most of a robots.txt that is read and stored (Google's parser reads
// 500 KiB too).
constexpr std::size_t kRobotsMaxBytes = 512 * 1024;

// How a call ended: ok, or the database's error with its SQLSTATE.
struct CallStatus {
  bool ok = false;
  std::string sqlstate, error;
  static CallStatus of(const DbResult& r) { return {r.ok, r.sqlstate, r.error}; }
};

// A frontier item this worker leased (a row of crawl_claim()).
struct ClaimedItem {
  std::int64_t id = 0, session = 0;
  std::string url, kind, found_on;
  int depth = 0, attempts = 0;
  // An image URL the images table knows: its stored validators (for a
  // conditional request; "" when none) and whether it was confirmed within
  // the session's image_expiry_s (then it is not fetched at all).
  std::string known_etag, known_last_modified;
  bool known_fresh = false;
};

// What crawl_complete() records as the item's result.
struct CrawlResult {
  long http_status = 0;
  std::uint64_t bytes = 0;
  std::string note;  // "" = none
};

// A stored image and the item it ends (image_record()'s fourteen arguments).
struct ImageRecord {
  std::int64_t item = 0, session = 0;
  std::string url, found_on;      // found_on "" = none
  std::string sha256, file_path;  // file_path: relative to the store's root
  std::uint64_t file_size = 0;
  int width = 0, height = 0;
  std::string format;
  std::string content_type;  // the header as received: its media type is recorded when printable
  long http_status = 0;
  // The response's ETag and Last-Modified as received: recorded when they
  // can be sent back in a request (1 to 1024 printable ASCII characters).
  std::string etag, last_modified;
  // The thumbnails stored with it, as image_record() takes them: a JSON
  // object {"name": {"sha256", "file_path", "width", "height", "bytes"}};
  // "" when the session asks for none (recorded NULL). With
  // thumbnail_error, why they could not be made (the image is recorded all
  // the same; the error goes into the item's result).
  std::string thumbnails_json, thumbnail_error;
};

// A session's counters (crawl_status()); zero when NULL.
struct SessionStatus {
  std::string status;  // "" when NULL
  long long pages_fetched = 0, images_found = 0, images_stored = 0, bytes_stored = 0;
  long long errors = 0, retries = 0, queued = 0, leased = 0, done = 0, failed = 0;
  // Re-crawls: known images with new bytes, confirmed the same (a 304 or the
  // same sha256), or fresh (confirmed within image_expiry_s, not fetched).
  long long images_changed = 0, images_unchanged = 0, images_fresh = 0;
  // (pages fetched + images stored) / (those + errors), crawl_status()'s
  // rule; none before anything ended.
  std::optional<double> success_rate;
};

// A host's robots.txt as some worker stored it, and how old it is.
struct StoredRobots {
  std::string text;
  long long age_s = 0;
};

// Where a worker uploads blobs (a row of crawl_blob_target()): the agent of
// the node the worker is connected to, which is the writable primary.
struct BlobTarget {
  std::string agent_url;         // e.g. https://10.0.0.5:8000, no trailing path
  std::string replication_mode;  // async, sync or semi_sync
  int sync_timeout_ms = 0;       // how long a semi_sync primary waits for its standby
};

// Links of one session for one crawl_enqueue_many() call, encoded as they
// are added: a batch of 20,000 URLs is copied once, into its literal.
class LinkBatch {
 public:
  explicit LinkBatch(std::int64_t session) : session_(session) {}
  // Appends one link found on `found_on`. A value that cannot be sent (a NUL
  // byte) makes the whole call fail unsent, as the server would refuse it.
  void add(std::string_view url, std::string_view kind, int depth, std::string_view found_on);
  std::int64_t session() const { return session_; }
  std::size_t size() const { return urls_.size(); }

 private:
  friend class WriteApi;
  std::int64_t session_;
  PgArrayLiteral urls_, kinds_, depths_, found_on_;
  bool refused_ = false;  // an element cannot be sent: the call fails unsent
};

// The write API's calls (see the top of this file). Answers run on the
// DbCaller's loop, never inside the call that asked.
class WriteApi {
 public:
  using Done = std::function<void(const CallStatus&)>;
  template <typename T>
  using Answer = std::function<void(const CallStatus&, T)>;
  // A row of crawl_session_settings(): the settings, or why they cannot be read.
  using SettingsRow = std::variant<SessionSettings, std::string>;

  // Calls as `worker`, leasing for `lease_seconds`.
  WriteApi(DbCaller& db, std::string worker, int lease_seconds);
  const std::string& worker() const { return worker_; }
  // Calls not yet answered: the back-pressure on claims.
  std::size_t pending() const { return db_.pending(); }

  // crawl_start(): never sent twice (its outcome after a lost reply is unknown).
  void start_crawl(const std::vector<std::string>& seeds, const std::string& options_json,
                   Answer<std::int64_t> done);
  void crawl_status(std::int64_t session, Answer<std::optional<SessionStatus>> done);
  // One session's settings, or every running session's (nullopt).
  void session_settings(std::optional<std::int64_t> session, Answer<std::vector<SettingsRow>> done);

  // Leases up to `max_items` URLs of any running session for the lease time.
  void claim(int max_items, Answer<std::vector<ClaimedItem>> done);
  // How long until a host waiting out its politeness delay may be claimed
  // (crawl_next_claim_in()); nullopt when none waits or the call failed.
  void next_claim_in(Answer<std::optional<std::chrono::milliseconds>> done);
  // Leases to this worker those of `urls` (of `session`) that are queued,
  // on hosts without a delay and with room under per_host: the links it is
  // fetching already (early_fetch.hpp). Sent behind the links' enqueue.
  void lease_early(std::int64_t session, const std::vector<std::string>& urls,
                   Answer<std::vector<ClaimedItem>> done);
  // The number renewed (fewer when some were finished meanwhile).
  void renew(const std::vector<std::int64_t>& items, Answer<std::optional<long long>> done);
  // Gives leases back unfinished: the items are queued again, the attempt not counted.
  void release(const std::vector<std::int64_t>& items, Done done);

  // An item's success. Its results (complete, fail, record_image) stay in order.
  void complete(std::int64_t item, std::int64_t session, const CrawlResult& result, Done done);
  // A retry after `retry_after_s` (at least 1 s), or a final failure (nullopt).
  void fail(std::int64_t item, std::int64_t session, std::string_view error,
            std::optional<long> retry_after_s, Done done);
  // A stored image's row, and its item completed, in one transaction.
  void record_image(const ImageRecord& image, Done done);
  // A known image confirmed without its body (image_unchanged()): `fetched`
  // after a 304, not fetched when its lease said it was fresh; its item
  // completed. The answer is false when the images table no longer has the
  // URL (nothing was done: the item is the caller's to fetch whole).
  void image_unchanged(std::int64_t item, std::int64_t session, const std::string& url, bool fetched,
                       Answer<bool> done);

  // Links of one kind found on one page, at one depth; the number newly
  // queued. `found_on` "": found on no page (a --sitemap), sent as NULL.
  void enqueue(std::int64_t session, const std::vector<std::string>& urls, int depth, std::string_view kind,
               const std::string& found_on, Answer<std::uint64_t> done);
  // Links of many pages of one session at once; the number newly queued.
  void enqueue_many(const LinkBatch& batch, Answer<std::uint64_t> done);

  // The robots.txt a worker fetched, and its Crawl-delay, for every worker;
  // the text is stored as valid text, at most kRobotsMaxBytes.
  void set_host_robots(const std::string& host, std::optional<double> crawl_delay_s,
                       std::string_view robots_txt, Done done);
  // The whole host waits until `until`, for every worker (429, 503).
  void set_host_back_off(const std::string& host, std::time_t until, Done done);
  // Whether a redirect of an item of `kind` in `session` may be followed to
  // `url`: the crawl's scope, as the extension rules it for links too
  // (crawl_redirect_allowed()). A URL the extension refuses fails the call
  // with its SQLSTATE (22xxx).
  void redirect_allowed(std::int64_t session, const std::string& url, std::string_view kind, Answer<bool> done);
  // The host's robots.txt as some worker stored it (nullopt: none yet).
  void stored_robots(const std::string& host, Answer<std::optional<StoredRobots>> done);
  // Where blobs go now (crawl_blob_target()); nullopt with the error when
  // the node has no agent (55000) or the call failed otherwise. A standby's
  // 25006 never reaches the caller: the database layer reconnects to the
  // primary and asks again.
  void blob_target(Answer<std::optional<BlobTarget>> done);

 private:
  // A call that cannot be sent, answered as the server would answer it.
  void refuse(DbCaller::Callback done);

  DbCaller& db_;
  std::string worker_;
  std::string lease_;  // the lease's interval literal
};

}  // namespace crawler
