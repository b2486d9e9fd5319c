// One request and its answer, as the routes see it: the connection (plain
// or TLS) behind it is hidden, so the routes are written once.
#pragma once
#include <utility>  // asio/awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crawler::agent {

namespace http = boost::beast::http;
template <typename T>
using awaitable = boost::asio::awaitable<T>;

// Beast 1.74 speaks boost::string_view; the parsers take std's.
inline std::string_view std_view(boost::beast::string_view s) { return {s.data(), s.size()}; }

// What one read of the request body gave.
struct BodyPiece {
  enum Status {
    data,       // `size` bytes (maybe 0); more may follow unless `done`
    too_large,  // the body passed the limit set by limit_body()
    broken,     // the client went away, stalled past the idle timeout or sent garbage
  };
  Status status = data;
  std::size_t size = 0;
  bool done = false;  // the whole body has been read
};

// A piece of an answer's body: the `lead` bytes, then `count` bytes of the
// open file `fd` from `offset` (none when count is 0).
struct BodyPart {
  std::string lead;
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
};

class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const http::request_header<>& request() const = 0;
  // "address:port" of the client, for the log.
  virtual const std::string& client() const = 0;
  // The Content-Length sent, if any (a chunked body has none).
  virtual std::optional<std::uint64_t> content_length() const = 0;
  // Whether the whole request body has been read (true at once when there is none).
  virtual bool body_read() const = 0;

  // Refuses a body longer than `bytes` (too_large); call before reading it.
  virtual void limit_body(std::uint64_t bytes) = 0;
  // Reads what has arrived of the body into [buffer, buffer + capacity),
  // waiting at most the idle timeout for a byte.
  virtual awaitable<BodyPiece> read_body(char* buffer, std::size_t capacity) = 0;
  // "100 Continue": the client that asked for it may send the body now.
  virtual awaitable<void> send_continue() = 0;

  // Sends the answer (its body left out for HEAD). The connection is kept
  // for the next request only if the client wants it and the request's
  // body was read to the end; otherwise it is closed after the answer,
  // without reading the rest. An answer of 400 or more is logged with the
  // client's address and the body's "error" and "message".
  virtual awaitable<void> respond(http::response<http::string_body> response) = 0;
  // Sends `header` (its Content-Length set by the caller: the sum of the
  // parts), then the parts in order, gathered into writes of up to 256 KiB
  // (HEAD: the header only). A file that ends before its count closes the
  // connection: the length promised cannot be kept.
  virtual awaitable<void> respond_parts(http::response_header<> header, std::vector<BodyPart> parts) = 0;
  // respond_parts() with one part: `count` bytes of `fd` from `offset`.
  awaitable<void> respond_file(http::response_header<> header, int fd, std::uint64_t offset, std::uint64_t count) {
    std::vector<BodyPart> parts(1);
    parts[0].fd = fd;
    parts[0].offset = offset;
    parts[0].count = count;
    return respond_parts(std::move(header), std::move(parts));
  }
  // Ends the connection without an answer (a client that cut its upload).
  virtual void abandon() = 0;
};

}  // namespace crawler::agent
