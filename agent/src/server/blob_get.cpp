#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/http/field.hpp>
#include <cerrno>
#include <cstring>

#include "blob_routes.hpp"
#include "crawler/agent/server/byte_range.hpp"
#include "responses.hpp"
#include "crawler/log.hpp"

namespace crawler::agent {
namespace {

// Closes the blob's file however the answer ends.
struct OpenFile {
  int fd = -1;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// If-None-Match: a list of entity tags or "*"; weak tags compare weakly,
// as RFC 9110 wants for this header.
bool none_match(std::string_view header, const std::string& etag) {
  while (!header.empty()) {
    std::size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

awaitable<void> serve_stored_file(Exchange& x, const std::filesystem::path& path, const StoredFileAnswer& how) {
  OpenFile file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0) {
    // Removed between find and open (an orphan sweep) reads as absent.
    int e = errno;
    // The store's path is for the log, not for the client.
    if (e != ENOENT) CRAWLER_LOG(error) << "cannot open " << path.string() << ": " << std::strerror(e);
    auto res = e == ENOENT ? error_response(http::status::not_found, how.missing_code, how.missing_message)
                           : error_response(http::status::service_unavailable, "store_unreadable",
                                            std::string("the node's store cannot be read: ") + std::strerror(e));
    co_await x.respond(std::move(res));
    co_return;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto& req = x.request();

  http::response_header<> header;
  header.set(http::field::etag, how.etag);
  header.set(http::field::cache_control, how.cache_control);
  header.set(http::field::accept_ranges, "bytes");
  // Bytes fetched from anywhere on the web, served from the agent's own
  // origin: never sniffed into HTML, never run as a page (an SVG's script).
  header.set("X-Content-Type-Options", "nosniff");
  header.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox");

  if (auto inm = req.find(http::field::if_none_match); inm != req.end() && none_match(std_view(inm->value()), how.etag)) {
    header.result(http::status::not_modified);
    co_await x.respond_file(std::move(header), file.fd, 0, 0);
    co_return;
  }

  RangeAnswer range;
  if (auto r = req.find(http::field::range); r != req.end()) {
    auto if_range = req.find(http::field::if_range);
    // If-Range with another validator (or a date): the client's piece is
    // of other content; the whole file is the answer.
    if (if_range == req.end() || if_range->value() == how.etag) range = parse_range(std_view(r->value()), size);
  }
  if (range.kind == RangeAnswer::unsatisfiable) {
    auto res = error_response(http::status::range_not_satisfiable, "range_not_satisfiable",
                              "the file has " + std::to_string(size) + " bytes");
    res.set(http::field::content_range, "bytes */" + std::to_string(size));
    co_await x.respond(std::move(res));
    co_return;
  }
  header.set(http::field::content_type, how.content_type);
  std::uint64_t offset = 0, count = size;
  if (range.kind == RangeAnswer::partial) {
    offset = range.first;
    count = range.last - range.first + 1;
    header.result(http::status::partial_content);
    header.set(http::field::content_range, "bytes " + std::to_string(range.first) + "-" +
                                               std::to_string(range.last) + "/" + std::to_string(size));
  } else {
    header.result(http::status::ok);
  }
  header.set(http::field::content_length, std::to_string(count));
  co_await x.respond_file(std::move(header), file.fd, offset, count);
}

awaitable<void> get_blob(Exchange& x, ServerState& state, const BlobName& name) {
  auto path = state.store.find(name.sha256);
  const std::string missing = "this node's store does not hold " + name.sha256;
  if (!path) {
    co_await x.respond(error_response(http::status::not_found, "blob_not_found", missing));
    co_return;
  }
  StoredFileAnswer how;
  how.etag = "\"" + name.sha256 + "\"";
  how.content_type = content_type_for_extension(path->extension().string().substr(1));
  // The name is the content's hash: it can never change.
  how.cache_control = "public, max-age=31536000, immutable";
  how.missing_code = "blob_not_found";
  how.missing_message = missing;
  co_await serve_stored_file(x, *path, how);
}

}  // namespace crawler::agent
