#include "app_routes.hpp"

#include <sys/stat.h>

#include <boost/beast/http/field.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <filesystem>

#include "api_calls.hpp"
#include "await_callback.hpp"
#include "blob_routes.hpp"
#include "crawler/agent/server/blob_name.hpp"
#include "crawler/agent/server/query_string.hpp"
#include "crawler/agent/server/thumbnailer.hpp"
#include "crawler/log.hpp"
#include "crawler/sha256.hpp"
#include "crawler/store.hpp"
#include "responses.hpp"

namespace crawler::agent {

extern const char* const kOpenApiJson;  // generated from docs/openapi.json
extern const char* const kDashboardHtml;  // generated from agent/web/dashboard.html

namespace {

enum class AppRouteKind {
  dashboard,
  openapi,
  ha_status,
  events,
  alerts,
  lag_history,
  crawl_start,
  crawl_list,
  crawl_status,
  crawl_stop,
  image_list,
  image_get,
  image_content,
  image_thumbnail,
};

struct AppRoute {
  std::string_view pattern;  // "{id}" stands for one path segment, the resource's id
  http::verb method;         // GET also answers HEAD
  AppRouteKind kind;
  ApiAccess access;
  std::string_view query;    // the query parameters taken, space-separated
};

constexpr std::array<AppRoute, 14> kAppRoutes{{
    // The page is open: it holds no data, and asks for a token when the
    // API it reads wants one.
    {"/", http::verb::get, AppRouteKind::dashboard, ApiAccess::open, ""},
    {"/api/openapi.json", http::verb::get, AppRouteKind::openapi, ApiAccess::open, ""},
    {"/api/ha-status", http::verb::get, AppRouteKind::ha_status, ApiAccess::read, ""},
    {"/api/events", http::verb::get, AppRouteKind::events, ApiAccess::read, "since limit"},
    {"/api/alerts", http::verb::get, AppRouteKind::alerts, ApiAccess::read, ""},
    {"/api/lag-history", http::verb::get, AppRouteKind::lag_history, ApiAccess::read, ""},
    {"/api/crawls", http::verb::get, AppRouteKind::crawl_list, ApiAccess::read, "limit before"},
    {"/api/crawls", http::verb::post, AppRouteKind::crawl_start, ApiAccess::operate, ""},
    {"/api/crawls/{id}", http::verb::get, AppRouteKind::crawl_status, ApiAccess::read, ""},
    {"/api/crawls/{id}/stop", http::verb::post, AppRouteKind::crawl_stop, ApiAccess::operate, ""},
    {"/api/images", http::verb::get, AppRouteKind::image_list, ApiAccess::read,
     "session host format min_bytes min_width min_height since until after limit"},
    {"/api/images/{id}", http::verb::get, AppRouteKind::image_get, ApiAccess::read, ""},
    {"/api/images/{id}/content", http::verb::get, AppRouteKind::image_content, ApiAccess::read, ""},
    {"/api/images/{id}/thumbnail", http::verb::get, AppRouteKind::image_thumbnail, ApiAccess::read, "size"},
}};

// image_list()'s arguments by query parameter, in the function's names.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kImageFilters{{
    {"session", "session => $%::bigint"},
    {"host", "host => $%"},
    {"format", "format => $%"},
    {"min_bytes", "min_bytes => $%::bigint"},
    {"min_width", "min_width => $%::integer"},
    {"min_height", "min_height => $%::integer"},
    {"since", "created_from => $%::timestamptz"},
    {"until", "created_before => $%::timestamptz"},
    {"after", "after_id => $%::bigint"},
    {"limit", "max_rows => $%::integer"},
}};

// A crawl's seeds may be many: crawl_start() takes up to 10,000 of up to
// 2 KiB each, but a request that large is better split; 4 MiB holds
// 10,000 ordinary URLs.
constexpr std::uint64_t kMaxCrawlBody = 4u << 20;
constexpr std::uint64_t kMaxStopBody = 1024;

