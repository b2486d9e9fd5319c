#include "crawler/agent/config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <sstream>

#include "crawler/agent/server/client_networks.hpp"
#include "crawler/agent/server/listen_address.hpp"
#include "crawler/config_file.hpp"

namespace po = boost::program_options;

namespace crawler::agent {
namespace {

// Each option bound to its field of `c`; the struct's initializers are the
// defaults, so a default is written in one place only.
po::options_description agent_options(AgentConfig& c) {
  po::options_description node{"This node"};
  node.add_options()
      ("help,h", "show this help")
      ("config", po::value<std::string>(), "read settings from this file too (key = value lines, "
       "the long option names with - or _; the command line wins)")
      ("db", po::value(&c.db), "libpq conninfo of this node's own PostgreSQL")
      ("store", po::value(&c.store), "root directory of this node's content-addressed blob store")
      ("log-level", po::value(&c.log_level)->default_value(c.log_level),
       "debug, info, warning or error");

  po::options_description http{"Application port (blob routes)"};
  http.add_options()
      ("listen", po::value(&c.listen)->default_value(c.listen),
       "ADDRESS:PORT to serve on ([::]:8000 for IPv6; port 0 picks a free port)")
      ("tls-cert-file", po::value(&c.tls_cert_file), "PEM certificate chain")
      ("tls-key-file", po::value(&c.tls_key_file), "PEM private key")
      ("plain-http", po::value(&c.plain_http)->default_value(c.plain_http)->implicit_value(true),
       "serve plain HTTP, without TLS (only on a trusted network)")
      ("token-file", po::value(&c.token_file),
       "file holding the bearer token of writes and agent-to-agent calls (mode 600; "
       "SIGHUP re-reads it)")
      ("api-tokens-file", po::value(&c.api_tokens_file),
       "file of scoped API tokens, hashed: lines \"<read|operate|admin> <sha256> [name]\" (mode 600; "
       "crawler-ha token add writes them; SIGHUP re-reads it)")
      ("read-token-required",
       po::value(&c.read_token_required)->default_value(c.read_token_required)->implicit_value(true),
       "reads (GET, HEAD, status) need the token too")
      ("max-blob-bytes", po::value(&c.max_blob_bytes)->default_value(c.max_blob_bytes),
       "largest blob a PUT may store (larger: 413)")
      ("max-connections", po::value(&c.max_connections)->default_value(c.max_connections),
       "connections served at once; more are answered 503 and closed")
      ("allowed-clients", po::value(&c.allowed_clients)->default_value(c.allowed_clients),
       "client networks served on both ports, CIDRs separated by commas (10.0.0.0/8, ::1); "
       "others are answered 403. all: every client")
      ("rate-limit-per-second", po::value(&c.rate_limit_per_second)->default_value(c.rate_limit_per_second),
       "requests per second one client (an IPv4 address, an IPv6 /64) may make on each port; more "
       "are answered 429 with Retry-After. 0: no limit")
      ("rate-limit-burst", po::value(&c.rate_limit_burst)->default_value(c.rate_limit_burst),
       "requests a client may make at once before the rate applies")
      ("header-timeout-ms", po::value(&c.header_timeout_ms)->default_value(c.header_timeout_ms),
       "a request's headers (and the TLS handshake) must arrive within this")
      ("idle-timeout-ms", po::value(&c.idle_timeout_ms)->default_value(c.idle_timeout_ms),
       "a body that moves no byte for this long ends its connection")
      ("keep-alive-timeout-ms",
       po::value(&c.keep_alive_timeout_ms)->default_value(c.keep_alive_timeout_ms),
       "a kept-alive connection idle between requests for this long is closed")
      ("max-header-bytes", po::value(&c.max_header_bytes)->default_value(c.max_header_bytes),
       "largest header block of a request (larger: 431)")
      ("threads", po::value(&c.threads)->default_value(c.threads), "event loop threads")
      ("shutdown-timeout-ms",
       po::value(&c.shutdown_timeout_ms)->default_value(c.shutdown_timeout_ms),
       "on SIGTERM, requests in flight may finish within this")
      ("port-file", po::value(&c.port_file), "write the bound port to this file once listening");

  po::options_description ha{"HA port (load-balancer checks, cluster status)"};
  ha.add_options()
      ("ha-listen", po::value(&c.ha_listen)->default_value(c.ha_listen),
       "ADDRESS:PORT of the HA API (/primary, /replica, /read-only, /health, /api/status); "
       "off: none. TLS, token and limits as the application port")
      ("ha-port-file", po::value(&c.ha_port_file), "write the HA port's bound port to this file")
      ("api-db-sessions", po::value(&c.api_db_sessions)->default_value(c.api_db_sessions),
       "database sessions answering the HTTP API's SQL calls");

  po::options_description thumbs{"Thumbnails (GET /api/images/ID/thumbnail?size=N)"};
  thumbs.add_options()
      ("thumbnail-sizes", po::value(&c.thumbnail_sizes)->default_value(c.thumbnail_sizes),
       "the sizes served, longer side in pixels, comma-separated (16 to 2048, at most 16 sizes)")
      ("thumbnail-threads", po::value(&c.thumbnail_threads)->default_value(c.thumbnail_threads),
       "threads making thumbnails")
      ("thumbnail-queue", po::value(&c.thumbnail_queue)->default_value(c.thumbnail_queue),
       "thumbnails waiting to be made at most; more are answered 503")
      ("thumbnail-max-pixels", po::value(&c.thumbnail_max_pixels)->default_value(c.thumbnail_max_pixels),
       "a source image with more pixels gets no thumbnail (422)");

  po::options_description sync{"File sync, scrub and orphan removal"};
  sync.add_options()
      ("ca-file", po::value(&c.ca_file), "CA bundle that verifies the peer agent's certificate "
       "(default: the system's)")
      ("peer-timeout-ms", po::value(&c.peer_timeout_ms)->default_value(c.peer_timeout_ms),
       "connect and idle timeout of a transfer from the peer")
      ("sync-concurrency", po::value(&c.sync_concurrency)->default_value(c.sync_concurrency),
       "blobs fetched from the peer at once")
      ("sync-bandwidth-bytes",
       po::value(&c.sync_bandwidth_bytes)->default_value(c.sync_bandwidth_bytes),
       "bytes per second for all fetches together (0: no limit)")
      ("sync-poll-ms", po::value(&c.sync_poll_ms)->default_value(c.sync_poll_ms),
       "how often the wanted queue is read when idle")
      ("scrub-bytes-per-second",
       po::value(&c.scrub_bytes_per_second)->default_value(c.scrub_bytes_per_second),
       "re-hashing rate of stored blobs (0: no scrub)")
      ("scrub-min-age-s", po::value(&c.scrub_min_age_s)->default_value(c.scrub_min_age_s),
       "a blob hashed (stored, fetched or scrubbed) less than this long ago is not re-hashed")
      ("orphan-grace-s", po::value(&c.orphan_grace_s)->default_value(c.orphan_grace_s),
       "an unreferenced blob is kept this long before removal")
      ("orphan-sweep-s", po::value(&c.orphan_sweep_s)->default_value(c.orphan_sweep_s),
       "how often orphans are looked for");

  po::options_description alerts{"Alerts (evaluated by the database's ha_alert_evaluate())"};
  alerts.add_options()
      ("alert-interval-s", po::value(&c.alert_interval_s)->default_value(c.alert_interval_s),
       "how often alerts are evaluated (0: never)")
      ("alert-webhook-url", po::value(&c.alert_webhook_url),
       "http(s) URL that notifications are POSTed to, in Alertmanager's webhook format "
       "(empty: alerts are only recorded as HA events)")
      ("alert-webhook-token-file", po::value(&c.alert_webhook_token_file),
       "file holding a bearer token for the receiver (mode 600)")
      ("alert-webhook-ca-file", po::value(&c.alert_webhook_ca_file),
       "CA bundle that verifies an https receiver (default: the system's)")
      ("alert-webhook-timeout-ms",
       po::value(&c.alert_webhook_timeout_ms)->default_value(c.alert_webhook_timeout_ms),
       "time for one delivery attempt")
      ("alert-webhook-attempts",
       po::value(&c.alert_webhook_attempts)->default_value(c.alert_webhook_attempts),
       "delivery attempts per evaluation (a notification still undelivered is due again at the next)");

  po::options_description backups{"Scheduled backups (crawler-ha backup run on the primary)"};
  backups.add_options()
      ("backup-config", po::value(&c.backup_config),
       "the pgBackRest configuration file crawler-ha backup setup wrote on this node (empty: no "
       "scheduled backups)")
      ("backup-store", po::value(&c.backup_store),
       "the blob store the backups copy blobs from (default: --store)")
      ("backup-full-interval-s",
       po::value(&c.backup_full_interval_s)->default_value(c.backup_full_interval_s),
       "a full backup when the newest is older than this (0: only the first one)")
      ("backup-diff-interval-s",
       po::value(&c.backup_diff_interval_s)->default_value(c.backup_diff_interval_s),
       "a differential backup when the newest full or differential one is older than this (0: never)")
      ("backup-incr-interval-s",
       po::value(&c.backup_incr_interval_s)->default_value(c.backup_incr_interval_s),
       "an incremental backup when the newest backup of any type is older than this (0: never)")
      ("backup-restore-test-interval-s",
       po::value(&c.backup_restore_test_interval_s)->default_value(c.backup_restore_test_interval_s),
       "after a scheduled backup, restore it into a scratch cluster and compare it with what it recorded "
       "(crawler-ha backup test-restore) when the last test is older than this (0: never)")
      ("backup-scratch-dir", po::value(&c.backup_scratch_dir)->default_value(c.backup_scratch_dir),
       "where the restore test restores (it needs the database's size; removed afterwards)");

  po::options_description all;
  all.add(node).add(http).add(ha).add(thumbs).add(sync).add(alerts).add(backups);
  return all;
}

}  // namespace

AgentConfig parse_agent_config(const std::vector<std::string>& args, bool* help) {
  AgentConfig config;
  po::options_description options = agent_options(config);
  po::variables_map vm = read_config(args, options);
  *help = vm.count("help") > 0;
  return config;
}

std::string agent_options_help() {
  AgentConfig defaults;
  std::ostringstream out;
  out << agent_options(defaults);
  return out.str();
}

std::optional<std::vector<int>> parse_thumbnail_sizes(const std::string& text, std::string* error) {
  std::vector<int> sizes;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty() || item.size() > 4 || item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(item) < 16 || std::stoi(item) > 2048) {
      *error = "\"" + item.substr(0, 32) + "\" is not a size: whole numbers from 16 to 2048, comma-separated";
      return std::nullopt;
    }
    sizes.push_back(std::stoi(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  if (sizes.size() > 16) {
    *error = "at most 16 sizes";
    return std::nullopt;
  }
  return sizes;
}

std::vector<std::string> agent_config_problems(const AgentConfig& c) {
  std::vector<std::string> problems;
  auto at_least = [&](long long value, long long min, const char* name) {
    if (value < min)
      problems.push_back(std::string(name) + " is " + std::to_string(value) + ": it must be at least " +
                         std::to_string(min));
  };
  if (c.store.empty()) problems.push_back("store is required: the directory of the blob store");
  if (c.token_file.empty())
    problems.push_back("token_file is required: writes are refused without a token");
  if (c.plain_http && (!c.tls_cert_file.empty() || !c.tls_key_file.empty()))
    problems.push_back("plain_http is set together with a TLS certificate or key: choose one");
  if (!c.plain_http && (c.tls_cert_file.empty() || c.tls_key_file.empty()))
    problems.push_back(
        "no TLS certificate and key (tls_cert_file, tls_key_file): set both, or plain_http = true "
        "to serve without TLS on a trusted network");
  if (c.max_blob_bytes == 0) problems.push_back("max_blob_bytes is 0: no blob could be stored");
  at_least(c.max_connections, 1, "max_connections");
  at_least(c.header_timeout_ms, 1, "header_timeout_ms");
  at_least(c.idle_timeout_ms, 1, "idle_timeout_ms");
  at_least(c.keep_alive_timeout_ms, 1, "keep_alive_timeout_ms");
  // A request line and a few ordinary headers must fit.
  at_least(c.max_header_bytes, 1024, "max_header_bytes");
  at_least(c.threads, 1, "threads");
  at_least(c.shutdown_timeout_ms, 0, "shutdown_timeout_ms");
  std::string error;
  if (!parse_listen_address(c.listen, &error)) problems.push_back(error);
  if (c.ha_listen != "off") {
    if (!parse_listen_address(c.ha_listen, &error)) problems.push_back("ha_listen: " + error);
    else if (c.ha_listen == c.listen && c.listen.substr(c.listen.rfind(':')) != ":0")
      problems.push_back("ha_listen and listen are both " + c.listen + ": the two ports must differ");
  }
  at_least(c.api_db_sessions, 1, "api_db_sessions");
  if (!parse_thumbnail_sizes(c.thumbnail_sizes, &error)) problems.push_back("thumbnail_sizes: " + error);
  at_least(c.thumbnail_threads, 1, "thumbnail_threads");
  at_least(c.thumbnail_queue, 1, "thumbnail_queue");
  if (c.thumbnail_max_pixels < 1) problems.push_back("thumbnail_max_pixels must be at least 1");
  if (!ClientNetworks::parse(c.allowed_clients, &error)) problems.push_back("allowed_clients: " + error);
  if (!(c.rate_limit_per_second >= 0) || c.rate_limit_per_second > 1e9)
    problems.push_back("rate_limit_per_second must be from 0 (no limit) to 1e9");
  if (c.rate_limit_per_second > 0 && !(c.rate_limit_burst >= 1 && c.rate_limit_burst <= 1e9))
    problems.push_back("rate_limit_burst must be from 1 to 1e9");
  at_least(c.alert_interval_s, 0, "alert_interval_s");
  at_least(c.alert_webhook_timeout_ms, 100, "alert_webhook_timeout_ms");
  at_least(c.alert_webhook_attempts, 1, "alert_webhook_attempts");
  if (!c.alert_webhook_url.empty() && c.alert_webhook_url.rfind("http://", 0) != 0 &&
      c.alert_webhook_url.rfind("https://", 0) != 0)
    problems.push_back("alert_webhook_url must start with http:// or https://");
  at_least(c.backup_full_interval_s, 0, "backup_full_interval_s");
  at_least(c.backup_diff_interval_s, 0, "backup_diff_interval_s");
  at_least(c.backup_incr_interval_s, 0, "backup_incr_interval_s");
  at_least(c.backup_restore_test_interval_s, 0, "backup_restore_test_interval_s");
  if (c.backup_scratch_dir.empty() || c.backup_scratch_dir.front() != '/')
    problems.push_back("backup_scratch_dir must be an absolute path");
  // The path goes to a child's command line and to pgBackRest: a relative
  // one would depend on the agent's working directory.
  if (!c.backup_config.empty() && c.backup_config.front() != '/')
    problems.push_back("backup_config must be an absolute path");
  if (!c.backup_store.empty() && c.backup_store.front() != '/')
    problems.push_back("backup_store must be an absolute path");
  return problems;
}

}  // namespace crawler::agent
