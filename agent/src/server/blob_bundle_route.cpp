#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/http/field.hpp>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "blob_routes.hpp"
#include "crawler/blob_bundle.hpp"
#include "crawler/store.hpp"
#include "request_body.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

// Each name holds a file open until the answer is sent: the count is
// bounded so that a few clients cannot exhaust the agent's descriptors.
constexpr std::size_t kMaxBundleNames = 256;
// A bundle is for small blobs; a large one is fetched alone, resumably.
constexpr std::uint64_t kMaxBundleBytes = 64ull << 20;
// 256 names of at most 64 + 1 + 16 bytes, quoted, with room for spaces.
constexpr std::uint64_t kMaxBundleQueryBytes = 64 * 1024;

struct OpenFiles {
  std::vector<int> fds;
  ~OpenFiles() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

// The names of a bundle query, or the reason it is not one.
std::optional<std::vector<BlobName>> bundle_query(const std::string& body, std::string* why) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    *why = "the body is not JSON";
    return std::nullopt;
  }
  if (!doc.is_object() || !doc.contains("blobs") || !doc["blobs"].is_array() || doc["blobs"].empty()) {
    *why = "the body must be {\"blobs\": [\"<sha256>[.<ext>]\", ...]} with at least one name";
    return std::nullopt;
  }
  const auto& list = doc["blobs"];
  if (list.size() > kMaxBundleNames) {
    *why = "at most " + std::to_string(kMaxBundleNames) + " names per bundle";
    return std::nullopt;
  }
  std::vector<BlobName> names;
  names.reserve(list.size());
  for (const auto& item : list) {
    std::optional<BlobName> name;
    if (item.is_string()) name = parse_blob_name(item.get_ref<const std::string&>(), false);
    if (!name) {
      *why = "every name must be <sha256> or <sha256>.<ext>: 64 lower-case hex digits, then maybe a dot and 1 "
             "to 16 of [a-z0-9]";
      return std::nullopt;
    }
    names.push_back(std::move(*name));
  }
  return names;
}

// Opens the stored file of `name`: where its extension says, else under
// whatever extension the store holds it. -1 with errno ENOENT when absent.
int open_blob(const FileStore& store, const BlobName& name) {
  if (!name.ext.empty()) {
    int fd = ::open((store.root() / blob_relative_path(name.sha256, name.ext)).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
  }
  auto path = store.find(name.sha256);
  if (!path) {
    errno = ENOENT;
    return -1;
  }
  return ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace

awaitable<void> post_bundle(Exchange& x, ServerState& state) {
  auto body = co_await read_small_body(x, kMaxBundleQueryBytes, "query_too_large", "a bundle query");
  if (!body) co_return;
  std::string why;
  auto names = bundle_query(*body, &why);
  if (!names) {
    co_await x.respond(error_response(http::status::bad_request, "bad_query", why));
    co_return;
  }
  OpenFiles files;
  std::vector<BodyPart> parts(names->size());
  std::uint64_t length = 0, blob_bytes = 0;
  for (std::size_t i = 0; i < names->size(); ++i) {
    const BlobName& name = (*names)[i];
    int fd = open_blob(state.store, name);
    struct stat st;
    if (fd >= 0) files.fds.push_back(fd);
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      int e = errno;
      // Removed between find and open (an orphan sweep) reads as absent.
      if (e != ENOENT) {
        co_await x.respond(error_response(http::status::service_unavailable, "store_unreadable",
                                          name.sha256 + ": " + std::strerror(e)));
        co_return;
      }
      parts[i].lead = bundle_absent_line(name.sha256);
    } else {
      parts[i].fd = fd;
      parts[i].count = static_cast<std::uint64_t>(st.st_size);
      parts[i].lead = bundle_entry_line(name.sha256, parts[i].count);
      blob_bytes += parts[i].count;
    }
    length += parts[i].lead.size() + parts[i].count;
  }
  if (blob_bytes > kMaxBundleBytes) {
    co_await x.respond(error_response(http::status::payload_too_large, "bundle_too_large",
                                      "the blobs asked for have " + std::to_string(blob_bytes) +
                                          " bytes; a bundle holds at most " + std::to_string(kMaxBundleBytes) +
                                          ": fetch the large ones alone"));
    co_return;
  }
  http::response_header<> header;
  header.result(http::status::ok);
  header.set(http::field::content_type, "application/vnd.crawler-ha.bundle");
  header.set(http::field::cache_control, "no-store");
  header.set(http::field::content_length, std::to_string(length));
  co_await x.respond_parts(std::move(header), std::move(parts));
}

}  // namespace crawler::agent
