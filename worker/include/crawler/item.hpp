// A frontier item this worker holds, and how far it has come: one stage at
// a time, each with what it means for the lease (whether the item counts as
// work, whether a stop waits for it or returns it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "crawler/session_settings.hpp"

namespace crawler {

enum class Stage {
  kClaimed,      // leased; waiting for its session's settings, its host's robots.txt, or a redirect's scope
  kFetching,     // a transfer is out (a stop waits for it to end)
  kParsing,      // a page's or a sitemap's body on a parser thread
  kStoring,      // an image's file on a file thread or the committer
  kUploading,    // an image's file on its way to the primary's agent (--storage-agent)
  kLinksQueued,  // a page's links wait for the database; the page is completed after them
  kReported,     // complete, fail or image_record sent; forgotten when the database answers
};

// The stage's name, for logs.
const char* stage_name(Stage s);
// Whether an item may go from `from` to `to`: claimed to fetching, back to
// claimed (a redirect's next hop, or a transfer or an upload abandoned by a
// stop), on to parsing or storing, from storing to uploading, to links
// queued, and to reported from any stage but the last.
bool stage_may_follow(Stage from, Stage to);
// How much of a transfer slot an item takes, in quarters: claimed, fetching
// and parsing items are whole work, an image being stored needs no
// connection and counts a quarter (transfers go on meanwhile, memory stays
// bounded), so does one being uploaded (the spool's limits bound those), an
// item whose result is written counts nothing (max_pending_writes
// bounds those).
int work_quarters(Stage s);
// Whether a stop gives the item's lease back with crawl_release(): nothing
// of it is written yet, and nothing is under way that would write it.
bool returned_on_stop(Stage s);

struct Item {
  std::int64_t id = 0, session = 0;
  std::string url, kind, found_on;
  std::string at;  // the redirect target being fetched ("" = url)
  int depth = 0, attempts = 0;
  int redirects = 0;  // hops followed so far
  // An image URL the images table knows (a re-crawl): its validators, sent
  // as a conditional request, and whether it is fresh (not fetched at all).
  std::string known_etag, known_last_modified;
  bool known_fresh = false;
  Stage stage = Stage::kClaimed;
  // The session's settings as they were when the item was dispatched: one
  // item is crawled by one set of them, whatever a reload brings.
  std::shared_ptr<const SessionSettings> settings;

  const std::string& current() const { return at.empty() ? url : at; }
  // Moves to `to`; false (and the stage unchanged) when stage_may_follow()
  // forbids it: a bug, which the caller logs.
  bool enter(Stage to);
};

}  // namespace crawler
