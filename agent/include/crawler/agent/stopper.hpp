// A stop flag that sleeping threads wake up on: every loop of file sync
// sleeps through it, so stop() ends a poll interval, a back-off or a scrub's
// pause at once instead of after it.
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace crawler::agent {

class Stopper {
 public:
  // Sleeps for `d` or until stop(); false when stopped (the caller ends).
  bool sleep_for(std::chrono::nanoseconds d) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait_for(lock, d, [this] { return stopped_; });
    return !stopped_;
  }
  // Wakes every sleeper early without stopping it (new work arrived).
  void wake() { cv_.notify_all(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(m_);
    return stopped_;
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace crawler::agent
