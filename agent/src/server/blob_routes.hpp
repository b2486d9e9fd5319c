// The blob routes: store a blob (PUT), serve one (GET, HEAD), and answer
// the peer's and the operators' questions (referenced, file-sync status).
// Authorization is checked before these run.
#pragma once
#include <filesystem>
#include <string>

#include "crawler/agent/server/blob_name.hpp"
#include "exchange.hpp"
#include "server_state.hpp"

namespace crawler::agent {

// PUT /api/blobs/<sha256>.<ext>: streams the body into the store, checks
// its hash against the name, commits, then blob_put() and replicate();
// 201 when stored, 200 when it was there already (the body is not read).
awaitable<void> put_blob(Exchange& x, ServerState& state, const BlobName& name);

// How serve_stored_file() answers: the validator and headers of the file.
struct StoredFileAnswer {
  std::string etag;           // quoted: "\"<sha256>\""
  std::string content_type;
  std::string cache_control;
  std::string missing_code;   // the 404's code when the file is gone
  std::string missing_message;
};

// GET and HEAD of a file of the store (a blob, a thumbnail): 304 when
// If-None-Match names the ETag, 206 for one satisfiable Range (If-Range
// honoured), 416 for an unsatisfiable one, else 200; 404 when the file has
// gone. Sent with nosniff and a sandboxing Content-Security-Policy: the
// bytes come from anywhere on the web.
awaitable<void> serve_stored_file(Exchange& x, const std::filesystem::path& path, const StoredFileAnswer& how);

// GET and HEAD /api/blobs/<sha256>[.<ext>]: the stored file, with
// conditional and single-range requests.
awaitable<void> get_blob(Exchange& x, ServerState& state, const BlobName& name);

// POST /api/blobs/bundle: {"blobs":["<sha256>[.<ext>]",...]} -> the held
// blobs in one body (crawler/blob_bundle.hpp), in the order asked; a read,
// authorized as GET is.
awaitable<void> post_bundle(Exchange& x, ServerState& state);

// POST /api/blobs/referenced: {"sha256":[...]} -> {"referenced":[...]}.
awaitable<void> post_referenced(Exchange& x, ServerState& state);

// GET and HEAD /api/file-sync/status: BlobEvents::status() as it is.
awaitable<void> get_file_sync_status(Exchange& x, ServerState& state);

}  // namespace crawler::agent
