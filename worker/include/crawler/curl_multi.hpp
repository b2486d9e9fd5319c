// libcurl's multi-socket API driven by a Boost.Asio io_context (the
// pattern of curl's multi-uv.c / ephiperfifo.c): Asio only waits on curl's
// sockets and curl's timer; curl opens and closes the sockets (the
// descriptor is released from Asio before curl closes it). It knows nothing
// of what a transfer is for: the fetcher (fetcher.hpp) and the blob uploader
// (blob_uploader.hpp) each own one, on the same loop, with their own limits.
#pragma once
#include <curl/curl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <unordered_map>

namespace crawler {

class CurlMulti {
 public:
  // Runs on the loop once per transfer that ended, after curl removed it
  // from the multi handle; it may add new transfers.
  using Finished = std::function<void(CURL* easy, CURLcode code)>;
  CurlMulti(boost::asio::io_context& io, Finished finished);
  // Removes nothing: the owner removes its transfers first (remove()).
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // The multi handle, for its limits (CURLMOPT_MAX_HOST_CONNECTIONS ...).
  CURLM* handle() const { return multi_; }
  // Starts `easy` (after setting the socket-closing callback it needs);
  // never call it from inside a curl callback.
  CURLMcode add(CURL* easy);
  // Stops `easy` without calling Finished (a cancelled transfer).
  void remove(CURL* easy);

 private:
  struct Watch;
  static int on_socket(CURL*, curl_socket_t, int what, void* self, void*);
  static int on_timer(CURLM*, long timeout_ms, void* self);
  static int on_close_socket(void* self, curl_socket_t s);
  void arm(curl_socket_t s);
  void action(curl_socket_t s, int ev_bitmask);
  void drain_done();
  void forget_socket(curl_socket_t s);

  boost::asio::io_context& io_;
  Finished finished_;
  CURLM* multi_ = nullptr;
  boost::asio::steady_timer timer_;
  std::unordered_map<curl_socket_t, std::shared_ptr<Watch>> watches_;
};

}  // namespace crawler
