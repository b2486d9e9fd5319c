// crawler-worker export: a session's images as JSON lines, CSV or
// webdataset shards. Reads only, so it works from any node (a standby
// included): the session and its row count, then its rows through
// image_list(), a page at a time in id order (keyset: the last id of a page
// starts the next), the next page asked for while this one is written, so
// memory holds two pages and one image whatever the session's size.
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "crawler/commands.hpp"
#include "crawler/database.hpp"
#include "crawler/export_files.hpp"
#include "crawler/export_format.hpp"
#include "crawler/log.hpp"
#include "crawler/progress.hpp"
#include "crawler/sha256.hpp"

namespace crawler {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Rows per image_list() call: its most. Two pages are in memory at once.
constexpr int kPageRows = 1000;
// How long the first answer may take, as for status.
constexpr std::chrono::seconds kAnswerTimeout{30};
// Tries of one blob from an agent that does not answer (or answers 5xx)
// before the export ends: one blip must not end an export of hours, an
// agent that is gone must not be asked for every remaining image.
constexpr int kAgentTries = 3;
constexpr std::chrono::seconds kAgentRetryPause{1};

// Set by SIGINT/SIGTERM; everything that waits looks at it.
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

// An error that ends the export with this exit status.
struct ExportFailure : std::runtime_error {
  ExportFailure(int code, const std::string& what) : std::runtime_error(what), code(code) {}
  int code;
};

// Where a blob's bytes come from, checked against the row's sha256 as they
// are read.
class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // The bytes of the image of row `row`; nullopt with *why when missing or
  // not matching. Throws ExportFailure when no image can come (the agent
  // refuses the token or cannot be reached).
  virtual std::optional<std::string> read(const DbResult& page, std::size_t row, std::string* why) = 0;
};

// The hash of `bytes` is the row's: what a shard holds is what was crawled.
bool matches(const std::string& bytes, const std::string& sha256, std::string* why) {
  Sha256 md;
  md.update(bytes.data(), bytes.size());
  std::string got = md.hex_digest();
  if (got == sha256) return true;
  *why = "sha256 mismatch: the bytes hash to " + got;
  return false;
}

// A local store: DIR/<file_path>.
class StoreSource final : public BlobSource {
 public:
  explicit StoreSource(std::string root) : root_(std::move(root)) {}
  std::optional<std::string> read(const DbResult& page, std::size_t row, std::string* why) override {
    const std::string path = page.at(row, "file_path").value_or("");
    const std::string sha = page.at(row, "sha256").value_or("");
    // A row's path is relative to the store: one that climbs out of it
    // would read some other file of this machine into the shard.
    std::filesystem::path rel(path);
    bool climbs = rel.is_absolute() || path.empty();
    for (const auto& part : rel)
      if (part == "..") climbs = true;
    if (climbs) {
      *why = "file_path \"" + path + "\" is not a path inside the store";
      return std::nullopt;
    }
    const std::string file = root_ + "/" + path;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *why = "cannot read " + file + ": " + std::strerror(errno);
      return std::nullopt;
    }
    std::string bytes;
    struct stat st {};
    const long long want = std::stoll(page.at(row, "file_size").value_or("0"));
    // A file of another size cannot hash right: said without reading it,
    // and a huge stray file never lands in memory.
    if (::fstat(fd, &st) != 0 || st.st_size != want) {
      *why = file + " has " + std::to_string(static_cast<long long>(st.st_size)) + " bytes, its row says " +
             std::to_string(want);
      ::close(fd);
      return std::nullopt;
    }
    bytes.reserve(static_cast<std::size_t>(want));
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *why = "cannot read " + file + ": " + std::strerror(errno);
        ::close(fd);
        return std::nullopt;
      }
      if (n == 0) break;
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!matches(bytes, sha, why)) return std::nullopt;
    return bytes;
  }

 private:
  std::string root_;
};

