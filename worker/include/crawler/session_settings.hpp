// A crawl session's settings as a worker applies them. They have one
// definition, the extension's crawl_settings() (its defaults and limits);
// crawl_session_settings() hands them over typed, every one filled in, and
// this struct is filled only from that answer: it has no defaults of its
// own that could drift from the extension's.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "crawler/db_call.hpp"
#include "crawler/thumbnail.hpp"

namespace crawler {

struct SessionSettings {
  std::int64_t session;
  std::string status;      // running, finished, stopped ...
  std::string user_agent;  // the session's (a worker's --user-agent overrides it)
  bool robots;             // robots.txt and the pages' robots directives are obeyed
  std::uint64_t max_page_bytes, max_image_bytes, max_pixels;
  int min_width, min_height;  // smaller images are skipped, not stored
  // Politeness and depth, for early fetches only (the frontier applies them
  // to leases): the delay between two fetches of a host, leases per host,
  // how deep pages are followed.
  int delay_ms, per_host, max_depth;
  // A re-crawl (another session had one of its seeds): its images are not
  // fetched early, since their leases bring what the images table knows
  // (a conditional request, or none within image_expiry_s).
  bool revisit;
  // The Sitemap: lines of each host's robots.txt are queued (the sitemaps
  // queued by hand, --sitemap, are crawled either way).
  bool sitemaps;
  // The session has accept or reject patterns for pages, for images: links
  // of that kind are not fetched early. The frontier alone applies the
  // patterns (POSIX expressions as PostgreSQL reads them), and a URL they
  // exclude must never be asked for (a logout link).
  bool page_patterns, image_patterns;
  // The thumbnails made of each stored image (none when empty).
  std::vector<ThumbnailSize> thumbnails;
  // The crawl's scope is not here: the extension applies it to every link,
  // and a worker asks it for every redirect (WriteApi::redirect_allowed).
};

// Row `row` of crawl_session_settings()'s answer (as database.cpp selects
// it), or why it cannot be read: a column missing, NULL or not of its type
// is an error, never a fallback, since the extension fills in every setting.
std::variant<SessionSettings, std::string> read_session_settings(const DbResult& r, std::size_t row);

}  // namespace crawler
