#include <boost/beast/http/field.hpp>
#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <system_error>

#include "await_callback.hpp"
#include "blob_routes.hpp"
#include "crawler/log.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

constexpr std::size_t kBodyPiece = 64 * 1024;

// The answer to a store that refused bytes, by the errno of the refusal:
// a full disk is the operator's to grow (507, retry elsewhere or later); a
// store that cannot be written at all is this node's fault (503). Both
// leave no file behind: the PendingFile is gone before this is sent.
http::response<http::string_body> store_failure(int error_number, const std::string& detail) {
  if (error_number == ENOSPC || error_number == EDQUOT)
    return error_response(http::status::insufficient_storage, "store_full", detail);
  return error_response(http::status::service_unavailable, "store_unwritable", detail);
}

nlohmann::json stored(const std::string& sha256, std::uint64_t size, const std::string& path, bool created) {
  return {{"sha256", sha256}, {"size", size}, {"path", path}, {"created", created}};
}

// Waits for a group sync of the store (StoreSync): what this node wrote
// before the call is on disk when it returns true.
awaitable<bool> durable(ServerState& state, std::string* error) {
  auto [ok, why] = co_await await_callback<bool, std::string>([&](auto done) {
    state.durability.request(std::move(done));
  });
  if (!ok) *error = why;
  co_return ok;
}

bool expects_continue(const http::request_header<>& req) {
  auto e = req.find(http::field::expect);
  return e != req.end() && boost::beast::iequals(e->value(), "100-continue");
}

// blob_put() then replicate(); answers `ok` when the copy is where the
// replication mode wants it, 503 replication_failed when not (the blob
// stays: it is valid, and a retried PUT finds it). A copy from the peer
// agent is only recorded: sending it back would loop between two nodes
// that both believe they are primary.
awaitable<void> record_and_replicate(Exchange& x, ServerState& state, const std::string& sha256,
                                     std::uint64_t size, const std::string& relative, bool created) {
  state.events.blob_put(sha256, size, created);
  if (x.request().find(kPeerCopyHeader) != x.request().end()) {
    co_await x.respond(json_response(created ? http::status::created : http::status::ok,
                                     stored(sha256, size, relative, created)));
    co_return;
  }
  std::filesystem::path file = state.store.root() / relative;
  auto [ok, error] = co_await await_callback<bool, std::string>([&](auto done) {
    state.events.replicate(sha256, file, std::move(done));
  });
  if (!ok) {
    co_await x.respond(error_response(http::status::service_unavailable, "replication_failed",
                                      "stored here but not copied to the peer: " + error,
                                      stored(sha256, size, relative, created)));
    co_return;
  }
  co_await x.respond(json_response(created ? http::status::created : http::status::ok,
                                   stored(sha256, size, relative, created)));
}

}  // namespace

awaitable<void> put_blob(Exchange& x, ServerState& state, const BlobName& name) {
  // A worker's upload belongs on the primary's node; a copy from the peer
  // agent is taken wherever it arrives.
  if (x.request().find(kPeerCopyHeader) == x.request().end()) {
    if (auto why = state.events.upload_refusal()) {
      co_await x.respond(error_response(http::status::service_unavailable, "not_primary", *why));
      co_return;
    }
  }
  // Already stored: the same name is the same bytes, so the body is not
  // worth reading, whatever its length (a retry after a lost answer, or another worker's copy).
  if (auto existing = state.store.find(name.sha256)) {
    std::error_code ec;
    std::uint64_t size = std::filesystem::file_size(*existing, ec);
    std::string relative =
        blob_relative_path(name.sha256, existing->extension().string().substr(1)).string();
    // Its name may still be on its way to the disk (another upload or a
    // fetch between its rename and its group sync): this answer promises
    // durability too.
    std::string error;
    if (!co_await durable(state, &error)) {
      co_await x.respond(store_failure(EIO, error));
      co_return;
    }
    co_await record_and_replicate(x, state, name.sha256, size, relative, false);
    co_return;
  }

  const std::uint64_t limit = state.config.max_blob_bytes;
  if (auto length = x.content_length(); length && *length > limit) {
    co_await x.respond(error_response(http::status::payload_too_large, "blob_too_large",
                                      "Content-Length " + std::to_string(*length) + " is over max_blob_bytes " +
                                          std::to_string(limit)));
    co_return;
  }

  if (expects_continue(x.request())) co_await x.send_continue();
  x.limit_body(limit);
  std::string error;
  std::unique_ptr<PendingFile> pending = state.store.create(&error);
  if (!pending) {
    co_await x.respond(store_failure(0, error));
    co_return;
  }
  std::vector<char> buffer(kBodyPiece);
  for (;;) {
    BodyPiece piece = co_await x.read_body(buffer.data(), buffer.size());
    if (piece.status == BodyPiece::too_large) {
      pending.reset();
      co_await x.respond(error_response(http::status::payload_too_large, "blob_too_large",
                                        "body over max_blob_bytes " + std::to_string(limit)));
      co_return;
    }
    if (piece.status == BodyPiece::broken) {
      pending.reset();  // the partial upload's temporary file goes with it
      x.abandon();
      co_return;
    }
    if (piece.size > 0 && !pending->write(buffer.data(), piece.size)) {
      int error_number = errno;
      error = pending->error();
      pending.reset();
      co_await x.respond(store_failure(error_number, error));
      co_return;
    }
    if (piece.done) break;
  }

  // No fsync per file: the bytes, then the name, reach the disk in group
  // syncs shared with every upload and fetch in flight (StoreSync).
  std::string actual;
  if (!pending->finish(&actual, false)) {
    int error_number = errno;
    error = pending->error();
    pending.reset();
    co_await x.respond(store_failure(error_number, error));
    co_return;
  }
  if (actual != name.sha256) {
    pending.reset();
    nlohmann::json hashes;  // built outside co_await: gcc 12 miscompiles braced lists there
    hashes["expected"] = name.sha256;
    hashes["actual"] = actual;
    auto res = error_response(http::status::unprocessable_entity, "hash_mismatch",
                              "the body's sha256 is not the blob's name", hashes);
    co_await x.respond(std::move(res));
    co_return;
  }
  // The bytes on disk before the name exists: a crash never leaves a name
  // over bytes that were not written.
  if (!co_await durable(state, &error)) {
    pending.reset();
    co_await x.respond(store_failure(EIO, error));
    co_return;
  }
  std::string relative;
  if (!pending->commit(name.ext, &relative, false)) {
    int error_number = errno;
    error = pending->error();
    pending.reset();
    co_await x.respond(store_failure(error_number, error));
    co_return;
  }
  std::uint64_t size = pending->size();
  pending.reset();
  // The name on disk before anyone is told the blob is stored.
  if (!co_await durable(state, &error)) {
    co_await x.respond(store_failure(EIO, error));
    co_return;
  }
  CRAWLER_LOG(debug) << "stored " << relative << " (" << size << " bytes) from " << x.client();
  co_await record_and_replicate(x, state, name.sha256, size, relative, true);
}

}  // namespace crawler::agent
