// What the crawl and run commands both drive: the event loop, the database
// connections on it, the write API over them and the crawler over that,
// built in that order from the worker's options.
#pragma once
#include <boost/asio/io_context.hpp>

#include "crawler/crawler.hpp"
#include "crawler/database.hpp"
#include "crawler/options.hpp"
#include "crawler/store.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

struct CrawlStack {
  CrawlStack(const WorkerOptions& w, FileStore& store)
      : db(w.db, io, w.db_connections), api(db, w.worker_id, w.lease_seconds), crawler(io, w, api, store) {}

  boost::asio::io_context io;
  Database db;
  WriteApi api;
  Crawler crawler;
};

}  // namespace crawler
