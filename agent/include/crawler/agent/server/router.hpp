// Which route a request target names, and which methods it takes: the
// table of the application port in one place.
#pragma once
#include <ostream>  // verb.hpp streams a verb without including it
#include <boost/beast/http/verb.hpp>
#include <string>
#include <string_view>

namespace crawler::agent {

enum class RouteId {
  blob,             // /api/blobs/<name>: GET, HEAD, PUT
  blob_referenced,  // /api/blobs/referenced: POST
  blob_bundle,      // /api/blobs/bundle: POST (a read)
  file_sync_status, // /api/file-sync/status: GET, HEAD
  not_found,
};

struct Route {
  RouteId id = RouteId::not_found;
  std::string segment;  // the blob name as sent (checked by the route itself)
  bool method_allowed = false;
  std::string allow;    // the Allow header of a 405
};

// Matches the path of `target` (a query string is ignored) and `method`.
// A path under /api/blobs/ with a further '/' matches nothing.
Route match_route(boost::beast::http::verb method, std::string_view target);

}  // namespace crawler::agent
