// What the listener and every connection share: the settings, the store
// and events, the TLS context, and the set of live connections (to bound
// them and to stop them).
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "crawler/agent/blob_events.hpp"
#include "crawler/agent/config.hpp"
#include "crawler/agent/node_sql.hpp"
#include "crawler/agent/server/api_tokens.hpp"
#include "crawler/agent/server/bearer_token.hpp"
#include "crawler/agent/server/client_networks.hpp"
#include "crawler/agent/server/rate_limiter.hpp"
#include "crawler/agent/server/server.hpp"
#include "crawler/store.hpp"
#include "crawler/store_sync.hpp"
#include "lag_history.hpp"

namespace crawler::agent {

// A live connection, as the server sees it to stop it.
class ConnectionHandle {
 public:
  virtual ~ConnectionHandle() = default;
  // Closes the connection if it waits for a request; one in the middle of
  // a request closes after answering it (it sees State::stopping).
  virtual void request_stop() = 0;
  // Cuts the connection now, whatever it does.
  virtual void cut() = 0;
};

struct ServerState {
  ServerState(const AgentConfig& c, FileStore& s, StoreSync& d, BlobEvents& e, BearerToken& t,
              boost::asio::io_context& i, ServerPort p, ApiServices a)
      : config(c), store(s), durability(d), events(e), token(t), io(i), port(p), sql(a.sql),
        api_tokens(a.api_tokens), thumbnails(a.thumbnails) {}

  const AgentConfig config;
  FileStore& store;
  StoreSync& durability;  // an upload's bytes, then its name, on disk before the answer
  BlobEvents& events;
  BearerToken& token;
  boost::asio::io_context& io;
  const ServerPort port;
  NodeSql* const sql;                 // the JSON routes' SQL calls; null: none
  const ApiTokens* const api_tokens;  // scoped tokens (api_tokens_file); null: none
  Thumbnailer* const thumbnails;      // null: no thumbnails
  std::optional<boost::asio::ssl::context> tls;
  std::optional<ClientNetworks> networks;  // allowed_clients, set by start(); unset: all
  std::unique_ptr<RateLimiter> limiter;    // rate_limit_per_second > 0, set by start()
  std::atomic<bool> stopping{false};
  // The application port's lag samples of the last hour (GET /api/lag-history),
  // fed by run_lag_sampler() when the port has a database.
  LagHistory lag_history;

  // Registers a connection to be served; false when max_connections are
  // served already (the caller refuses it).
  bool admit(std::uint64_t* id, std::weak_ptr<ConnectionHandle> connection);
  void forget(std::uint64_t id);
  // Refused connections being answered 503; bounded too, so that a flood
  // costs no more than max_connections more.
  bool admit_refusal();
  void forget_refusal();
  std::size_t live() const;
  // Every live connection, to stop or cut.
  std::vector<std::shared_ptr<ConnectionHandle>> all() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::weak_ptr<ConnectionHandle>> connections_;
  std::uint64_t next_id_ = 1;
  std::size_t refusing_ = 0;
};

}  // namespace crawler::agent
