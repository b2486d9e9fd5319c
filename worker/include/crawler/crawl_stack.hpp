// What the crawl and run commands both drive: the event loop, the database
// connections on it, the write API over them, the blob uploader (with
// --storage-agent) and the crawler over that, built in that order from the
// worker's options.
#pragma once
#include <boost/asio/io_context.hpp>
#include <memory>

#include "crawler/blob_uploader.hpp"
#include "crawler/crawler.hpp"
#include "crawler/database.hpp"
#include "crawler/options.hpp"
#include "crawler/store.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

struct CrawlStack {
  // `store` is the image store, or with --storage-agent the spool.
  CrawlStack(const WorkerOptions& w, FileStore& store)
      : db(w.db, io, w.db_connections),
        api(db, w.worker_id, w.lease_seconds),
        uploader(w.storage_agent ? std::make_unique<BlobUploader>(
                                       io, api,
                                       UploaderSettings{w.agent_token, w.agent_ca_file, w.connect_timeout_ms,
                                                        w.low_speed_bytes, w.low_speed_seconds},
                                       [this] { return db.reconnects(); })
                                 : nullptr),
        crawler(io, w, api, store, uploader.get()) {}

  boost::asio::io_context io;
  Database db;
  WriteApi api;
  std::unique_ptr<BlobUploader> uploader;
  Crawler crawler;
};

}  // namespace crawler