// A node's agent: GET <agent_url>/api/blobs/<sha256> with the bearer token,
// one connection kept alive.
class AgentSource final : public BlobSource {
 public:
  AgentSource(std::string base, const WorkerOptions& w) : base_(std::move(base)), w_(w) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    easy_ = curl_easy_init();
    if (!easy_) throw ExportFailure(1, "libcurl cannot create a transfer");
    headers_ = curl_slist_append(nullptr, ("Authorization: Bearer " + w.agent_token).c_str());
  }
  ~AgentSource() override {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(easy_);
  }

  std::optional<std::string> read(const DbResult& page, std::size_t row, std::string* why) override {
    const std::string sha = page.at(row, "sha256").value_or("");
    const long long size = std::stoll(page.at(row, "file_size").value_or("0"));
    if (!is_sha256_hex(sha)) {
      *why = "sha256 \"" + sha + "\" is not a blob name";
      return std::nullopt;
    }
    const std::string url = base_ + "/api/blobs/" + sha;
    for (int attempt = 1;; ++attempt) {
      Body body{{}, size};
      long status = 0;
      CURLcode rc = get(url, &body, &status);
      if (g_stop) throw ExportFailure(3, "interrupted");
      if (rc == CURLE_OK && status == 200) {
        if (!matches(body.bytes, sha, why)) return std::nullopt;
        return std::move(body.bytes);
      }
      if (rc == CURLE_WRITE_ERROR && body.too_large) {
        *why = "the agent sent more than the row's file_size (" + std::to_string(size) + " bytes)";
        return std::nullopt;
      }
      if (rc == CURLE_OK && (status == 401 || status == 403))
        throw ExportFailure(2, "the agent at " + base_ + " refused the token (HTTP " + std::to_string(status) +
                                   "): check --agent-token-file");
      if (rc == CURLE_OK && status < 500) {
        *why = "not on the agent at " + base_ + " (HTTP " + std::to_string(status) + ")";
        return std::nullopt;
      }
      std::string what = rc == CURLE_OK ? "HTTP " + std::to_string(status) : curl_easy_strerror(rc);
      if (attempt == kAgentTries)
        throw ExportFailure(1, "the agent at " + base_ + " cannot give " + sha + " (" + what + ", " +
                                   std::to_string(kAgentTries) + " tries)");
      CRAWLER_LOG(warn) << "export: the agent at " << base_ << ": " << what << "; trying again";
      std::this_thread::sleep_for(kAgentRetryPause);
    }
  }

 private:
  struct Body {
    std::string bytes;
    long long limit;
    bool too_large = false;
  };
  static size_t on_body(char* data, size_t one, size_t n, void* p) {
    auto* b = static_cast<Body*>(p);
    // Never more than the row says: a wrong blob must not fill memory.
    if (static_cast<long long>(b->bytes.size() + n * one) > b->limit) {
      b->too_large = true;
      return 0;
    }
    b->bytes.append(data, n * one);
    return n * one;
  }
  static int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) { return g_stop ? 1 : 0; }

  CURLcode get(const std::string& url, Body* body, long* status) {
    CURL* e = easy_;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &AgentSource::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &AgentSource::on_progress);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // the token goes to the agent the database named, only
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!w_.agent_ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, w_.agent_ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(w_.connect_timeout_ms));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(w_.low_speed_bytes));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(w_.low_speed_seconds));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    return rc;
  }

  std::string base_;
  const WorkerOptions& w_;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
};

class ExportCommand {
 public:
  explicit ExportCommand(const Command& cmd) : cmd_(cmd), x_(cmd.export_request), naming_(x_.shard_size) {}

