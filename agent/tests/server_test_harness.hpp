// The real server on 127.0.0.1, port 0, with a temporary store, a token,
// TLS (a throwaway self-signed certificate) or plain HTTP, and a
// BlobEvents that records what it is told; libcurl and raw sockets as
// clients.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crawler/agent/blob_events.hpp"
#include "crawler/agent/config.hpp"
#include "crawler/agent/server/bearer_token.hpp"
#include "crawler/agent/server/server.hpp"
#include "crawler/store.hpp"
#include "crawler/store_sync.hpp"

namespace test {

constexpr const char* kToken = "test-token-0123456789";

// A directory removed with everything in it at the end.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
};

// What the server told file sync; answers as the test sets.
class RecordingEvents : public crawler::agent::BlobEvents {
 public:
  struct Put {
    std::string sha256;
    std::uint64_t size;
    bool created;
  };
  void blob_put(const std::string& sha256, std::uint64_t size, bool created) override;
  void replicate(const std::string& sha256, const std::filesystem::path& file,
                 std::function<void(bool ok, std::string error)> done) override;
  void referenced(std::vector<std::string> sha256s,
                  std::function<void(std::optional<std::vector<std::string>>, std::string error)> done) override;
  void status(std::function<void(std::optional<std::string> json, std::string error)> done) override;
  std::optional<std::string> upload_refusal() const override;

  std::vector<Put> puts() const;
  std::vector<std::string> replicated() const;
  std::vector<std::string> last_query() const;

  // What the next calls answer.
  void fail_replication(std::string why);
  void database_down(bool down);
  void referenced_answer(std::vector<std::string> names);
  // Uploads from workers are refused with this reason ("" takes them).
  void not_primary(std::string why);

 private:
  mutable std::mutex mutex_;
  std::vector<Put> puts_;
  std::vector<std::string> replicated_, query_, referenced_;
  std::string replication_error_;
  bool database_down_ = false;
  std::string not_primary_;
};

// The server under test, running on two loop threads.
class Agent {
 public:
  // `tweak` adjusts the settings before the server starts; `store_dir`
  // replaces the temporary store (a small file system, for a full disk).
  explicit Agent(bool tls, std::function<void(crawler::agent::AgentConfig&)> tweak = {},
                 std::optional<std::filesystem::path> store_dir = std::nullopt);
  ~Agent();

  std::string url(const std::string& path) const;
  unsigned short port() const { return port_; }
  const std::filesystem::path& store_root() const { return store_->root(); }
  // Files in the store's temporary directory (uploads in progress).
  std::vector<std::string> temporaries() const;
  RecordingEvents& events() { return events_; }
  crawler::agent::Server& server() { return *server_; }
  const crawler::agent::AgentConfig& config() const { return config_; }
  const std::filesystem::path& cert() const { return cert_; }
  bool tls() const { return tls_; }

 private:
  TempDir dir_;
  bool tls_;
  std::filesystem::path cert_;
  crawler::agent::AgentConfig config_;
  std::unique_ptr<crawler::FileStore> store_;
  std::unique_ptr<crawler::StoreSync> durability_;
  crawler::agent::BearerToken token_;
  RecordingEvents events_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::unique_ptr<crawler::agent::Server> server_;
  std::vector<std::thread> threads_;
  unsigned short port_ = 0;
};

struct Reply {
  long status = 0;  // 0: no answer (curl_error says why)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string curl_error;
  std::string header(const std::string& name) const;
};

struct Request {
  std::string method = "GET";
  std::string path;
  std::optional<std::string> body;
  std::vector<std::string> headers;  // "Name: value"
  bool token = true;                 // send Authorization: Bearer kToken
  bool chunked = false;              // send the body chunked
  long timeout_ms = 10000;
};

// One request with libcurl (TLS verified against the agent's certificate).
Reply fetch(const Agent& agent, const Request& request);

// A plain TCP connection to the agent (plain HTTP only).
class RawClient {
 public:
  explicit RawClient(unsigned short port);
  ~RawClient();
  bool send(const std::string& bytes);
  // What arrives until the connection closes, `until` appears, or
  // `timeout_ms` passes.
  std::string receive(int timeout_ms, const std::string& until = "");
  // Whether the peer closed the connection within `timeout_ms`.
  bool closed_within(int timeout_ms);
  void close();

 private:
  int fd_ = -1;
};

// The sha256 of `bytes`, 64 hex digits.
std::string sha256_of(const std::string& bytes);
// `n` bytes of a fixed pattern (seeded), for bodies.
std::string pattern(std::size_t n, unsigned seed = 1);
// Waits until `predicate` holds or `timeout_ms` passes; its last value.
bool eventually(const std::function<bool()>& predicate, int timeout_ms = 3000);

}  // namespace test