// Whether `path` has the shape of `pattern`; *id is the "{id}" segment.
bool path_matches(std::string_view pattern, std::string_view path, std::string* id) {
  while (!pattern.empty()) {
    std::size_t ps = pattern.find('{');
    if (ps == std::string_view::npos) return pattern == path;
    if (path.substr(0, ps) != pattern.substr(0, ps)) return false;
    path.remove_prefix(ps);
    pattern.remove_prefix(pattern.find('}') + 1);
    std::size_t end = path.find('/');
    std::string_view seg = path.substr(0, end);
    if (seg.empty()) return false;
    *id = std::string(seg);
    path.remove_prefix(seg.size());
  }
  return path.empty();
}

bool takes(const AppRoute& route, const std::string& name) {
  std::string_view q = route.query;
  while (!q.empty()) {
    std::size_t sp = q.find(' ');
    if (q.substr(0, sp) == name) return true;
    if (sp == std::string_view::npos) break;
    q.remove_prefix(sp + 1);
  }
  return false;
}

// A list's page as {"<member>": [...], "<cursor>": last id or null}. The
// cursor is null only on an empty page: the end of the list.
awaitable<void> answer_page(Exchange& x, ServerState& state, std::string sql, std::vector<Param> params,
                            const char* member, const char* cursor) {
  auto row = co_await sql_row(x, state, DbRole::reader, std::move(sql), std::move(params), "the list");
  if (!row) co_return;
  nlohmann::json body = nlohmann::json::object();
  body[member] = parse_or_null((*row)[0]);
  body[cursor] = (*row)[1] ? nlohmann::json(std::stoll(*(*row)[1])) : nlohmann::json(nullptr);
  co_await x.respond(json_response(http::status::ok, body));
}

awaitable<void> answer_image_list(Exchange& x, ServerState& state, const std::map<std::string, std::string>& query) {
  std::string args;
  std::vector<Param> params;
  for (const auto& [name, argument] : kImageFilters) {
    auto it = query.find(std::string(name));
    if (it == query.end()) continue;
    params.emplace_back(it->second);
    std::string a(argument);
    a.replace(a.find('%'), 1, std::to_string(params.size()));
    args += (args.empty() ? "" : ", ") + a;
  }
  co_await answer_page(x, state,
                       "SELECT coalesce(pg_catalog.json_agg(i ORDER BY i.id), '[]')::text, pg_catalog.max(i.id) "
                       "FROM @extschema@.image_list(" + args + ") i",
                       std::move(params), "images", "next_after");
}

awaitable<void> answer_crawl_list(Exchange& x, ServerState& state, const std::map<std::string, std::string>& query) {
  std::string args;
  std::vector<Param> params;
  if (auto it = query.find("limit"); it != query.end()) {
    params.emplace_back(it->second);
    args = "max_rows => $1::integer";
  }
  if (auto it = query.find("before"); it != query.end()) {
    params.emplace_back(it->second);
    args += (args.empty() ? "before => $" : ", before => $") + std::to_string(params.size()) + "::bigint";
  }
  co_await answer_page(x, state,
                       "SELECT coalesce(pg_catalog.json_agg(c ORDER BY c.session_id DESC), '[]')::text, "
                       "pg_catalog.min(c.session_id) FROM @extschema@.crawl_list(" + args + ") c",
                       std::move(params), "crawls", "next_before");
}

