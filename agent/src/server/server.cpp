#include "crawler/agent/server/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include "connection.hpp"
#include "crawler/agent/server/listen_address.hpp"
#include "crawler/agent/server/tls.hpp"
#include "crawler/log.hpp"
#include "lag_history.hpp"

namespace crawler::agent {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

bool ServerState::admit(std::uint64_t* id, std::weak_ptr<ConnectionHandle> connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connections_.size() >= static_cast<std::size_t>(config.max_connections)) return false;
  *id = next_id_++;
  connections_.emplace(*id, std::move(connection));
  return true;
}

void ServerState::forget(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.erase(id);
}

bool ServerState::admit_refusal() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (refusing_ >= static_cast<std::size_t>(config.max_connections)) return false;
  ++refusing_;
  return true;
}

void ServerState::forget_refusal() {
  std::lock_guard<std::mutex> lock(mutex_);
  --refusing_;
}

std::size_t ServerState::live() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return connections_.size();
}

std::vector<std::shared_ptr<ConnectionHandle>> ServerState::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<ConnectionHandle>> out;
  for (const auto& [id, weak] : connections_)
    if (auto c = weak.lock()) out.push_back(std::move(c));
  return out;
}

struct Server::State {
  std::shared_ptr<ServerState> shared;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  // The lag sampler's timer (application port with a database only), on
  // the acceptor's strand, where stop() cancels it.
  std::shared_ptr<asio::steady_timer> lag_timer;

  State(std::shared_ptr<ServerState> s) : shared(std::move(s)), acceptor(asio::make_strand(shared->io)) {}

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self) {
    for (;;) {
      error_code ec;
      // Each connection gets its own strand: its handlers never run at once,
      // while connections run in parallel on the loop's threads.
      tcp::socket socket = co_await self->acceptor.async_accept(
          asio::make_strand(self->shared->io), asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;
      if (ec) {
        // Out of file descriptors, usually: wait instead of spinning.
        CRAWLER_LOG(error) << "accept failed: " << ec.message();
        asio::steady_timer pause(self->acceptor.get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      // A response is written as header and body (or file pieces): with
      // Nagle's algorithm the second small write waits for the client's
      // delayed ACK, about 40 ms per small blob.
      socket.set_option(tcp::no_delay(true), ec);
      serve_connection(self->shared, std::move(socket));
    }
  }

  // Polls until no connection is left or the deadline passed; connections
  // unregister themselves as they end, so there is nothing to wait on.
  static asio::awaitable<void> drain(std::shared_ptr<State> self, std::chrono::steady_clock::time_point deadline,
                                     std::function<void()> done) {
    asio::steady_timer timer(self->acceptor.get_executor());
    while (self->shared->live() > 0 && std::chrono::steady_clock::now() < deadline) {
      timer.expires_after(std::chrono::milliseconds(20));
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    auto left = self->shared->all();
    if (!left.empty())
      CRAWLER_LOG(warn) << "stop: cutting " << left.size() << " connection(s) still busy";
    for (auto& c : left) c->cut();
    if (done) done();
  }
};

Server::Server(const AgentConfig& config, FileStore& store, StoreSync& durability, BlobEvents& events,
               BearerToken& token, asio::io_context& io, ServerPort port, ApiServices api)
    : state_(std::make_shared<State>(
          std::make_shared<ServerState>(config, store, durability, events, token, io, port, api))) {}

Server::~Server() {
  error_code ec;
  state_->acceptor.close(ec);
}

void Server::start() {
  ServerState& s = *state_->shared;
  if (!s.config.plain_http) s.tls.emplace(make_server_tls_context(s.config.tls_cert_file, s.config.tls_key_file));
  std::string error;
  auto networks = ClientNetworks::parse(s.config.allowed_clients, &error);
  if (!networks) throw std::runtime_error("allowed_clients: " + error);
  if (!networks->allows_all()) s.networks = std::move(*networks);
  if (s.config.rate_limit_per_second > 0)
    s.limiter = std::make_unique<RateLimiter>(s.config.rate_limit_per_second, s.config.rate_limit_burst);
  const bool ha = s.port == ServerPort::ha;
  const std::string& listen = ha ? s.config.ha_listen : s.config.listen;
  auto endpoint = parse_listen_address(listen, &error);
  if (!endpoint) throw std::runtime_error(error);
  tcp::acceptor& a = state_->acceptor;
  error_code ec;
  a.open(endpoint->protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint->address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
  if (!ec) a.bind(*endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + listen + ": " + ec.message());
  state_->bound = a.local_endpoint();
  std::string address = state_->bound.address().to_string();
  if (state_->bound.address().is_v6()) address = "[" + address + "]";
  CRAWLER_LOG(info) << "listening on " << address << ":" << state_->bound.port()
                    << (s.tls ? " (TLS" : " (plain HTTP") << (ha ? ", HA port)" : ")");
  asio::co_spawn(a.get_executor(), State::accept_loop(state_), asio::detached);
  // GET /api/lag-history draws on samples the database does not keep.
  if (!ha && s.sql) {
    state_->lag_timer = std::make_shared<asio::steady_timer>(a.get_executor());
    asio::co_spawn(a.get_executor(), run_lag_sampler(state_->shared, state_->lag_timer), asio::detached);
  }
}

tcp::endpoint Server::local_endpoint() const { return state_->bound; }

std::size_t Server::connections() const { return state_->shared->live(); }

void Server::stop(std::chrono::milliseconds wait, std::function<void()> done) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  asio::post(state_->acceptor.get_executor(), [self = state_, deadline, done = std::move(done)]() mutable {
    self->shared->stopping = true;
    error_code ec;
    self->acceptor.close(ec);
    if (self->lag_timer) self->lag_timer->cancel();
    for (auto& c : self->shared->all()) c->request_stop();
    asio::co_spawn(self->acceptor.get_executor(), State::drain(self, deadline, std::move(done)), asio::detached);
  });
}

}  // namespace crawler::agent
