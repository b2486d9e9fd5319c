#include "crawler/agent/server/router.hpp"

#include <array>

namespace crawler::agent {
namespace http = boost::beast::http;

namespace {

struct Entry {
  RouteId id;
  std::string_view path;  // exact, or a prefix when it ends with '/'
  std::array<http::verb, 3> methods;
  std::string_view allow;
};

// Exact paths first: /api/blobs/referenced and /api/blobs/bundle are not
// blob names.
constexpr std::array<Entry, 4> kRoutes{{
    {RouteId::blob_referenced, "/api/blobs/referenced", {http::verb::post}, "POST"},
    {RouteId::blob_bundle, "/api/blobs/bundle", {http::verb::post}, "POST"},
    {RouteId::file_sync_status, "/api/file-sync/status", {http::verb::get, http::verb::head},
     "GET, HEAD"},
    {RouteId::blob, "/api/blobs/", {http::verb::get, http::verb::head, http::verb::put},
     "GET, HEAD, PUT"},
}};

}  // namespace

Route match_route(http::verb method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (const Entry& e : kRoutes) {
    bool prefix = e.path.back() == '/';
    std::string_view segment;
    if (prefix) {
      if (path.size() <= e.path.size() || path.substr(0, e.path.size()) != e.path) continue;
      segment = path.substr(e.path.size());
      if (segment.find('/') != std::string_view::npos) continue;
    } else if (path != e.path) {
      continue;
    }
    Route r{e.id, std::string(segment), false, std::string(e.allow)};
    for (http::verb m : e.methods)
      if (m == method && m != http::verb::unknown) r.method_allowed = true;
    return r;
  }
  return Route{};
}

}  // namespace crawler::agent
