#include "crawler/curl_multi.hpp"

#include <poll.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

namespace crawler {
namespace asio = boost::asio;

// Asio's view of one of curl's sockets. It never owns the descriptor.
struct CurlMulti::Watch {
  explicit Watch(asio::io_context& io, curl_socket_t s) : sd(io) { sd.assign(s); }
  ~Watch() { let_go(); }
  // Stops waiting and deregisters the descriptor from the reactor at once:
  // a pending handler may keep this object alive a little longer, and curl
  // may reuse the descriptor number for its next socket meanwhile. Asio
  // never closes it; curl does.
  void let_go() {
    if (!sd.is_open()) return;
    boost::system::error_code ec;
    sd.cancel(ec);
    sd.release();
  }
  asio::posix::stream_descriptor sd;
  int want = 0;  // CURL_POLL_IN / OUT / INOUT
  bool reading = false, writing = false;
};

CurlMulti::CurlMulti(asio::io_context& io, Finished finished)
    : io_(io), finished_(std::move(finished)), multi_(curl_multi_init()), timer_(io) {
  if (!multi_) throw std::runtime_error("libcurl: cannot create a multi handle");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMulti::~CurlMulti() {
  timer_.cancel();
  curl_multi_cleanup(multi_);  // closes pooled connections via on_close_socket
  watches_.clear();
}

CURLMcode CurlMulti::add(CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlMulti::on_close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  return curl_multi_add_handle(multi_, easy);
}

void CurlMulti::remove(CURL* easy) { curl_multi_remove_handle(multi_, easy); }

int CurlMulti::on_socket(CURL*, curl_socket_t s, int what, void* self_p, void*) {
  auto* self = static_cast<CurlMulti*>(self_p);
  if (what == CURL_POLL_REMOVE) {
    self->forget_socket(s);
    return 0;
  }
  auto& w = self->watches_[s];
  if (!w) w = std::make_shared<Watch>(self->io_, s);
  w->want = what;
  // Never call back into curl from here: arming only waits.
  self->arm(s);
  return 0;
}

int CurlMulti::on_close_socket(void* self_p, curl_socket_t s) {
  static_cast<CurlMulti*>(self_p)->forget_socket(s);  // Asio lets go first
  return ::close(s);
}

void CurlMulti::forget_socket(curl_socket_t s) {
  auto it = watches_.find(s);
  if (it == watches_.end()) return;
  it->second->let_go();
  watches_.erase(it);
}

void CurlMulti::arm(curl_socket_t s) {
  auto it = watches_.find(s);
  if (it == watches_.end()) return;
  std::shared_ptr<Watch> w = it->second;
  // Asio's epoll reactor is edge-triggered: data that curl left unread (it
  // reads a bounded amount per call) raises no new edge. So look first.
  auto ready = [s](short events) {
    pollfd p{s, events, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (events | POLLERR | POLLHUP));
  };
  if ((w->want & CURL_POLL_IN) && !w->reading) {
    w->reading = true;
    auto handler = [this, s, w](const boost::system::error_code& ec) {
      w->reading = false;
      if (ec == asio::error::operation_aborted) return;
      auto it2 = watches_.find(s);
      if (it2 == watches_.end() || it2->second != w) return;  // socket gone or reused
      action(s, ec ? CURL_CSELECT_ERR : CURL_CSELECT_IN);
    };
    if (ready(POLLIN)) asio::post(io_, [handler] { handler({}); });
    else w->sd.async_wait(asio::posix::stream_descriptor::wait_read, handler);
  }
  if ((w->want & CURL_POLL_OUT) && !w->writing) {
    w->writing = true;
    auto handler = [this, s, w](const boost::system::error_code& ec) {
      w->writing = false;
      if (ec == asio::error::operation_aborted) return;
      auto it2 = watches_.find(s);
      if (it2 == watches_.end() || it2->second != w) return;
      action(s, ec ? CURL_CSELECT_ERR : CURL_CSELECT_OUT);
    };
    if (ready(POLLOUT)) asio::post(io_, [handler] { handler({}); });
    else w->sd.async_wait(asio::posix::stream_descriptor::wait_write, handler);
  }
}

void CurlMulti::action(curl_socket_t s, int ev_bitmask) {
  int still_running = 0;
  curl_multi_socket_action(multi_, s, ev_bitmask, &still_running);
  drain_done();
  if (s != CURL_SOCKET_TIMEOUT) arm(s);  // still wanted: wait again
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* self_p) {
  auto* self = static_cast<CurlMulti*>(self_p);
  if (timeout_ms < 0) {
    self->timer_.cancel();
    return 0;
  }
  // Only schedule: the timer fires from the loop, even for 0 ms.
  self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  self->timer_.async_wait([self](const boost::system::error_code& ec) {
    if (!ec) self->action(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

void CurlMulti::drain_done() {
  // Every ended transfer is taken out of curl first; the owner's handlers
  // run after curl is done with its bookkeeping, and may add transfers.
  std::vector<std::pair<CURL*, CURLcode>> ended;
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    ended.emplace_back(m->easy_handle, m->data.result);
    curl_multi_remove_handle(multi_, m->easy_handle);
  }
  for (auto& [easy, code] : ended) finished_(easy, code);
}

}  // namespace crawler
