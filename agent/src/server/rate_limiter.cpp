#include "crawler/agent/server/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace crawler::agent {
namespace {

namespace ip = boost::asio::ip;

// Refill arithmetic in double can land a hair below a whole token; a
// client that waited exactly the retry_after it was given must not be
// refused for that.
constexpr double kWholeToken = 1.0 - 1e-9;

}  // namespace

RateLimiter::RateLimiter(double requests_per_second, double burst, std::size_t max_clients)
    : rate_(requests_per_second), burst_(burst), max_clients_(max_clients) {
  if (!std::isfinite(rate_) || rate_ < 0)
    throw std::invalid_argument("rate limit: requests per second must be 0 (no limit) or more");
  if (rate_ > 0 && (!std::isfinite(burst_) || burst_ < 1))
    throw std::invalid_argument("rate limit: the burst must be at least 1 request");
  if (max_clients_ == 0) throw std::invalid_argument("rate limit: max_clients must be at least 1");
}

RateLimiter::Key RateLimiter::key_of(const ip::address& client) {
  if (client.is_v4()) return ip::make_address_v6(ip::v4_mapped, client.to_v4()).to_bytes();
  Key key = client.to_v6().to_bytes();
  if (client.to_v6().is_v4_mapped()) return key;
  // One IPv6 host is normally given a whole /64 and may take a fresh
  // address from it for every request (privacy addresses); keyed by address
  // it would escape its limit and, with 2^64 addresses, flush every other
  // client's bucket. A /64 is the smallest block a host cannot leave.
  std::fill(key.begin() + 8, key.end(), 0);
  return key;
}

double RateLimiter::refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const {
  if (now <= bucket.last) return bucket.tokens;
  double elapsed = std::chrono::duration<double>(now - bucket.last).count();
  return std::min(burst_, bucket.tokens + elapsed * rate_);
}

void RateLimiter::make_room(std::chrono::steady_clock::time_point now) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (refilled(*it, now) >= burst_) {
      buckets_.erase(it->key);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
  const std::size_t keep = max_clients_ - std::max<std::size_t>(1, max_clients_ / 8);
  while (buckets_.size() > keep) {
    buckets_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

RateLimiter::Decision RateLimiter::take(const ip::address& client, std::chrono::steady_clock::time_point now) {
  if (rate_ == 0) return {true, std::chrono::milliseconds(0)};
  const Key key = key_of(client);

  std::lock_guard<std::mutex> lock(mutex_);
  Bucket* bucket = nullptr;
  auto found = buckets_.find(key);
  if (found == buckets_.end()) {
    if (buckets_.size() >= max_clients_) make_room(now);
    lru_.push_front(Bucket{key, burst_, now});
    buckets_.emplace(key, lru_.begin());
    bucket = &lru_.front();
  } else {
    lru_.splice(lru_.begin(), lru_, found->second);
    bucket = &*found->second;
    bucket->tokens = refilled(*bucket, now);
    bucket->last = std::max(bucket->last, now);
  }

  if (bucket->tokens >= kWholeToken) {
    bucket->tokens = std::max(0.0, bucket->tokens - 1);
    return {true, std::chrono::milliseconds(0)};
  }
  // A refused request takes nothing, so the wait is for the one missing token.
  double wait_ms = std::ceil((1 - bucket->tokens) / rate_ * 1000);
  auto retry_after = wait_ms >= static_cast<double>(kMaxRetryAfter.count())
                         ? kMaxRetryAfter
                         : std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(wait_ms)));
  return {false, retry_after};
}

std::size_t RateLimiter::clients() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buckets_.size();
}

int retry_after_seconds(RateLimiter::Decision decision) {
  auto ms = std::min(decision.retry_after, RateLimiter::kMaxRetryAfter).count();
  return static_cast<int>(std::max<long long>(1, (ms + 999) / 1000));
}

}  // namespace crawler::agent
