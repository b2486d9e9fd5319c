// Waiting, inside a coroutine, for a callback of BlobEvents.
#pragma once
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <memory>
#include <tuple>

namespace crawler::agent {

// co_await await_callback<A, B>(start): calls start(callback) and resumes
// with std::tuple<A, B> once callback(a, b) runs. The coroutine resumes on
// its own executor (the connection's strand) whatever thread calls back,
// and never inside start(): a callee that answers at once cannot re-enter
// the connection. A second call of the callback is ignored.
template <typename... Args, typename Start>
auto await_callback(Start start) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Args...)>(
      [](auto handler, Start start) {
        using Handler = decltype(handler);
        // std::function needs a copyable callback; the handler is not.
        auto shared = std::make_shared<Handler>(std::move(handler));
        auto called = std::make_shared<std::atomic<bool>>(false);
        auto executor = boost::asio::get_associated_executor(*shared);
        start([shared, called, executor](Args... args) {
          if (called->exchange(true)) return;
          boost::asio::post(executor, [shared, tuple = std::make_tuple(std::move(args)...)]() mutable {
            std::apply([&](auto&&... a) { (*shared)(std::move(a)...); }, std::move(tuple));
          });
        });
      },
      boost::asio::use_awaitable, std::move(start));
}

}  // namespace crawler::agent