// POST /api/crawls {"seeds": [...], "options": {...}}: 201 with the new
// crawl's status and its Location.
awaitable<void> answer_crawl_start(Exchange& x, ServerState& state) {
  std::vector<std::string> members{"seeds", "options"};
  auto doc = co_await json_object_body(x, kMaxCrawlBody, members);
  if (!doc) co_return;
  std::string why;
  const auto seeds = doc->find("seeds");
  const auto options = doc->find("options");
  if (seeds == doc->end() || !seeds->is_array()) why = "seeds must be an array of URLs";
  else
    for (const auto& s : *seeds)
      if (!s.is_string()) why = "seeds must be an array of URLs (strings)";
  if (options != doc->end() && !options->is_object() && !options->is_null())
    why = "options must be an object (the options crawl_start() takes, see docs/api.md)";
  if (!why.empty()) {
    auto res = error_response(http::status::bad_request, "bad_body", why);
    co_await x.respond(std::move(res));
    co_return;
  }
  std::vector<Param> params;
  params.emplace_back(seeds->dump());
  if (options != doc->end() && options->is_object()) params.emplace_back(options->dump());
  else params.emplace_back(std::nullopt);
  auto row = co_await sql_row(
      x, state, DbRole::writer,
      "SELECT pg_catalog.row_to_json(s)::text, s.session_id FROM @extschema@.crawl_status("
      "@extschema@.crawl_start(ARRAY(SELECT pg_catalog.jsonb_array_elements_text($1::jsonb)), "
      "coalesce($2::jsonb, '{}'))) s",
      std::move(params), "crawl_start()");
  if (!row) co_return;
  auto res = json_response(http::status::created, nlohmann::json{{"crawl", parse_or_null((*row)[0])}});
  res.set(http::field::location, "/api/crawls/" + (*row)[1].value_or(""));
  co_await x.respond(std::move(res));
}

awaitable<void> answer_crawl_stop(Exchange& x, ServerState& state, const std::string& id) {
  std::vector<std::string> members;
  auto doc = co_await json_object_body(x, kMaxStopBody, members);
  if (!doc) co_return;
  std::vector<Param> params;
  params.emplace_back(id);
  // OFFSET 0 keeps the stop in a subquery run before the status is read.
  auto row = co_await sql_row(
      x, state, DbRole::writer,
      "SELECT s.stopped, (SELECT pg_catalog.row_to_json(c)::text FROM @extschema@.crawl_status($1::bigint) c) "
      "FROM (SELECT @extschema@.crawl_stop($1::bigint) AS stopped OFFSET 0) s",
      std::move(params), "crawl_stop()");
  if (!row) co_return;
  nlohmann::json body = {{"stopped", (*row)[0] && *(*row)[0] == "t"}, {"crawl", parse_or_null((*row)[1])}};
  co_await x.respond(json_response(http::status::ok, body));
}

// The image row's blob: its sha256, its stored Content-Type and the file in
// this node's store; nullopt when the request has been answered (no such
// image, or its file not on this node).
struct ImageFile {
  std::string sha256;
  std::string content_type;
  std::filesystem::path path;
};

// Whether a stored Content-Type may be served as it is: an image type,
// written as a plain token (the server that sent it is anyone's).
bool plain_image_type(const std::string& type) {
  if (type.size() > 64 || type.rfind("image/", 0) != 0 || type.size() == 6) return false;
  for (char c : type.substr(6))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-')) return false;
  return true;
}

awaitable<std::optional<ImageFile>> image_file(Exchange& x, ServerState& state, const std::string& id) {
  std::vector<Param> params;
  params.emplace_back(id);
  DbResult r = co_await sql_call(state, DbRole::reader,
                                 "SELECT i.sha256, i.content_type, i.file_path FROM @extschema@.image_get($1::bigint) i",
                                 std::move(params));
  if (!r.ok) {
    co_await x.respond(sql_failure(r));
    co_return std::nullopt;
  }
  if (r.rows.empty()) {
    auto res = error_response(http::status::not_found, "not_found", "image " + id + " does not exist");
    co_await x.respond(std::move(res));
    co_return std::nullopt;
  }
  ImageFile f;
  f.sha256 = r.rows[0][0].value_or("");
  // The row's file name gives the extension the store names the file with:
  // one stat() of that name instead of listing its directory. A row whose
  // name says otherwise (a file stored under another extension) falls back
  // to the listing.
  std::optional<std::filesystem::path> path;
  const std::string row_ext = std::filesystem::path(r.rows[0][2].value_or("")).extension().string();
  if (row_ext.size() >= 2 && row_ext.size() <= 9 &&
      row_ext.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789", 1) == std::string::npos) {
    std::filesystem::path named = state.store.root() / blob_relative_path(f.sha256, row_ext.substr(1));
    struct stat st;
    if (is_sha256_hex(f.sha256) && ::stat(named.c_str(), &st) == 0 && S_ISREG(st.st_mode)) path = std::move(named);
  }
  if (!path) path = state.store.find(f.sha256);
  if (!path) {
    // The row is here but the file is not: file sync has not brought it
    // yet, or the image was stored where this node cannot see it.
    // Named: gcc 12 fails on a braced list inside a co_await expression.
    nlohmann::json extra = nlohmann::json::object();
    extra["sha256"] = f.sha256;
    auto res = error_response(http::status::not_found, "content_not_on_node",
                              "this node's store does not hold image " + id + "'s file (sha256 " + f.sha256 + ") yet",
                              extra);
    co_await x.respond(std::move(res));
    co_return std::nullopt;
  }
  f.path = *path;
  std::string stored = r.rows[0][1].value_or("");
  std::string ext = path->extension().string();
  f.content_type = plain_image_type(stored) ? stored : content_type_for_extension(ext.empty() ? ext : ext.substr(1));
  co_return f;
}

