// Holds a byte rate: the scrub re-hashes stored blobs at no more than
// scrub_bytes_per_second, so that it never takes the disk from the crawl.
// Pure arithmetic on the clock it is given, so that it is unit-tested.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>

namespace crawler::agent {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;
  // `bytes_per_second` > 0. At most `burst` of unused time is saved up: a
  // pause between rounds does not let the next round go at full speed.
  explicit Pacer(std::uint64_t bytes_per_second,
                 std::chrono::nanoseconds burst = std::chrono::seconds(1));
  // `n` more bytes were read at `now`: how long to sleep before reading on
  // (zero when within the rate).
  std::chrono::nanoseconds account(std::uint64_t n, Clock::time_point now);

 private:
  double ns_per_byte_;
  std::chrono::nanoseconds burst_;
  bool started_ = false;
  Clock::time_point due_;  // when the bytes read so far are paid for
};

// One Pacer shared by threads: the follower's transfers together hold
// sync_bandwidth_bytes. (curl's own per-transfer limit does not hold it: it
// averages over one transfer and lets a small blob through at full speed.)
class SharedPacer {
 public:
  explicit SharedPacer(std::uint64_t bytes_per_second) : pacer_(bytes_per_second) {}
  std::chrono::nanoseconds account(std::uint64_t n) {
    std::lock_guard<std::mutex> lock(m_);
    return pacer_.account(n, Pacer::Clock::now());
  }

 private:
  std::mutex m_;
  Pacer pacer_;
};

}  // namespace crawler::agent
