#include "crawler/agent/pacer.hpp"

namespace crawler::agent {

Pacer::Pacer(std::uint64_t bytes_per_second, std::chrono::nanoseconds burst)
    : ns_per_byte_(1e9 / static_cast<double>(bytes_per_second ? bytes_per_second : 1)), burst_(burst) {}

std::chrono::nanoseconds Pacer::account(std::uint64_t n, Clock::time_point now) {
  // A credit older than the burst is forgotten: reading resumes from `now`
  // minus at most the burst.
  if (!started_ || due_ < now - burst_) due_ = now - (started_ ? burst_ : std::chrono::nanoseconds(0));
  started_ = true;
  due_ += std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(n) * ns_per_byte_));
  return due_ > now ? due_ - now : std::chrono::nanoseconds(0);
}

}  // namespace crawler::agent