awaitable<void> answer_image_content(Exchange& x, ServerState& state, const std::string& id) {
  auto file = co_await image_file(x, state, id);
  if (!file) co_return;
  StoredFileAnswer how;
  how.etag = "\"" + file->sha256 + "\"";
  how.content_type = file->content_type;
  // An image's id keeps its URL, whose content may be fetched anew: a cache
  // asks again, and the ETag makes that a 304.
  how.cache_control = "no-cache";
  how.missing_code = "content_not_on_node";
  how.missing_message = "image " + id + "'s file has just been removed from this node's store";
  co_await serve_stored_file(x, file->path, how);
}

awaitable<void> answer_image_thumbnail(Exchange& x, ServerState& state, const std::string& id,
                                       const std::map<std::string, std::string>& query) {
  if (!state.thumbnails) {
    auto res = error_response(http::status::service_unavailable, "thumbnails_unavailable",
                                    "this agent makes no thumbnails");
    co_await x.respond(std::move(res));
    co_return;
  }
  const auto& sizes = state.thumbnails->sizes();
  // Without ?size=: the first size of 256 or more, else the largest.
  int size = sizes.back();
  for (int s : sizes)
    if (s >= 256) {
      size = s;
      break;
    }
  if (auto it = query.find("size"); it != query.end()) {
    auto v = whole_number(it->second, 1, 100000);
    if (!v || !state.thumbnails->size_allowed(static_cast<int>(*v))) {
      nlohmann::json extra = nlohmann::json::object();
      extra["sizes"] = sizes;
      auto res = error_response(http::status::bad_request, "bad_parameter",
                                "size must be one of " + nlohmann::json(sizes).dump(), extra);
      co_await x.respond(std::move(res));
      co_return;
    }
    size = static_cast<int>(*v);
  }
  auto file = co_await image_file(x, state, id);
  if (!file) co_return;
  Thumbnailer::Result made = co_await await_callback<Thumbnailer::Result>([&](auto done) {
    state.thumbnails->get(file->sha256, file->path, size, std::move(done));
  });
  if (made.kind != Thumbnailer::Result::ok) {
    const bool refused = made.kind == Thumbnailer::Result::not_image || made.kind == Thumbnailer::Result::too_large;
    auto res = error_response(refused ? http::status::unprocessable_entity : http::status::service_unavailable,
                              made.kind == Thumbnailer::Result::not_image   ? "not_an_image"
                              : made.kind == Thumbnailer::Result::too_large ? "image_too_large"
                              : made.kind == Thumbnailer::Result::busy      ? "thumbnailer_busy"
                                                                            : "thumbnail_failed",
                              // A failure's own words may name the store's paths:
                              // they go to the log, the client gets a fixed text.
                              made.kind == Thumbnailer::Result::failed
                                  ? std::string("the thumbnail could not be made (the agent's log says why)")
                                  : made.error);
    if (made.kind == Thumbnailer::Result::failed)
      CRAWLER_LOG(warn) << "thumbnail of image " << id << " (" << file->sha256 << "), size " << size << ": "
                        << made.error;
    if (made.kind == Thumbnailer::Result::busy) res.set(http::field::retry_after, "1");
    co_await x.respond(std::move(res));
    co_return;
  }
  StoredFileAnswer how;
  how.etag = "\"" + file->sha256 + "-" + std::to_string(size) + "\"";
  how.content_type = made.content_type;
  how.cache_control = "no-cache";
  how.missing_code = "thumbnail_gone";
  how.missing_message = "the thumbnail was removed while being served; ask again";
  co_await serve_stored_file(x, made.path, how);
}

