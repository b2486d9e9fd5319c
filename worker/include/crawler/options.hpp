// Command line and config file. Boost.Program_options reads the command
// line and checks every value; the config file is read line by line here,
// so that a mistake names its line and a boolean key may stand alone.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace crawler {

// How this worker process fetches and talks to the database.
struct WorkerOptions {
  std::string db;                 // libpq conninfo, several hosts allowed
  std::string storage;            // root of the content-addressed store ("" with storage_agent)
  // Files go to the primary's node agent (PUT /api/blobs/) instead of a
  // local store; they wait in `spool` until the agent has them.
  bool storage_agent = false;
  std::string agent_token_file;   // the agents' bearer token (owner-only file)
  std::string agent_token;        // read from agent_token_file by the parser
  std::string agent_ca_file;      // CA bundle for the agents' TLS ("" = the system's)
  std::string spool;              // staging directory of downloads awaiting upload
  long long max_spool_bytes = 1LL << 30;  // bytes waiting for the agent before claiming pauses
  std::string worker_id;          // default: hostname:pid
  int concurrency = 16;           // transfers at once
  int host_connections = 8;       // connections per host (curl)
  int claim_batch = 32;
  int lease_seconds = 60;
  int connect_timeout_ms = 10000;
  int timeout_ms = 120000;        // whole transfer
  int low_speed_bytes = 1000;     // slower than this ...
  int low_speed_seconds = 20;     // ... for this long is a timeout
  int max_redirects = 5;
  int max_retry_after_s = 3600;   // longer Retry-After values are capped
  int max_pending_writes = 2000;  // unacknowledged results before fetching pauses
  int db_connections = 1;         // connections for results (plus one for claims)
  bool no_early_fetch = false;    // only leased URLs are fetched (else early_fetch.hpp)
  std::string user_agent;         // overrides the sessions' user_agent when set
  // Every request (robots.txt included) through this proxy ("" = none, or
  // the http_proxy/https_proxy environment as libcurl reads it).
  std::string proxy;
  // Cookies sent with the requests, from a file in the Netscape format of
  // curl and wget ("" = no cookies); cookies servers set are kept too.
  std::string cookies_file;
  std::string log_level = "info";
};

// Options of a new crawl (the `crawl` command), passed to crawl_start().
struct CrawlRequest {
  std::vector<std::string> seeds;
  std::optional<int> max_depth, max_pages, per_host, delay_ms, max_attempts;
  std::optional<int> min_width, min_height;
  std::optional<long long> max_page_bytes, max_image_bytes, max_pixels, image_expiry_s;
  std::vector<std::string> allow_domains;
  // URL patterns (POSIX regular expressions, PostgreSQL's ~): pages followed
  // and images stored only when they match an accept pattern of their kind
  // (when there is one) and no reject pattern; seeds are always crawled.
  std::vector<std::string> accept_pages, reject_pages, accept_images, reject_images;
  std::string scope;  // "hosts" or "site"; empty: the database's default
  bool images_any_host = false;
  bool no_robots = false;
  bool random_wait = false;
  bool no_sitemaps = false;  // the session's sitemaps setting off
  std::string user_agent;
  // Thumbnails made of each stored image: NAME=SIZE (a box of SIZE pixels),
  // as given; the extension checks them (crawl_thumbnail_sizes()).
  std::vector<std::string> thumbnails;
  // Not options of the session, this command's own: a file of seed URLs
  // (one per line; blank lines and lines starting with # are skipped), and
  // where the statistics go as JSON when the crawl ends.
  std::string seeds_file;
  std::string stats_json;
  // Sitemaps queued when the session starts, at depth 0 (as seeds are),
  // whatever the session's sitemaps setting.
  std::vector<std::string> sitemaps;
  // The options object for crawl_start(): only what was given.
  std::string options_json() const;
};

// What the status command shows, and how.
struct StatusRequest {
  std::optional<long long> session;  // --session: this session only
  bool wide = false;                 // --wide: every column, nothing cut
  bool json = false;                 // --json: everything, as one JSON object
};

// What the export command writes, and where (the storage options, for
// the images' bytes of a webdataset, are the worker's).
struct ExportRequest {
  std::optional<long long> session;  // --session: required
  std::string format;                // jsonl, csv or webdataset
  std::string output;                // a file ("-": stdout), or the shards' directory
  long long shard_size = 10000;      // webdataset: rows per shard
};

struct Command {
  std::string name;  // crawl, run, status, export, help, version
  WorkerOptions worker;
  CrawlRequest crawl;
  StatusRequest status;
  ExportRequest export_request;
  std::string config_file;
  // The help of the command given (or of the whole program): what `help`
  // prints, and what a mistake's message points to.
  std::string help_text;
};

// The command line (and the config file it names) as a Command. `help`
// when --help, `help COMMAND` or no argument at all was given (help_text
// is then that command's help or the program's); `version` for --version.
// Refused, with std::runtime_error and a message fit for the user: an
// unknown command, option or config key (with the nearest known name when
// one is close), an option of another command (crawl's --seed given to
// run; in the config file of `status` the options of crawl and run are
// checked and ignored, as status reads the service's file), a value of the
// wrong type or out of range, an unknown --log-level, and a config file
// line that cannot be read, naming the file and the line. In the config
// file a boolean option alone on its line (`no-robots`) means true, and
// `_` in a key reads as `-`. export, like status, checks and ignores the
// options of crawl and run in its config file; it refuses, before anything
// is read, an output it could not write (a missing or read-only
// directory, a file's directory given as a file, a webdataset directory
// that is not empty).
Command parse_command_line(int argc, const char* const argv[]);

// The compact JSON text of `j`; bytes that are not UTF-8 become U+FFFD
// (never an exception).
std::string json_text(const nlohmann::json& j);
// The same, keys in the order they were added.
std::string json_text(const nlohmann::ordered_json& j);

// The default --spool directory.
constexpr const char* kDefaultSpool = "/var/tmp/crawler-worker";

// The seed URLs of `path`, one per line (surrounding blanks trimmed; blank
// lines and lines starting with # skipped). Throws std::runtime_error, fit
// for the user and naming the file and line, when it cannot be read, holds
// something that is not an absolute http(s) URL, a URL over 2,048 bytes,
// more than 10,000 seeds, or none.
std::vector<std::string> read_seeds_file(const std::string& path);

// The bearer token in `path`: its content without the trailing newline.
// Throws std::runtime_error, fit for the user, when the file cannot be
// read, is not a regular file, can be read or written by its group or by
// others (a secret), is empty, or holds anything but printable ASCII
// without spaces (it goes into an HTTP header).
std::string read_agent_token(const std::string& path);

// Where downloaded files are written: the store, or the spool when files
// go to the agent.
inline const std::string& download_root(const WorkerOptions& w) { return w.storage_agent ? w.spool : w.storage; }

}  // namespace crawler
