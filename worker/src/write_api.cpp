#include "crawler/write_api.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "crawler/fetch_result.hpp"
#include "crawler/media_type.hpp"
#include "crawler/options.hpp"
#include "crawler/url.hpp"

namespace crawler {
namespace {

long long to_ll(const Param& p, long long if_null) {
  if (!p) return if_null;
  long long v = if_null;
  std::from_chars(p->data(), p->data() + p->size(), v);
  return v;
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

Param text_or_null(const std::string& s) { return s.empty() ? Param{} : Param{s}; }

std::string result_json(const CrawlResult& r) {
  nlohmann::json j{{"http_status", r.http_status}, {"bytes", r.bytes}};
  if (!r.note.empty()) j["note"] = r.note;
  return json_text(j);
}

ClaimedItem read_claimed(const DbResult& r, std::size_t i) {
  ClaimedItem it;
  it.id = to_ll(r.at(i, "item_id"), 0);
  it.session = to_ll(r.at(i, "session_id"), 0);
  it.url = r.at(i, "url").value_or("");
  it.kind = r.at(i, "kind").value_or("page");
  it.depth = static_cast<int>(to_ll(r.at(i, "depth"), 0));
  it.attempts = static_cast<int>(to_ll(r.at(i, "attempts"), 1));
  it.found_on = r.at(i, "found_on").value_or("");
  it.known_etag = r.at(i, "known_etag").value_or("");
  it.known_last_modified = r.at(i, "known_last_modified").value_or("");
  it.known_fresh = r.at(i, "known_fresh").value_or("f") == "t";
  return it;
}

SessionStatus read_status(const DbResult& r) {
  SessionStatus s;
  s.status = r.at(0, "status").value_or("");
  s.pages_fetched = to_ll(r.at(0, "pages_fetched"), 0);
  s.images_found = to_ll(r.at(0, "images_found"), 0);
  s.images_stored = to_ll(r.at(0, "images_stored"), 0);
  s.bytes_stored = to_ll(r.at(0, "bytes_stored"), 0);
  s.errors = to_ll(r.at(0, "errors"), 0);
  s.retries = to_ll(r.at(0, "retries"), 0);
  s.queued = to_ll(r.at(0, "queued"), 0);
  s.leased = to_ll(r.at(0, "leased"), 0);
  s.done = to_ll(r.at(0, "done"), 0);
  s.images_changed = to_ll(r.at(0, "images_changed"), 0);
  s.images_unchanged = to_ll(r.at(0, "images_unchanged"), 0);
  s.images_fresh = to_ll(r.at(0, "images_fresh"), 0);
  s.failed = to_ll(r.at(0, "failed"), 0);
  if (const Param& rate = r.at(0, "success_rate"); rate) {
    try {
      s.success_rate = std::stod(*rate);
    } catch (const std::exception&) {
      // not a number: shown as unknown, as NULL is
    }
  }
  return s;
}

// An answer of one count (crawl_enqueue's and crawl_enqueue_many's "queued").
DbCaller::Callback count_answer(WriteApi::Answer<std::uint64_t> done) {
  return [done = std::move(done)](DbResult&& r) {
    done(CallStatus::of(r), r.ok ? static_cast<std::uint64_t>(to_ll(r.at(0, "queued"), 0)) : 0);
  };
}

// A validator (ETag, Last-Modified) as recorded: NULL unless it could be sent
// back (a server's malformed header is not the image's fault: the image is
// kept without it).
Param validator_or_null(const std::string& v) { return header_value_sendable(v) ? Param{v} : Param{}; }

DbCaller::Callback status_answer(WriteApi::Done done) {
  return [done = std::move(done)](DbResult&& r) { done(CallStatus::of(r)); };
}

}  // namespace

void LinkBatch::add(std::string_view url, std::string_view kind, int depth, std::string_view found_on) {
  refused_ |= !urls_.add_text(url) || !kinds_.add_text(kind) || !found_on_.add_text(found_on);
  depths_.add_bigint(depth);
}

WriteApi::WriteApi(DbCaller& db, std::string worker, int lease_seconds)
    : db_(db), worker_(std::move(worker)), lease_(pg_interval_seconds(lease_seconds)) {}

void WriteApi::refuse(DbCaller::Callback done) {
  DbResult r;
  r.sqlstate = "22021";  // character_not_in_repertoire: what the server says of a NUL byte in text
  r.error = "a text value holds a NUL byte (not sent)";
  db_.answer(std::move(done), std::move(r));
}

void WriteApi::start_crawl(const std::vector<std::string>& seeds, const std::string& options_json,
                           Answer<std::int64_t> done) {
  DbCaller::Callback answer = [done = std::move(done)](DbResult&& r) {
    done(CallStatus::of(r), r.ok ? to_ll(r.at(0, "session"), 0) : 0);
  };
  auto array = pg_text_array(seeds);
  if (!array) return refuse(std::move(answer));
  db_.call(Stmt::crawl_start, {std::move(*array), options_json}, std::move(answer), /*idempotent=*/false);
}

void WriteApi::crawl_status(std::int64_t session, Answer<std::optional<SessionStatus>> done) {
  db_.call(Stmt::crawl_status, {std::to_string(session)}, [done = std::move(done)](DbResult&& r) {
    done(CallStatus::of(r), r.ok && !r.rows.empty() ? std::optional(read_status(r)) : std::nullopt);
  });
}

void WriteApi::session_settings(std::optional<std::int64_t> session, Answer<std::vector<SettingsRow>> done) {
  Param p = session ? Param{std::to_string(*session)} : Param{};
  db_.call(Stmt::session_settings, {std::move(p)}, [done = std::move(done)](DbResult&& r) {
    std::vector<SettingsRow> rows;
    for (std::size_t i = 0; r.ok && i < r.rows.size(); ++i) rows.push_back(read_session_settings(r, i));
    done(CallStatus::of(r), std::move(rows));
  });
}

void WriteApi::claim(int max_items, Answer<std::vector<ClaimedItem>> done) {
  db_.call(Stmt::crawl_claim, {worker_, std::to_string(max_items), lease_}, [done = std::move(done)](DbResult&& r) {
    std::vector<ClaimedItem> items;
    for (std::size_t i = 0; r.ok && i < r.rows.size(); ++i) items.push_back(read_claimed(r, i));
    done(CallStatus::of(r), std::move(items));
  });
}

void WriteApi::next_claim_in(Answer<std::optional<std::chrono::milliseconds>> done) {
  db_.call(Stmt::crawl_next_claim_in, {}, [done = std::move(done)](DbResult&& r) {
    const Param& ms = r.at(0, "ms");
    done(CallStatus::of(r),
         r.ok && ms ? std::optional(std::chrono::milliseconds(to_ll(ms, 0))) : std::nullopt);
  });
}

void WriteApi::lease_early(std::int64_t session, const std::vector<std::string>& urls,
                           Answer<std::vector<ClaimedItem>> done) {
  std::optional<std::string> array = pg_text_array(urls);
  if (!array) return refuse([done = std::move(done)](DbResult&& r) { done(CallStatus::of(r), {}); });
  db_.call(Stmt::crawl_lease_early, {worker_, std::to_string(session), std::move(*array), lease_},
           [done = std::move(done)](DbResult&& r) {
             std::vector<ClaimedItem> items;
             for (std::size_t i = 0; r.ok && i < r.rows.size(); ++i) items.push_back(read_claimed(r, i));
             done(CallStatus::of(r), std::move(items));
           },
           true, 0, session);
}

void WriteApi::renew(const std::vector<std::int64_t>& items, Answer<std::optional<long long>> done) {
  db_.call(Stmt::crawl_renew, {worker_, pg_bigint_array(items), lease_}, [done = std::move(done)](DbResult&& r) {
    const Param& n = r.at(0, "renewed");
    done(CallStatus::of(r), r.ok && n ? std::optional(to_ll(n, 0)) : std::nullopt);
  });
}

void WriteApi::release(const std::vector<std::int64_t>& items, Done done) {
  db_.call(Stmt::crawl_release, {worker_, pg_bigint_array(items)}, status_answer(std::move(done)));
}

void WriteApi::complete(std::int64_t item, std::int64_t session, const CrawlResult& result, Done done) {
  db_.call(Stmt::crawl_complete, {std::to_string(item), worker_, result_json(result)},
           status_answer(std::move(done)), true, static_cast<std::uint64_t>(item), session);
}

void WriteApi::fail(std::int64_t item, std::int64_t session, std::string_view error,
                    std::optional<long> retry_after_s, Done done) {
  Param retry = retry_after_s ? Param{pg_interval_seconds(std::max(1L, *retry_after_s))} : Param{};
  db_.call(Stmt::crawl_fail, {std::to_string(item), worker_, one_line(error), std::move(retry)},
           status_answer(std::move(done)), true, static_cast<std::uint64_t>(item), session);
}

void WriteApi::record_image(const ImageRecord& im, Done done) {
  std::string filename = url_filename(im.url);
  db_.call(Stmt::image_record,
           {std::to_string(im.session), im.url, im.sha256, im.file_path, std::to_string(im.file_size),
            std::to_string(im.width), std::to_string(im.height), im.format, recorded_media_type(im.content_type),
            text_or_null(im.found_on), std::to_string(im.http_status),
            filename.empty() ? Param{} : Param{one_line(filename, 1000)}, std::to_string(im.item), worker_,
            validator_or_null(im.etag), validator_or_null(im.last_modified), text_or_null(im.thumbnails_json),
            im.thumbnail_error.empty() ? Param{} : Param{one_line(im.thumbnail_error, 1000)}},
           status_answer(std::move(done)), true, static_cast<std::uint64_t>(im.item), im.session);
}

void WriteApi::image_unchanged(std::int64_t item, std::int64_t session, const std::string& url, bool fetched,
                               Answer<bool> done) {
  db_.call(Stmt::image_unchanged,
           {std::to_string(session), url, fetched ? "true" : "false", std::to_string(item), worker_},
           [done = std::move(done)](DbResult&& r) { done(CallStatus::of(r), r.ok && r.at(0, "id").has_value()); },
           true, static_cast<std::uint64_t>(item), session);
}

void WriteApi::enqueue(std::int64_t session, const std::vector<std::string>& urls, int depth, std::string_view kind,
                       const std::string& found_on, Answer<std::uint64_t> done) {
  auto array = pg_text_array(urls);
  if (!array) return refuse(count_answer(std::move(done)));
  db_.call(Stmt::crawl_enqueue,
           {std::to_string(session), std::move(*array), std::to_string(depth), std::string(kind), text_or_null(found_on)},
           count_answer(std::move(done)), true, 0, session);
}

void WriteApi::enqueue_many(const LinkBatch& b, Answer<std::uint64_t> done) {
  if (b.refused_) return refuse(count_answer(std::move(done)));
  db_.call(Stmt::crawl_enqueue_many,
           {std::to_string(b.session_), b.urls_.str(), b.kinds_.str(), b.depths_.str(), b.found_on_.str()},
           count_answer(std::move(done)), true, 0, b.session_);
}

void WriteApi::set_host_robots(const std::string& host, std::optional<double> crawl_delay_s,
                               std::string_view robots_txt, Done done) {
  Param delay = crawl_delay_s ? Param{pg_interval_fractional_seconds(*crawl_delay_s)} : Param{};
  db_.call(Stmt::crawl_host_set, {host, std::move(delay), valid_text(robots_txt, kRobotsMaxBytes), Param{}},
           status_answer(std::move(done)));
}

void WriteApi::set_host_back_off(const std::string& host, std::time_t until, Done done) {
  db_.call(Stmt::crawl_host_set, {host, Param{}, Param{}, pg_timestamp_utc(until)}, status_answer(std::move(done)));
}

void WriteApi::redirect_allowed(std::int64_t session, const std::string& url, std::string_view kind,
                                Answer<bool> done) {
  db_.call(Stmt::redirect_allowed, {std::to_string(session), url, std::string(kind)},
           [done = std::move(done)](DbResult&& r) {
             done(CallStatus::of(r), r.ok && !r.rows.empty() && r.at(0, "allowed") == Param{"t"});
           });
}

void WriteApi::stored_robots(const std::string& host, Answer<std::optional<StoredRobots>> done) {
  db_.call(Stmt::host_robots, {host}, [done = std::move(done)](DbResult&& r) {
    std::optional<StoredRobots> stored;
    if (r.ok && !r.rows.empty() && r.at(0, "robots_txt") && r.at(0, "age"))
      stored = StoredRobots{*r.at(0, "robots_txt"), to_ll(r.at(0, "age"), 0)};
    done(CallStatus::of(r), std::move(stored));
  });
}

void WriteApi::blob_target(Answer<std::optional<BlobTarget>> done) {
  db_.call(Stmt::crawl_blob_target, {}, [done = std::move(done)](DbResult&& r) {
    std::optional<BlobTarget> target;
    if (r.ok && !r.rows.empty() && r.at(0, "agent_url")) {
      target.emplace();
      target->agent_url = *r.at(0, "agent_url");
      target->replication_mode = r.at(0, "replication_mode").value_or("");
      target->sync_timeout_ms = static_cast<int>(to_ll(r.at(0, "sync_timeout_ms"), 0));
    }
    CallStatus st = CallStatus::of(r);
    if (st.ok && !target) {
      // A row without a URL is no place to upload to: an error, as 55000 is.
      st.ok = false;
      st.sqlstate = "55000";
      st.error = "crawl_blob_target() returned no agent_url";
    }
    done(st, std::move(target));
  });
}

}  // namespace crawler
