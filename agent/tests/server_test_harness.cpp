#include "server_test_harness.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

#include "crawler/sha256.hpp"

namespace test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "agent-server-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

void RecordingEvents::blob_put(const std::string& sha256, std::uint64_t size, bool created) {
  std::lock_guard<std::mutex> lock(mutex_);
  puts_.push_back({sha256, size, created});
}

void RecordingEvents::replicate(const std::string& sha256, const std::filesystem::path& file,
                                std::function<void(bool, std::string)> done) {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The file must be in place when replication is asked for.
    replicated_.push_back(sha256 + (fs::exists(file) ? "" : " (file missing)"));
    error = replication_error_;
  }
  // From another thread, as file sync's peer transfer would answer.
  std::thread([done = std::move(done), error] { done(error.empty(), error); }).detach();
}

void RecordingEvents::referenced(std::vector<std::string> sha256s,
                                 std::function<void(std::optional<std::vector<std::string>>, std::string)> done) {
  std::optional<std::vector<std::string>> answer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query_ = sha256s;
    if (!database_down_) answer = referenced_;
  }
  // At once, inside the call: the server must not be re-entered by it.
  done(answer, answer ? "" : "database down");
}

void RecordingEvents::status(std::function<void(std::optional<std::string>, std::string)> done) {
  bool down;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    down = database_down_;
  }
  if (down) done(std::nullopt, "database down");
  else done(std::string(R"({"wanted":3,"peer":"ok"})"), "");
}

std::vector<RecordingEvents::Put> RecordingEvents::puts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return puts_;
}
std::vector<std::string> RecordingEvents::replicated() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return replicated_;
}
std::vector<std::string> RecordingEvents::last_query() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return query_;
}
void RecordingEvents::fail_replication(std::string why) {
  std::lock_guard<std::mutex> lock(mutex_);
  replication_error_ = std::move(why);
}
void RecordingEvents::database_down(bool down) {
  std::lock_guard<std::mutex> lock(mutex_);
  database_down_ = down;
}
void RecordingEvents::not_primary(std::string why) {
  std::lock_guard<std::mutex> lock(mutex_);
  not_primary_ = std::move(why);
}
std::optional<std::string> RecordingEvents::upload_refusal() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (not_primary_.empty()) return std::nullopt;
  return not_primary_;
}
void RecordingEvents::referenced_answer(std::vector<std::string> names) {
  std::lock_guard<std::mutex> lock(mutex_);
  referenced_ = std::move(names);
}

namespace {

// A throwaway self-signed certificate for 127.0.0.1 (P-256: quick to make).
void make_certificate(const fs::path& cert, const fs::path& key) {
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
                    " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '" +
                    key.string() + "' -out '" + cert.string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl could not make a certificate");
}

}  // namespace

Agent::Agent(bool tls, std::function<void(crawler::agent::AgentConfig&)> tweak,
             std::optional<std::filesystem::path> store_dir)
    : tls_(tls) {
  config_.store = store_dir ? store_dir->string() : (dir_.path / "store").string();
  config_.listen = "127.0.0.1:0";
  config_.token_file = (dir_.path / "token").string();
  {
    std::ofstream token(config_.token_file);
    token << kToken << "\n";
  }
  ::chmod(config_.token_file.c_str(), 0600);
  if (tls) {
    cert_ = dir_.path / "cert.pem";
    make_certificate(cert_, dir_.path / "key.pem");
    config_.tls_cert_file = cert_.string();
    config_.tls_key_file = (dir_.path / "key.pem").string();
  } else {
    config_.plain_http = true;
  }
  config_.max_blob_bytes = 4 << 20;
  config_.header_timeout_ms = 2000;
  config_.idle_timeout_ms = 2000;
  config_.keep_alive_timeout_ms = 5000;
  if (tweak) tweak(config_);
  store_ = std::make_unique<crawler::FileStore>(config_.store);
  durability_ = std::make_unique<crawler::StoreSync>(store_->root());
  std::string error;
  if (!token_.load(config_.token_file, &error)) throw std::runtime_error(error);
  server_ = std::make_unique<crawler::agent::Server>(config_, *store_, *durability_, events_, token_, io_);
  server_->start();
  port_ = server_->local_endpoint().port();
  work_.emplace(io_.get_executor());
  for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
}

Agent::~Agent() {
  std::promise<void> stopped;
  server_->stop(std::chrono::milliseconds(2000), [&] { stopped.set_value(); });
  stopped.get_future().wait_for(std::chrono::seconds(5));
  work_.reset();
  io_.stop();
  for (auto& t : threads_) t.join();
}

std::string Agent::url(const std::string& path) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> Agent::temporaries() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store_->root() / ".tmp", ec)) out.push_back(e.path().string());
  return out;
}

std::string Reply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

namespace {

size_t on_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}

struct Upload {
  const std::string* body;
  std::size_t offset = 0;
};

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t chunk = std::min(size * n, up->body->size() - up->offset);
  std::memcpy(buffer, up->body->data() + up->offset, chunk);
  up->offset += chunk;
  return chunk;
}

}  // namespace

Reply fetch(const Agent& agent, const Request& r) {
  Reply reply;
  CURL* curl = curl_easy_init();
  std::string url = agent.url(r.path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, r.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  if (agent.tls()) curl_easy_setopt(curl, CURLOPT_CAINFO, agent.cert().c_str());
  Upload upload{r.body ? &*r.body : nullptr};
  if (r.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT" || (r.method == "POST" && r.chunked)) {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    if (r.method == "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    static const std::string empty;
    if (!upload.body) upload.body = &empty;
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    if (!r.chunked) curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.body->size()));
  } else if (r.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body ? r.body->c_str() : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body ? r.body->size() : 0));
  } else if (r.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  curl_slist* headers = nullptr;
  if (r.token) headers = curl_slist_append(headers, (std::string("Authorization: Bearer ") + kToken).c_str());
  if (r.chunked) headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  // curl waits a second for 100 Continue unless told otherwise.
  bool wants_expect = std::any_of(r.headers.begin(), r.headers.end(),
                                  [](const std::string& h) { return h.rfind("Expect:", 0) == 0; });
  if (!wants_expect) headers = curl_slist_append(headers, "Expect:");
  for (const auto& h : r.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) reply.curl_error = curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

RawClient::RawClient(unsigned short port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string RawClient::receive(int timeout_ms, const std::string& until) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (!until.empty() && out.find(until) != std::string::npos) break;
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool RawClient::closed_within(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;  // end of stream or reset
  }
}

std::string sha256_of(const std::string& bytes) {
  crawler::Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::string pattern(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

bool eventually(const std::function<bool()>& predicate, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

}  // namespace test