  int run() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    db_.on_unusable([this](const std::string& why) { unusable_ = why; });
    int code = 0;
    try {
      code = export_session();
    } catch (const ExportFailure& f) {
      progress_.end();
      if (f.code == 3) CRAWLER_LOG(info) << "export: interrupted; the files under way are removed";
      else report_error(f.what());
      code = f.code;
    } catch (const std::exception& e) {
      progress_.end();
      report_error(std::string("export: ") + e.what());
      code = 1;
    }
    db_.stop(std::chrono::milliseconds(0));
    return code;
  }

 private:
  using Slot = std::shared_ptr<std::optional<DbResult>>;

  // Sends a call now; its answer lands in the slot returned (wait()).
  Slot ask(Stmt s, std::vector<Param> params) {
    auto slot = std::make_shared<std::optional<DbResult>>();
    db_.call(s, std::move(params), [slot](DbResult&& r) { *slot = std::move(r); });
    return slot;
  }

  // The answer in `slot`, the loop run until it comes; throws when
  // interrupted, when the database cannot be used, or after `limit`.
  DbResult wait(const Slot& slot, std::optional<std::chrono::seconds> limit = std::nullopt) {
    const auto deadline = Clock::now() + limit.value_or(std::chrono::seconds(0));
    while (!*slot) {
      if (g_stop) throw ExportFailure(3, "interrupted");
      if (!unusable_.empty()) throw ExportFailure(1, "cannot use the database: " + unusable_);
      if (limit && Clock::now() > deadline)
        throw ExportFailure(1, "no database answered within " + std::to_string(limit->count()) + " s");
      io_.run_one_for(std::chrono::milliseconds(100));
    }
    return std::move(**slot);
  }

  Param session_param() const { return Param{std::to_string(*x_.session)}; }

  int export_session() {
    DbResult s = wait(ask(Stmt::export_session, {session_param()}), kAnswerTimeout);
    if (!s.ok) throw ExportFailure(1, "cannot read session " + std::to_string(*x_.session) + ": " + s.error);
    if (s.rows.empty())
      throw ExportFailure(1, "session " + std::to_string(*x_.session) + " does not exist (on " + db_.server() + ")");
    total_ = std::stoll(s.at(0, "images").value_or("0"));
    CRAWLER_LOG(info) << "export: session " << *x_.session << ", " << total_ << " images, from " << db_.server()
                      << (db_.read_only() ? " (read-only)" : "");
    if (x_.format == "webdataset") {
      open_source();
      std::error_code ec;
      std::filesystem::create_directory(x_.output, ec);
      if (ec) throw ExportFailure(2, "--output " + x_.output + ": " + ec.message());
    } else if (x_.output != "-") {
      file_ = std::make_unique<AtomicFile>(x_.output);
    }
    if (x_.format == "csv") emit(csv_header());
    started_ = Clock::now();
    start_time_ = unix_now();
    Slot next = ask(Stmt::image_page, {session_param(), Param{}, Param{std::to_string(kPageRows)}});
    for (;;) {
      DbResult page = wait(next);
      if (!page.ok) throw ExportFailure(1, "image_list(): " + page.error + " [" + page.sqlstate + "]");
      const bool last = page.rows.size() < static_cast<std::size_t>(kPageRows);
      // The next page is on its way while this one is written.
      if (!last) next = ask(Stmt::image_page, {session_param(), page.at(page.rows.size() - 1, "id"),
                                               Param{std::to_string(kPageRows)}});
      for (std::size_t r = 0; r < page.rows.size(); ++r) {
        if (g_stop) throw ExportFailure(3, "interrupted");
        write_row(page, r);
        ++rows_;
        show_progress();
      }
      if (last) break;
    }
    return finish();
  }

  // The agent of the node read from (ha_status()'s local row), else the
  // primary's: the node the export reads is the one whose blobs match.
  void open_source() {
    const WorkerOptions& w = cmd_.worker;
    if (!w.storage_agent) {
      source_ = std::make_unique<StoreSource>(w.storage);
      return;
    }
    DbResult ha = wait(ask(Stmt::ha_status, {}), kAnswerTimeout);
    if (!ha.ok) throw ExportFailure(1, "ha_status(): " + ha.error + " (the agent's URL comes from it)");
    std::string url;
    for (const char* want : {"local", "primary"})
      for (std::size_t i = 0; i < ha.rows.size() && url.empty(); ++i) {
        bool pick = std::string(want) == "local" ? ha.at(i, "is_local") == Param{"t"} : ha.at(i, "role") == Param{"primary"};
        if (pick && ha.at(i, "agent_url")) url = *ha.at(i, "agent_url");
      }
    if (url.empty())
      throw ExportFailure(1, "ha_status() names no agent URL for this node or the primary (crawler_ha.agent_url); "
                             "use --storage DIR on a node that holds the store");
    CRAWLER_LOG(info) << "export: images read from the agent at " << url;
    source_ = std::make_unique<AgentSource>(url, w);
  }

  void emit(std::string_view bytes) {
    emitted_ += static_cast<std::int64_t>(bytes.size());
    if (file_) file_->write(bytes);
    else out_.write(bytes);
  }

  void write_row(const DbResult& page, std::size_t r) {
    if (x_.format == "jsonl") {
      emit(json_text(image_json(page, r)) + "\n");
    } else if (x_.format == "csv") {
      emit(csv_record(page, r));
    } else {
      write_sample(page, r);
    }
  }

  void write_sample(const DbResult& page, std::size_t r) {
    const std::int64_t index = rows_;
    if (!shard_ || naming_.shard_of(index) != shard_index_) {
      close_shard();
      shard_index_ = naming_.shard_of(index);
      const std::string name = naming_.shard_name(shard_index_);
      shard_ = std::make_unique<TarShard>(x_.output + "/" + name + ".tar", static_cast<std::time_t>(start_time_));
      shard_stats_ = ExportStats{};
      shard_stats_.start_time = unix_now();
    }
    const std::string key = naming_.key(index);
    ++shard_stats_.count;
    std::string why;
    std::optional<std::string> bytes = source_->read(page, r, &why);
    if (!bytes) {
      SkippedImage s{page.at(r, "id").value_or(""), page.at(r, "url").value_or(""), page.at(r, "sha256").value_or(""),
                     why};
      CRAWLER_LOG(warn) << "export: image " << s.id << " (" << s.url << ") skipped: " << why;
      shard_stats_.failures.push_back(std::move(s));
      ++skipped_;
      return;
    }
    nlohmann::ordered_json meta = {{"key", key}};
    meta.update(image_json(page, r));
    shard_->add(key + "." + sample_extension(page.at(r, "file_path").value_or(""), page.at(r, "format")), *bytes);
    shard_->add(key + ".json", json_text(meta));
    ++shard_stats_.successes;
    shard_stats_.bytes += static_cast<std::int64_t>(bytes->size());
    image_bytes_ += static_cast<std::int64_t>(bytes->size());
  }

  // The shard under way into place, then its statistics beside it.
  void close_shard() {
    if (!shard_) return;
    written_ += shard_->commit();
    shard_.reset();
    ++shards_;
    shard_stats_.end_time = unix_now();
    write_json_file(x_.output + "/" + naming_.shard_name(shard_index_) + "_stats.json", shard_stats_.to_json());
  }

  void write_json_file(const std::string& path, const nlohmann::ordered_json& j) {
    AtomicFile f(path);
    f.write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    written_ += f.commit();
  }

  void show_progress() {
    double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    std::int64_t bytes = x_.format == "webdataset" ? image_bytes_ : emitted_;
    progress_.show(export_progress_line(rows_, total_, bytes, skipped_, secs));
  }

  int finish() {
    if (x_.format == "webdataset") {
      close_shard();
      ExportStats total;
      total.count = rows_;
      total.successes = rows_ - skipped_;
      total.bytes = image_bytes_;
      total.start_time = start_time_;
      total.end_time = unix_now();
      nlohmann::ordered_json j = {{"session", *x_.session}, {"shards", shards_}, {"shard_size", x_.shard_size}};
      j.update(total.to_json());
      j.erase("failures");  // each shard's _stats.json lists its own: this file stays small
      write_json_file(x_.output + "/stats.json", j);
    } else if (file_) {
      written_ = file_->commit();
    } else {
      written_ = out_.finish();
    }
    progress_.end();
    double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    std::ostringstream summary;
    summary << "session " << *x_.session << ": " << rows_ << " images exported as " << x_.format << " to "
            << (x_.output == "-" ? "standard output" : x_.output);
    if (x_.format == "webdataset")
      summary << "\n  files           " << shards_ << (shards_ == 1 ? " shard" : " shards") << " ("
              << human_bytes(static_cast<double>(image_bytes_)) << " of images)";
    summary << "\n  written         " << human_bytes(static_cast<double>(written_)) << "\n  skipped         "
            << skipped_ << "\n  seconds         " << std::fixed << std::setprecision(1) << secs << "\n";
    // Standard output may be the export itself.
    (x_.output == "-" ? std::cerr : std::cout) << summary.str() << std::flush;
    if (skipped_ > 0) {
      report_error(std::to_string(skipped_) + (skipped_ == 1 ? " image was" : " images were") +
                   " skipped (said above, and in the shards' _stats.json)");
      return 1;
    }
    return 0;
  }

  static double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  const Command& cmd_;
  const ExportRequest& x_;
  ShardNaming naming_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  Database db_{cmd_.worker.db, io_, 0, DbMode::kReader};
  std::string unusable_;
  ProgressDisplay progress_{::isatty(2) != 0};
  std::unique_ptr<AtomicFile> file_;
  StdoutWriter out_;
  std::unique_ptr<BlobSource> source_;
  std::unique_ptr<TarShard> shard_;
  std::int64_t shard_index_ = -1;
  ExportStats shard_stats_;
  std::int64_t total_ = 0, rows_ = 0, skipped_ = 0, image_bytes_ = 0, shards_ = 0, emitted_ = 0;
  long long written_ = 0;
  double start_time_ = 0;
  Clock::time_point started_ = Clock::now();
};

}  // namespace

int run_export_command(const Command& cmd) {
  ExportCommand e(cmd);
  return e.run();
}

}  // namespace crawler
