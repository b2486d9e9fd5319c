#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "await_callback.hpp"
#include "blob_routes.hpp"
#include "request_body.hpp"
#include "crawler/sha256.hpp"
#include "responses.hpp"

namespace crawler::agent {
namespace {

// A peer asks about at most this many blobs at once.
constexpr std::size_t kMaxReferencedQuery = 10000;
// 10000 names of 66 bytes and their separators, with room for white space.
constexpr std::uint64_t kMaxQueryBytes = 4 << 20;

// The sha256 list of a referenced query, or the reason it is not one.
std::optional<std::vector<std::string>> referenced_query(const std::string& body, std::string* why) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    *why = "the body is not JSON";
    return std::nullopt;
  }
  if (!doc.is_object() || !doc.contains("sha256") || !doc["sha256"].is_array()) {
    *why = "the body must be {\"sha256\": [\"<64 hex digits>\", ...]}";
    return std::nullopt;
  }
  const auto& list = doc["sha256"];
  if (list.size() > kMaxReferencedQuery) {
    *why = "at most " + std::to_string(kMaxReferencedQuery) + " names per query";
    return std::nullopt;
  }
  std::vector<std::string> names;
  names.reserve(list.size());
  for (const auto& item : list) {
    if (!item.is_string() || !is_sha256_hex(item.get_ref<const std::string&>())) {
      *why = "every name must be 64 lower-case hex digits";
      return std::nullopt;
    }
    names.push_back(item.get<std::string>());
  }
  return names;
}

}  // namespace

awaitable<void> post_referenced(Exchange& x, ServerState& state) {
  auto body = co_await read_small_body(x, kMaxQueryBytes, "query_too_large", "a referenced query");
  if (!body) co_return;
  std::string why;
  auto names = referenced_query(*body, &why);
  if (!names) {
    co_await x.respond(error_response(http::status::bad_request, "bad_query", why));
    co_return;
  }
  auto [found, error] = co_await await_callback<std::optional<std::vector<std::string>>, std::string>(
      [&](auto done) { state.events.referenced(std::move(*names), std::move(done)); });
  if (!found) {
    co_await x.respond(error_response(http::status::service_unavailable, "database_unavailable", error));
    co_return;
  }
  nlohmann::json answer;
  answer["referenced"] = std::move(*found);
  co_await x.respond(json_response(http::status::ok, answer));
}

awaitable<void> get_file_sync_status(Exchange& x, ServerState& state) {
  auto [json, error] = co_await await_callback<std::optional<std::string>, std::string>(
      [&](auto done) { state.events.status(std::move(done)); });
  if (!json) {
    co_await x.respond(error_response(http::status::service_unavailable, "database_unavailable", error));
    co_return;
  }
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(*json);
  co_await x.respond(std::move(res));
}

}  // namespace crawler::agent
