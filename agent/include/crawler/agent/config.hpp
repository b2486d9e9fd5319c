// The node agent's settings: a config file (key = value, as the worker's)
// and the command line, the command line winning. One struct for every part
// of the agent (HTTP server, file sync, scrub, orphans), so that each part
// reads its settings from one place.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace crawler::agent {

struct AgentConfig {
  // --- this node ---
  std::string db;                   // libpq conninfo of this node's own PostgreSQL
  std::string store;                // root of this node's content-addressed store
  std::string log_level = "info";

  // --- the application port (blob routes) ---
  std::string listen = "127.0.0.1:8000";  // address:port; [v6]:port
  std::string tls_cert_file;        // PEM certificate chain
  std::string tls_key_file;         // PEM private key
  bool plain_http = false;          // serve without TLS: only when set explicitly
  std::string token_file;           // bearer token for writes and agent-to-agent calls
  std::string api_tokens_file;      // scoped API tokens, hashed (read, operate, admin); empty: none
  bool read_token_required = false; // reads need the token too
  std::uint64_t max_blob_bytes = 256ull << 20;  // a larger PUT is refused (413)
  int max_connections = 256;        // served at once; more are answered 503 and closed
  std::string allowed_clients = "all";  // CIDRs whose requests are served (both ports); others: 403
  double rate_limit_per_second = 0; // requests a client (IPv4 address, IPv6 /64) may make; 0: no limit
  double rate_limit_burst = 50;     // requests a client may make at once before the rate applies
  int header_timeout_ms = 10000;    // a request's headers must arrive within this
  int idle_timeout_ms = 30000;      // no byte read or written for this long ends it
  int keep_alive_timeout_ms = 60000;  // an idle kept-alive connection is closed
  int max_header_bytes = 16 * 1024; // a request's header block; more is refused (431)
  int threads = 2;                  // threads running the HTTP server's event loop
  int shutdown_timeout_ms = 10000;  // SIGTERM: requests in flight may finish within this
  std::string port_file;            // the bound port is written here (tests use listen :0)
  // --- the HA port (load-balancer checks, cluster status) ---
  // Same TLS, token and limits as the application port.
  std::string ha_listen = "127.0.0.1:8001";  // address:port; "off": no HA port
  std::string ha_port_file;         // the HA port's bound port is written here
  // Sessions with the node's database that answer the HA port's routes at
  // once; each route is one SQL call. A health check waits for no file sync.
  int api_db_sessions = 2;

  // --- thumbnails of the images (application port) ---
  // The sizes served (longer side, pixels): a fixed few, so that the cache
  // holds at most that many per image whatever clients ask.
  std::string thumbnail_sizes = "64,128,256,512";
  int thumbnail_threads = 1;        // threads running libvips
  int thumbnail_queue = 64;         // requests waiting for a thread; more: 503
  std::uint64_t thumbnail_max_pixels = 100'000'000;  // a larger source is refused (a decompression bomb)

  // --- talking to the peer's agent (file sync, sync-mode copies) ---
  std::string ca_file;              // CA bundle that verifies the peer's certificate
                                    // (empty: the system's)
  int peer_timeout_ms = 10000;      // connect and idle timeout of a peer transfer

  // --- file sync ---
  // Blobs fetched from the peer at once. The fetches share group syncs, so
  // more at once no longer buys shared journal commits; on loopback or a LAN
  // a fetch is CPU (TLS, sha256, file creation), and threads beyond what the
  // cores run only take them from the node's other work (bench/files on 2
  // cores, 6 interleaved pairs: 8 against 16 gave a crawl through the agents
  // of 1.36x the local one against 1.48x, a catch-up of 1.05x rsync -a's
  // rate against 0.97x, lag p99 268 ms against 220 ms). Raise it for a link
  // whose latency, not the CPU, bounds a fetch.
  int sync_concurrency = 8;
  std::uint64_t sync_bandwidth_bytes = 0;  // bytes/s for all fetches together; 0: no limit
  int sync_poll_ms = 200;           // how often the wanted queue is read when idle

  // --- scrub ---
  std::uint64_t scrub_bytes_per_second = 32ull << 20;  // re-hashing rate; 0: no scrub
  // A blob hashed this recently (stored, fetched or scrubbed) is left out
  // of a pass: a store that just caught up is not read again at once.
  int scrub_min_age_s = 86400;
  // --- orphan removal ---
  int orphan_grace_s = 2 * 86400;   // longer than crawl_lease_max() (1 day), which the extension enforces
  int orphan_sweep_s = 600;         // how often orphans are looked for

  // --- alerts (decided by ha_alert_evaluate(); the agent measures its
  // store's disk and delivers what is due) ---
  int alert_interval_s = 5;         // how often alerts are evaluated; 0: never
  std::string alert_webhook_url;    // http(s) URL the notifications are POSTed to; empty: events only
  std::string alert_webhook_token_file;  // bearer token sent to the receiver (mode 600); empty: none
  std::string alert_webhook_ca_file;     // CA bundle of an https receiver (empty: the system's)
  int alert_webhook_timeout_ms = 5000;   // one delivery attempt, connection included
  int alert_webhook_attempts = 3;   // attempts per evaluation before it waits for the next

  // --- scheduled backups (`crawler-ha backup run` on whichever node is the
  // primary; docs/backup.md) ---
  std::string backup_config;        // pgBackRest configuration written by `backup setup`; empty: no schedule
  std::string backup_store;         // the store the blobs are copied from; empty: `store`
  int backup_full_interval_s = 604800;  // a full backup at least this often; 0: only the first
  int backup_diff_interval_s = 86400;   // a differential one; 0: never
  int backup_incr_interval_s = 3600;    // an incremental one; 0: never
  int backup_restore_test_interval_s = 86400;  // a restore test after a backup at most this often; 0: never
  std::string backup_scratch_dir = "/var/tmp";  // where the restore test restores (removed afterwards)
};

// The settings of `crawler-ha agent`: `args` is its command line after
// the command name; `--config FILE` reads FILE too (key = value, the long
// option names, `_` or `-`), the command line winning. Sets *help when
// --help was asked (nothing else is checked then). Throws
// crawler::ConfigError with a message for the user.
AgentConfig parse_agent_config(const std::vector<std::string>& args, bool* help);

// The options of `crawler-ha agent`, their defaults and meanings.
std::string agent_options_help();

// thumbnail_sizes as numbers, ascending, duplicates removed; nullopt
// (with *error) when it is not a list of 1 to 16 whole numbers from 16 to
// 2048 separated by commas.
std::optional<std::vector<int>> parse_thumbnail_sizes(const std::string& text, std::string* error);

// What is wrong with the settings themselves, one sentence each (empty:
// nothing): required settings missing, numbers out of range, no TLS
// without plain_http, a listen address that is not ADDRESS:PORT. Files are
// not opened here; the agent's start checks the store and the token file.
std::vector<std::string> agent_config_problems(const AgentConfig& config);

}  // namespace crawler::agent
