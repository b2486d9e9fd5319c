#include "crawler/store_sync.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>

namespace crawler {

StoreSync::StoreSync(const std::filesystem::path& root) {
  fd_ = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("cannot open " + root.string() + ": " + std::strerror(errno));
  thread_ = std::thread([this] { loop(); });
}

StoreSync::~StoreSync() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  ::close(fd_);
}

void StoreSync::request(Done done) {
  {
    std::lock_guard<std::mutex> lock(m_);
    waiting_.push_back(std::move(done));
  }
  cv_.notify_one();
}

bool StoreSync::wait(std::string* error) {
  std::promise<std::pair<bool, std::string>> promise;
  auto result = promise.get_future();
  request([&promise](bool ok, std::string why) { promise.set_value({ok, std::move(why)}); });
  auto [ok, why] = result.get();
  if (!ok && error) *error = std::move(why);
  return ok;
}

std::uint64_t StoreSync::syncs() const {
  std::lock_guard<std::mutex> lock(m_);
  return syncs_;
}

void StoreSync::loop() {
  std::unique_lock<std::mutex> lock(m_);
  for (;;) {
    cv_.wait(lock, [this] { return !waiting_.empty() || stopping_; });
    if (waiting_.empty()) return;  // stopping, nothing left to serve
    // Whoever asks from now on waits for the next syncfs: this one may have
    // begun before their writes.
    std::vector<Done> batch;
    batch.swap(waiting_);
    lock.unlock();
    bool ok = ::syncfs(fd_) == 0;
    std::string error = ok ? std::string() : std::string("syncfs of the store: ") + std::strerror(errno);
    // Counted before anyone is answered: a caller that asks syncs() after
    // its wait() returned must see its own sync.
    lock.lock();
    ++syncs_;
    lock.unlock();
    for (auto& done : batch) done(ok, error);
    lock.lock();
  }
}

}  // namespace crawler