// The dashboard, with a policy that lets it run its own inline script and
// style (by hash: the page is fixed, so a per-answer nonce would add
// nothing) and reach this origin only; thumbnails fetched with a token are
// shown from blob: URLs.
http::response<http::string_body> dashboard_response() {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-cache");
  res.set("Content-Security-Policy", dashboard_policy());
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.body() = kDashboardHtml;
  return res;
}

}  // namespace

std::string inline_element_hash(std::string_view html, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto first = html.find(open);
  const auto end = first == std::string_view::npos ? first : html.find(close, first);
  if (first == std::string_view::npos || end == std::string_view::npos ||
      html.find(open, first + 1) != std::string_view::npos ||
      html.find("<" + std::string(tag) + " ") != std::string_view::npos)
    throw std::logic_error("the dashboard must hold exactly one " + open + " without attributes");
  const std::string_view content = html.substr(first + open.size(), end - first - open.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(content.data()), content.size(), digest);
  unsigned char base64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
  EVP_EncodeBlock(base64, digest, SHA256_DIGEST_LENGTH);
  return "'sha256-" + std::string(reinterpret_cast<const char*>(base64)) + "'";
}

const std::string& dashboard_policy() {
  // Computed from the bytes served, once: the policy cannot fall behind an
  // edit of the page.
  static const std::string policy = std::string("default-src 'self'; script-src ") +
                                    inline_element_hash(kDashboardHtml, "script") +
                                    "; style-src " + inline_element_hash(kDashboardHtml, "style") +
                                    "; img-src 'self' blob:; connect-src 'self'; object-src 'none'; "
                                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  return policy;
}

const std::string& openapi_document() {
  static const std::string document(kOpenApiJson);
  return document;
}

