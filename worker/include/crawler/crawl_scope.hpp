// The crawl's scope: which URLs a session takes. The rule has one
// definition, the extension's: crawl_enqueue() and crawl_enqueue_many()
// keep a link when
//     (kind = 'image' AND images_any_host) OR crawl_in_scope(host, allowed_domains)
// and every link reaches the frontier through them. The worker needs the
// rule for one thing the database never sees: a redirect's target, which it
// follows itself, one hop at a time. The write API has no call that answers
// it (crawl_in_scope() is internal, not granted to crawler_ha_writer), so
// in_crawl_scope() mirrors that expression, and crawl_scope_test.cpp fails
// when the SQL's text changes, or when a case checked against PostgreSQL
// comes out otherwise here.
#pragma once
#include <string_view>

#include "crawler/session_settings.hpp"
#include "crawler/url.hpp"

namespace crawler {

// Whether a URL of `kind` ("page" or "image") at `target` (a normalised
// URL's parts) is within the session's scope: an image when the session
// takes images from any host, else a host within allowed_domains
// (in_domains(), the rule of crawl_in_scope()).
bool in_crawl_scope(const UrlParts& target, std::string_view kind, const SessionSettings& session);

}  // namespace crawler
