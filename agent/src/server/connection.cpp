#include "connection.hpp"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>
#include <cstring>
#include <memory>
#include <span>
#include <limits>
#include <optional>
#include <vector>

#include "crawler/log.hpp"
#include "exchange.hpp"
#include "request_handler.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

namespace {

constexpr auto kUseAwaitable = asio::use_awaitable;
// After an answer that leaves a body unread, what is still sent is read and
// dropped for a moment before closing: closing with unread bytes makes the
// kernel send a reset, which can destroy the answer before the client
// reads it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = 1 << 20;
// A file is sent in pieces of this size.
constexpr std::size_t kFilePiece = 256 * 1024;

std::string endpoint_text(const asio::ip::tcp::socket& socket) {
  error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  std::string address = ep.address().to_string();
  if (ep.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(ep.port());
}

template <typename Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

template <typename Stream>
class Connection final : public Exchange,
                         public ConnectionHandle,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  template <typename... Args>
  Connection(std::shared_ptr<ServerState> state, std::string client, Args&&... stream_args)
      : state_(std::move(state)),
        config_(state_->config),
        stream_(std::forward<Args>(stream_args)...),
        client_(std::move(client)) {}

  static awaitable<void> run(std::shared_ptr<Connection> self) {
    co_await self->serve();
    if (self->refuse_) self->state_->forget_refusal();
    else self->state_->forget(self->id_);
  }

  // Served for real (not refused) under `id`.
  void admitted(std::uint64_t id) {
    id_ = id;
    refuse_ = false;
  }
  auto executor() { return stream_.get_executor(); }

  // --- ConnectionHandle ---
  void request_stop() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->idle_) beast::get_lowest_layer(self->stream_).cancel();
    });
  }
  void cut() override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this()] { beast::get_lowest_layer(self->stream_).close(); });
  }

  // --- Exchange ---
  const http::request_header<>& request() const override { return parser_->get(); }
  const std::string& client() const override { return client_; }
  std::optional<std::uint64_t> content_length() const override {
    auto n = parser_->content_length();
    return n ? std::optional<std::uint64_t>(*n) : std::nullopt;
  }
  bool body_read() const override { return parser_->is_done(); }
  void limit_body(std::uint64_t bytes) override { parser_->body_limit(bytes); }

  awaitable<BodyPiece> read_body(char* buffer, std::size_t capacity) override {
    BodyPiece piece;
    if (parser_->is_done()) {
      piece.done = true;
      co_return piece;
    }
    auto& body = parser_->get().body();
    body.data = buffer;
    body.size = capacity;
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.idle_timeout_ms));
    co_await http::async_read_some(stream_, buffer_, *parser_, asio::redirect_error(kUseAwaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    piece.size = capacity - body.size;
    piece.done = parser_->is_done();
    if (ec == http::error::body_limit) {
      piece.status = BodyPiece::too_large;
    } else if (ec) {
      piece.status = BodyPiece::broken;
      close_ = true;
      CRAWLER_LOG(warn) << "request body from " << client_ << " broken off: " << ec.message();
    }
    co_return piece;
  }

  awaitable<void> send_continue() override {
    http::response<http::empty_body> res{http::status::continue_, 11};
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.idle_timeout_ms));
    co_await http::async_write(stream_, res, asio::redirect_error(kUseAwaitable, ec));
    if (ec) close_ = true;
  }

  awaitable<void> respond(http::response<http::string_body> res) override {
    res.version(answer_version());
    log_refusal(res);
    keep_or_close(res);
    res.prepare_payload();
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.idle_timeout_ms));
    if (parser_ && parser_->get().method() == http::verb::head) {
      http::response<http::empty_body> head{res.base()};
      co_await http::async_write(stream_, head, asio::redirect_error(kUseAwaitable, ec));
    } else {
      co_await http::async_write(stream_, res, asio::redirect_error(kUseAwaitable, ec));
    }
    if (ec) close_ = true;
    responded_ = true;
  }

  awaitable<void> respond_parts(http::response_header<> header, std::vector<BodyPart> parts) override {
    http::response<http::empty_body> res{std::move(header)};
    res.version(answer_version());
    keep_or_close(res);
    responded_ = true;
    // The header goes out with the body's first bytes, in one write (one
    // TLS record for a small answer); its Content-Length is the caller's.
    http::fields::writer header_writer{res.base(), res.version(), res.result_int()};
    const std::string head = beast::buffers_to_string(header_writer.get());
    if (parser_->get().method() == http::verb::head) {
      if (!co_await send_body_bytes(head.data(), head.size())) co_return;
      co_return;
    }
    std::uint64_t total = head.size();
    for (const auto& p : parts) total += p.lead.size() + p.count;
    // Small parts share a write (and a TLS record): a bundle of small blobs
    // is not two writes per blob. The buffer is the connection's, kept
    // between answers and never zero-filled: every byte sent was written.
    const std::size_t piece_size = static_cast<std::size_t>(std::min<std::uint64_t>(total, kFilePiece));
    if (piece_capacity_ < piece_size) {
      piece_buffer_ = std::make_unique_for_overwrite<char[]>(piece_size);
      piece_capacity_ = piece_size;
    }
    std::span<char> piece(piece_buffer_.get(), piece_size);
    std::size_t filled = 0;
    for (std::size_t done = 0; done < head.size();) {
      std::size_t n = std::min(head.size() - done, piece.size() - filled);
      std::memcpy(piece.data() + filled, head.data() + done, n);
      filled += n;
      done += n;
      if (filled == piece.size()) {
        if (!co_await send_body_bytes(piece.data(), filled)) co_return;
        filled = 0;
      }
    }
    for (auto& p : parts) {
      for (std::size_t done = 0; done < p.lead.size();) {
        std::size_t n = std::min(p.lead.size() - done, piece.size() - filled);
        std::memcpy(piece.data() + filled, p.lead.data() + done, n);
        filled += n;
        done += n;
        if (filled == piece.size()) {
          if (!co_await send_body_bytes(piece.data(), filled)) co_return;
          filled = 0;
        }
      }
      while (p.count > 0) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(p.count, piece.size() - filled));
        ssize_t n = ::pread(p.fd, piece.data() + filled, want, static_cast<off_t>(p.offset));
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          // The header promised bytes that cannot come: only closing tells.
          CRAWLER_LOG(error) << "reading a blob for " << client_ << " failed at byte " << p.offset << ": "
                             << (n < 0 ? std::strerror(errno) : "file shrank");
          close_ = true;
          co_return;
        }
        filled += static_cast<std::size_t>(n);
        p.offset += static_cast<std::uint64_t>(n);
        p.count -= static_cast<std::uint64_t>(n);
        if (filled == piece.size()) {
          if (!co_await send_body_bytes(piece.data(), filled)) co_return;
          filled = 0;
        }
      }
    }
    if (filled > 0) co_await send_body_bytes(piece.data(), filled);
  }

  void abandon() override {
    close_ = true;
    responded_ = true;
  }

 private:
  // The buffer file answers are sent from, kept for the connection's
  // next answers (allocated at the size of the largest so far, at most
  // kFilePiece).
  std::unique_ptr<char[]> piece_buffer_;
  std::size_t piece_capacity_ = 0;

  // Writes `n` bytes of an answer; false (the connection then closes)
  // when the client is gone or stalls past the idle timeout.
  awaitable<bool> send_body_bytes(const char* data, std::size_t n) {
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.idle_timeout_ms));
    co_await asio::async_write(stream_, asio::buffer(data, n), asio::redirect_error(kUseAwaitable, ec));
    if (ec) close_ = true;
    co_return !ec;
  }

  awaitable<void> serve() {
    auto& lowest = beast::get_lowest_layer(stream_);
    error_code ec;
    if constexpr (kIsTls<Stream>) {
      lowest.expires_after(std::chrono::milliseconds(config_.header_timeout_ms));
      co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                       asio::redirect_error(kUseAwaitable, ec));
      if (ec) {
        CRAWLER_LOG(debug) << "TLS handshake with " << client_ << " failed: " << ec.message();
        co_return;
      }
    }
    for (bool first = true;; first = false) {
      if (state_->stopping) break;
      if (!first && buffer_.size() == 0 && !co_await wait_for_request()) break;
      if (!co_await read_header()) break;
      co_await answer();
      if (close_ || refuse_) break;
    }
    co_await close_gracefully();
  }

  // Between requests: the next one's first byte, within keep_alive_timeout.
  awaitable<bool> wait_for_request() {
    error_code ec;
    idle_ = true;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.keep_alive_timeout_ms));
    std::size_t n = co_await stream_.async_read_some(buffer_.prepare(4096),
                                                     asio::redirect_error(kUseAwaitable, ec));
    idle_ = false;
    if (ec) co_return false;
    buffer_.commit(n);
    co_return !state_->stopping;
  }

  // The whole header block, within header_timeout: a slow client cannot
  // hold a connection by trickling header bytes.
  awaitable<bool> read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
    // Each route sets the limit it needs before reading a body; a
    // Content-Length alone must not fail the header. (Not boost::none:
    // Beast 1.74 compares a Content-Length with an empty optional as
    // "over the limit".)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    close_ = false;
    responded_ = false;
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(config_.header_timeout_ms));
    co_await http::async_read_header(stream_, buffer_, *parser_, asio::redirect_error(kUseAwaitable, ec));
    if (!ec) co_return true;
    if (ec == beast::error::timeout) {
      CRAWLER_LOG(warn) << "closed connection from " << client_ << ": no complete request header within "
                        << config_.header_timeout_ms << " ms";
    } else if (ec == http::error::header_limit) {
      co_await respond_without_request(http::status::request_header_fields_too_large, "header_too_large",
                                       "request header larger than " +
                                           std::to_string(config_.max_header_bytes) + " bytes");
    } else if (ec.category() == make_error_code(http::error::end_of_stream).category() && ec != http::error::end_of_stream &&
               ec != http::error::partial_message) {
      co_await respond_without_request(http::status::bad_request, "bad_request",
                                       "malformed request: " + ec.message());
    }
    co_return false;
  }

  awaitable<void> respond_without_request(http::status status, const std::string& code,
                                          const std::string& message) {
    close_ = true;
    parser_.reset();
    co_await respond(error_response(status, code, message));
  }

  // Whether this request's client may be served: within allowed_clients
  // (otherwise 403, and the connection closes) and under its rate limit
  // (otherwise 429 with Retry-After). Checked per request, before any
  // route: a kept-alive connection is limited like many.
  awaitable<bool> admitted_client() {
    if (!state_->networks && !state_->limiter) co_return true;
    error_code ec;
    auto address = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec).address();
    if (ec) co_return true;  // gone already: the answer will fail anyway
    if (state_->networks && !state_->networks->allows(address)) {
      close_ = true;
      co_await respond(error_response(http::status::forbidden, "client_not_allowed",
                                      "this address is not in allowed_clients"));
      co_return false;
    }
    if (state_->limiter) {
      auto decision = state_->limiter->take(address, std::chrono::steady_clock::now());
      if (!decision.allowed) {
        auto res = error_response(http::status::too_many_requests, "rate_limited",
                                  "over rate_limit_per_second for this client; retry later");
        res.set(http::field::retry_after, std::to_string(retry_after_seconds(decision)));
        co_await respond(std::move(res));
        co_return false;
      }
    }
    co_return true;
  }

  awaitable<void> answer() {
    if (refuse_) {
      co_await respond(error_response(http::status::service_unavailable, "too_many_connections",
                                      "the agent serves " + std::to_string(config_.max_connections) +
                                          " connections already; retry later"));
      co_return;
    }
    if (!co_await admitted_client()) co_return;
    bool failed = false;
    std::string what;
    try {
      co_await handle_request(*this, *state_);
    } catch (const std::exception& e) {
      failed = true;
      what = e.what();
    }
    if (failed && !responded_) {
      CRAWLER_LOG(error) << "request from " << client_ << " failed: " << what;
      co_await respond(error_response(http::status::internal_server_error, "internal_error", what));
    } else if (!responded_) {
      CRAWLER_LOG(error) << "request from " << client_ << " was not answered";
      co_await respond(error_response(http::status::internal_server_error, "internal_error",
                                      "the request was not answered"));
    }
  }

  // The request's HTTP version (1.1 when there is none): an HTTP/1.0
  // client keeps its connection only when the answer says
  // "Connection: keep-alive", which Beast writes for a 1.0 answer alone.
  unsigned answer_version() const { return parser_ && parser_->get().version() == 10 ? 10 : 11; }

  template <typename Message>
  void keep_or_close(Message& res) {
    // Unread body bytes would be taken for the next request: close instead.
    if (!parser_ || !parser_->is_done() || !parser_->get().keep_alive() || state_->stopping || refuse_)
      close_ = true;
    res.keep_alive(!close_);
  }

  void log_refusal(const http::response<http::string_body>& res) {
    unsigned status = res.result_int();
    if (status < 400) return;
    std::string code, message;
    try {
      auto body = nlohmann::json::parse(res.body());
      code = body.value("error", "");
      message = body.value("message", "");
    } catch (const std::exception&) {
    }
    std::string what = parser_ ? std::string(parser_->get().method_string()) + " " +
                                     std::string(parser_->get().target().substr(0, 200))
                               : std::string("request");
    // A status answer without an error code (a load-balancer check saying
    // 503: not the primary) is no refusal; checks come every few seconds.
    if (status == 404 || code.empty()) {
      CRAWLER_LOG(debug) << "answered " << status << " to " << what << " from " << client_;
    } else {
      CRAWLER_LOG(warn) << "refused " << what << " from " << client_ << ": " << status << " " << code
                        << (message.empty() ? "" : ": ") << message;
    }
  }

  awaitable<void> close_gracefully() {
    auto& lowest = beast::get_lowest_layer(stream_);
    error_code ec;
    lowest.expires_after(kLingerTime);
    if constexpr (kIsTls<Stream>) {
      co_await stream_.async_shutdown(asio::redirect_error(kUseAwaitable, ec));
    } else {
      lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      if (!ec && parser_ && !parser_->is_done()) {
        std::vector<char> sink(16384);
        for (std::size_t dropped = 0; dropped < kLingerBytes;) {
          std::size_t n = co_await lowest.async_read_some(asio::buffer(sink),
                                                          asio::redirect_error(kUseAwaitable, ec));
          if (ec) break;
          dropped += n;
        }
      }
    }
    lowest.close();
  }

  std::shared_ptr<ServerState> state_;
  const AgentConfig& config_;
  Stream stream_;
  std::string client_;
  bool refuse_ = true;  // until admitted
  std::uint64_t id_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  bool idle_ = false;
  bool close_ = false;
  bool responded_ = false;
};

template <typename Stream, typename... Args>
void start(std::shared_ptr<ServerState> state, std::string client, Args&&... stream_args) {
  auto c = std::make_shared<Connection<Stream>>(state, client, std::forward<Args>(stream_args)...);
  std::uint64_t id = 0;
  if (state->admit(&id, c)) {
    c->admitted(id);
  } else if (state->admit_refusal()) {
    CRAWLER_LOG(warn) << "refusing connection from " << client << ": connection limit ("
                      << state->config.max_connections << ") reached; answering 503";
  } else {
    CRAWLER_LOG(warn) << "refused connection from " << client << ": connection limit ("
                      << state->config.max_connections << ") reached twice over; closed unanswered";
    return;
  }
  asio::co_spawn(c->executor(), Connection<Stream>::run(c), asio::detached);
}

}  // namespace

void serve_connection(std::shared_ptr<ServerState> state, asio::ip::tcp::socket socket) {
  std::string client = endpoint_text(socket);
  if (state->tls)
    start<beast::ssl_stream<beast::tcp_stream>>(state, std::move(client), std::move(socket), *state->tls);
  else
    start<beast::tcp_stream>(state, std::move(client), std::move(socket));
}

}  // namespace crawler::agent