awaitable<void> handle_app_request(Exchange& x, ServerState& state) {
  const auto& req = x.request();
  std::string_view target = std_view(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  std::string id;
  const AppRoute* route = nullptr;
  std::string allow;
  const http::verb method = req.method() == http::verb::head ? http::verb::get : req.method();
  for (const AppRoute& r : kAppRoutes) {
    std::string seg;
    if (!path_matches(r.pattern, path, &seg)) continue;
    allow += (allow.empty() ? "" : ", ") + std::string(r.method == http::verb::get ? "GET, HEAD" : "POST");
    if (r.method == method) {
      route = &r;
      id = seg;
    }
  }
  if (allow.empty()) {
    auto res = error_response(http::status::not_found, "not_found", "no such route");
    co_await x.respond(std::move(res));
    co_return;
  }
  if (!route) {
    auto res = error_response(http::status::method_not_allowed, "method_not_allowed", "this route takes " + allow);
    res.set(http::field::allow, allow);
    co_await x.respond(std::move(res));
    co_return;
  }
  std::string why;
  auto query = parse_query(target, &why);
  if (!query) {
    auto res = error_response(http::status::bad_request, "bad_query", why);
    co_await x.respond(std::move(res));
    co_return;
  }
  // The answer is built outside the loop and outside the co_await: gcc 12
  // destroys some temporaries of a co_await expression twice.
  std::optional<std::string> unknown;
  for (const auto& [name, value] : *query)
    if (!takes(*route, name)) {
      unknown = name;
      break;
    }
  if (unknown) {
    std::string takes_text = route->query.empty() ? std::string("this route takes no parameter")
                                                  : "this route takes the parameters " + std::string(route->query);
    // Cut to 64 bytes, maybe inside a character: replaced, not thrown.
    std::string got = nlohmann::json(unknown->substr(0, 64)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto res = error_response(http::status::bad_request, "unknown_parameter", takes_text + "; got " + got);
    co_await x.respond(std::move(res));
    co_return;
  }
  // An id is checked here only for its shape; whether it exists is the
  // database's answer (404).
  if (route->pattern.find("{id}") != std::string_view::npos &&
      !whole_number(id, 1, std::numeric_limits<long long>::max())) {
    auto res =
        error_response(http::status::bad_request, "bad_id", "an id is a whole number from 1 to 9223372036854775807");
    co_await x.respond(std::move(res));
    co_return;
  }
  if (!co_await authorize(x, state, route->access)) co_return;
  switch (route->kind) {
    case AppRouteKind::dashboard: {
      auto res = dashboard_response();
      co_await x.respond(std::move(res));
      break;
    }
    case AppRouteKind::openapi: {
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::cache_control, "no-cache");
      res.body() = openapi_document();
      co_await x.respond(std::move(res));
      break;
    }
    case AppRouteKind::ha_status:
      co_await answer_json_text(x, state, DbRole::reader,
                                "SELECT coalesce(pg_catalog.json_agg(s), '[]')::text FROM @extschema@.ha_status() s",
                                std::vector<Param>(), "nodes");
      break;
    case AppRouteKind::events:
      co_await answer_events(x, state, *query);
      break;
    case AppRouteKind::alerts: {
      // ha_alerts()'s rows as they are: the alert rules are the extension's.
      std::string sql = "SELECT coalesce(pg_catalog.json_agg(a), '[]')::text FROM @extschema@.ha_alerts() a";
      std::vector<Param> params;
      co_await answer_json_text(x, state, DbRole::reader, std::move(sql), std::move(params), "alerts");
      break;
    }
    case AppRouteKind::lag_history: {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      auto res = json_response(http::status::ok, state.lag_history.to_json(now));
      co_await x.respond(std::move(res));
      break;
    }
    case AppRouteKind::crawl_start:
      co_await answer_crawl_start(x, state);
      break;
    case AppRouteKind::crawl_list:
      co_await answer_crawl_list(x, state, *query);
      break;
    case AppRouteKind::crawl_status: {
      std::vector<Param> params;
      params.emplace_back(id);
      auto row = co_await sql_row(x, state, DbRole::reader,
                                  "SELECT pg_catalog.row_to_json(s)::text FROM @extschema@.crawl_status($1::bigint) s",
                                  std::move(params), "crawl_status()");
      if (!row) break;
      nlohmann::json body = nlohmann::json::object();
      body["crawl"] = parse_or_null((*row)[0]);
      co_await x.respond(json_response(http::status::ok, body));
      break;
    }
    case AppRouteKind::crawl_stop:
      co_await answer_crawl_stop(x, state, id);
      break;
    case AppRouteKind::image_list:
      co_await answer_image_list(x, state, *query);
      break;
    case AppRouteKind::image_get: {
      std::vector<Param> params;
      params.emplace_back(id);
      DbResult r = co_await sql_call(state, DbRole::reader,
                                     "SELECT pg_catalog.row_to_json(i)::text FROM @extschema@.image_get($1::bigint) i",
                                     std::move(params));
      if (!r.ok) co_await x.respond(sql_failure(r));
      else if (r.rows.empty()) {
        auto res = error_response(http::status::not_found, "not_found", "image " + id + " does not exist");
          co_await x.respond(std::move(res));
        }
      else {
        nlohmann::json body = nlohmann::json::object();
        body["image"] = parse_or_null(r.rows[0][0]);
        co_await x.respond(json_response(http::status::ok, body));
      }
      break;
    }
    case AppRouteKind::image_content:
      co_await answer_image_content(x, state, id);
      break;
    case AppRouteKind::image_thumbnail:
      co_await answer_image_thumbnail(x, state, id, *query);
      break;
  }
}

}  // namespace crawler::agent
