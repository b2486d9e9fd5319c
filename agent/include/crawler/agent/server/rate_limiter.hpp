// A per-client request rate limit: one token bucket per client, refilled
// at a steady rate up to a burst. Memory is bounded however many distinct
// addresses send requests. Safe to call from any thread.
#pragma once
#include <array>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <mutex>

namespace crawler::agent {

class RateLimiter {
 public:
  struct Decision {
    bool allowed;
    // When refused: how long until the client's next token (rounded up to
    // a millisecond, at most kMaxRetryAfter). Zero when allowed.
    std::chrono::milliseconds retry_after;
  };

  // The longest retry_after reported, so a tiny rate cannot overflow the
  // Retry-After header; a client that comes back early is refused again.
  static constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::hours(24);

  // `requests_per_second` tokens are added to each client's bucket per
  // second, up to `burst`; a new client starts with a full bucket, so it
  // may send `burst` requests at once. A rate of 0 turns the limit off.
  // At most `max_clients` buckets are kept (see take()). Throws
  // std::invalid_argument for a negative or non-finite rate, a burst below
  // 1 or non-finite while the rate is not 0, or max_clients 0.
  RateLimiter(double requests_per_second, double burst, std::size_t max_clients = 10000);

  // Takes one token from `client`'s bucket at time `now` (the caller passes
  // steady_clock::now(); a time earlier than the bucket's last use counts
  // as no time passed). Always allowed when the rate is 0.
  // A client is its IPv4 address (an IPv4-mapped IPv6 address counts as
  // the IPv4 one), or the /64 network of its IPv6 address.
  // When a new client arrives and max_clients buckets are held, buckets
  // that have refilled to the burst are dropped first (forgetting them
  // changes nothing); if that frees fewer than 1/8 of the buckets, the
  // least recently used are dropped until 1/8 are free, so each full scan
  // pays for many arrivals. A dropped client starts again with a full
  // bucket: under a flood of distinct clients the limit loosens rather
  // than memory growing.
  Decision take(const boost::asio::ip::address& client, std::chrono::steady_clock::time_point now);

  // How many client buckets are held now (at most max_clients).
  std::size_t clients() const;

 private:
  // 16 bytes: an IPv4 address in its IPv4-mapped IPv6 form, or an IPv6 /64
  // with the host half zeroed. The two cannot collide: a mapped address
  // has ff ff in bytes 10-11.
  using Key = std::array<unsigned char, 16>;
  struct Bucket {
    Key key;
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  using Lru = std::list<Bucket>;  // most recently used first

  static Key key_of(const boost::asio::ip::address& client);
  double refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const;
  void make_room(std::chrono::steady_clock::time_point now);

  const double rate_;
  const double burst_;
  const std::size_t max_clients_;

  mutable std::mutex mutex_;
  Lru lru_;
  // Ordered, not hashed: clients choose their addresses, and a tree's
  // lookup cost cannot be driven up by addresses chosen to collide.
  std::map<Key, Lru::iterator> buckets_;
};

// Decision::retry_after in whole seconds, rounded up and at least 1, as
// the Retry-After header of a 429 response carries it.
int retry_after_seconds(RateLimiter::Decision decision);

}  // namespace crawler::agent
