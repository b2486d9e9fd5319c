// A port of the node agent: an HTTP/1.1 server (Boost.Beast, TLS or plain).
// The application port serves the blob routes: it stores bytes in the
// FileStore and tells BlobEvents about them. The HA port serves the
// load-balancer checks and the cluster's status, each one SQL call through
// NodeSql. Neither holds other state.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "crawler/agent/blob_events.hpp"
#include "crawler/agent/config.hpp"

namespace crawler {
class FileStore;
class StoreSync;
}

namespace crawler::agent {

class ApiTokens;
class BearerToken;
class NodeSql;
class Thumbnailer;

// What the JSON API routes use besides the store. Each must outlive the
// server; null: none (a route that needs it answers 503).
struct ApiServices {
  NodeSql* sql = nullptr;                 // the node's database, one call per route
  const ApiTokens* api_tokens = nullptr;  // the scoped tokens accepted
  Thumbnailer* thumbnails = nullptr;      // the images' thumbnails (application port)
};

// Which routes a Server serves, and on which setting's address.
enum class ServerPort {
  application,  // AgentConfig::listen: the blob routes, crawls, images
  ha            // AgentConfig::ha_listen: /primary, /replica, /read-only, /health, /api/status, /api/health
};

class Server {
 public:
  // Nothing is bound until start(). `store`, `durability` (the store's
  // group syncs), `events`, `token` and `io` must outlive the server; `io`
  // may be run by several threads (each connection keeps to its own strand).
  // `api` serves the JSON routes of either port.
  Server(const AgentConfig& config, FileStore& store, StoreSync& durability, BlobEvents& events,
         BearerToken& token, boost::asio::io_context& io, ServerPort port = ServerPort::application,
         ApiServices api = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Builds the TLS context (unless plain_http), binds the port's address
  // (`listen` or `ha_listen`) and starts
  // accepting on the loop; logs "listening on ADDRESS:PORT" with the port
  // actually bound. Throws std::runtime_error saying why when the address
  // cannot be bound or the certificate or key cannot be used.
  void start();

  // The bound address (its port is the real one when `listen` said 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Stops accepting; each connection closes once its request in flight is
  // answered (an idle one at once). `done` runs on the loop when none is
  // left, or after `wait` with the rest cut off. Call from any thread.
  void stop(std::chrono::milliseconds wait, std::function<void()> done);

  // Connections being served now (refused ones excluded).
  std::size_t connections() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace crawler::agent
