#include "crawler/options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/program_options.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace po = boost::program_options;

namespace crawler {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string CrawlRequest::options_json() const {
  std::ostringstream o;
  o << "{";
  bool first = true;
  auto key = [&](const char* k) {
    o << (first ? "" : ", ") << json_string(k) << ": ";
    first = false;
  };
  auto num = [&](const char* k, const auto& v) {
    if (v) {
      key(k);
      o << *v;
    }
  };
  num("max_depth", max_depth);
  num("max_pages", max_pages);
  num("per_host", per_host);
  num("delay_ms", delay_ms);
  num("max_attempts", max_attempts);
  num("min_width", min_width);
  num("min_height", min_height);
  num("max_page_bytes", max_page_bytes);
  num("max_image_bytes", max_image_bytes);
  num("max_pixels", max_pixels);
  if (!allow_domains.empty()) {
    key("allowed_domains");
    o << "[";
    for (std::size_t i = 0; i < allow_domains.size(); ++i)
      o << (i ? ", " : "") << json_string(allow_domains[i]);
    o << "]";
  }
  if (images_any_host) {
    key("images_any_host");
    o << "true";
  }
  if (no_robots) {
    key("robots");
    o << "false";
  }
  if (!user_agent.empty()) {
    key("user_agent");
    o << json_string(user_agent);
  }
  o << "}";
  return o.str();
}

std::string read_agent_token(const std::string& path) {
  auto refuse = [&](const std::string& why) { return std::runtime_error("--agent-token-file " + path + ": " + why); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw refuse(std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw refuse("not a regular file");
  }
  // A token others can read is a token others have; one they can write is
  // one they choose. ssh refuses such keys for the same reason.
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw refuse(std::string("its group or others may access it (mode ") + mode + "); chmod 600 it");
  }
  std::string token;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw refuse(std::strerror(errno));
    }
    if (n == 0) break;
    token.append(buf, static_cast<std::size_t>(n));
    if (token.size() > 4096) {
      ::close(fd);
      throw refuse("longer than 4096 bytes: not a token");
    }
  }
  ::close(fd);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) throw refuse("empty");
  for (unsigned char c : token)
    if (c <= 0x20 || c >= 0x7f) throw refuse("a token is printable ASCII without spaces (it goes into an HTTP header)");
  return token;
}

namespace {

template <typename T>
void copy_opt(const po::variables_map& vm, const char* name, std::optional<T>& to) {
  if (vm.count(name)) to = vm[name].as<T>();
}

std::string default_worker_id() {
  char host[256] = "worker";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

// The options, by the commands that take them, each bound to its field of
// `cmd`. The crawl options' defaults named in their help are the extension's
// (crawl_settings()), which applies them when an option is not given:
// t/250 holds the help text to them.
struct OptionGroups {
  po::options_description common{"Options of every command"};
  po::options_description worker{"Worker options (crawl and run)"};
  po::options_description crawl{"Crawl options (crawl)"};
  po::options_description status{"Status options (status)"};

  explicit OptionGroups(Command& cmd) {
    WorkerOptions& w = cmd.worker;
    CrawlRequest& c = cmd.crawl;
    common.add_options()
        ("help,h", "show this help")
        ("version", "show the version")
        ("config", po::value<std::string>(&cmd.config_file),
         "read options from this file too (key = value lines, the long option names; "
         "the command line wins)")
        ("db", po::value<std::string>(&w.db),
         "libpq conninfo of the database, e.g. 'host=a,b dbname=crawl "
         "target_session_attrs=read-write' (target_session_attrs=read-write is added when absent)")
        ("log-level", po::value<std::string>(&w.log_level)->default_value("info"),
         "debug, info, warning or error");

    worker.add_options()
        ("storage", po::value<std::string>(&w.storage),
         "directory of the content-addressed image store (ab/cd/<sha256>.<ext>) on this "
         "machine; or --storage-agent")
        ("storage-agent", po::bool_switch(&w.storage_agent),
         "store images through the primary node's agent (PUT /api/blobs/<sha256>.<ext>) instead "
         "of --storage: the database names it (crawl_blob_target()), also after a failover; a "
         "row is recorded only once its file is stored there")
        ("agent-token-file", po::value<std::string>(&w.agent_token_file),
         "file holding the agents' bearer token (required with --storage-agent; must not be "
         "accessible to group or others)")
        ("agent-ca-file", po::value<std::string>(&w.agent_ca_file),
         "CA certificates (PEM) that verify the agents' TLS certificates (default the system's)")
        ("spool", po::value<std::string>(&w.spool),
         "with --storage-agent: directory where downloaded images wait for their upload "
         "(default /var/tmp/crawler-worker; a file is removed once the agent has it)")
        ("max-spool-bytes", po::value<long long>(&w.max_spool_bytes)->default_value(1LL << 30),
         "with --storage-agent: at this many bytes of images waiting for the agent (also while "
         "no agent answers), no new URLs are claimed")
        ("worker-id", po::value<std::string>(&w.worker_id),
         "name of this worker in leases (default hostname:pid)")
        ("concurrency", po::value<int>(&w.concurrency)->default_value(16),
         "transfers at once in this worker")
        ("host-connections", po::value<int>(&w.host_connections)->default_value(8),
         "connections per host in this worker (the session's per_host limits leases)")
        ("claim-batch", po::value<int>(&w.claim_batch)->default_value(32),
         "URLs leased per crawl_claim() call")
        ("lease-seconds", po::value<int>(&w.lease_seconds)->default_value(60),
         "lease length; leases are renewed every third of it while work runs")
        ("connect-timeout-ms", po::value<int>(&w.connect_timeout_ms)->default_value(10000),
         "TCP/TLS connect timeout")
        ("timeout-ms", po::value<int>(&w.timeout_ms)->default_value(120000),
         "timeout of one whole transfer")
        ("low-speed-bytes", po::value<int>(&w.low_speed_bytes)->default_value(1000),
         "a transfer slower than this many bytes per second ...")
        ("low-speed-seconds", po::value<int>(&w.low_speed_seconds)->default_value(20),
         "... for this many seconds is abandoned as a timeout")
        ("max-redirects", po::value<int>(&w.max_redirects)->default_value(5),
         "redirects followed per URL")
        ("max-retry-after", po::value<int>(&w.max_retry_after_s)->default_value(3600),
         "longest Retry-After (seconds) honoured; longer ones are capped")
        ("max-pending-writes", po::value<int>(&w.max_pending_writes)->default_value(2000),
         "finished results kept in memory until the database acknowledges them; "
         "at this many, new fetches wait")
        ("db-connections", po::value<int>(&w.db_connections)->default_value(1),
         "database connections for results (one more carries claims and status); the calls "
         "about one URL always use the same one, in order. Each sends its results in batches of "
         "one transaction; two such connections can deadlock on the session's counters (retried "
         "after deadlock_timeout), so 1 is usually fastest")
        ("user-agent", po::value<std::string>(&w.user_agent),
         "User-Agent sent (crawl: stored as the session's user_agent; run: overrides sessions)");

    crawl.add_options()
        ("seed", po::value<std::vector<std::string>>(&c.seeds)->composing(),
         "start URL (repeat for several)")
        ("max-depth", po::value<int>(), "pages deeper than this are not followed (default 5)")
        ("max-pages", po::value<int>(), "at most this many pages per session (default 100000)")
        ("per-host", po::value<int>(), "leased URLs per host at once, across all workers (default 2)")
        ("delay-ms", po::value<int>(), "politeness delay between two fetches of one host (default 1000)")
        ("max-attempts", po::value<int>(), "tries per URL before it fails for good (default 3)")
        ("allow-domain", po::value<std::vector<std::string>>(&c.allow_domains)->composing(),
         "follow pages on this domain and its subdomains (repeat; default the seeds' hosts)")
        ("images-any-host", po::bool_switch(&c.images_any_host), "store images from any host (CDNs)")
        ("no-robots", po::bool_switch(&c.no_robots), "ignore robots.txt")
        ("min-width", po::value<int>(), "images narrower than this are not stored")
        ("min-height", po::value<int>(), "images lower than this are not stored")
        ("max-page-bytes", po::value<long long>(), "largest page body (default 10 MiB)")
        ("max-image-bytes", po::value<long long>(), "largest image body (default 50 MiB)")
        ("max-pixels", po::value<long long>(), "largest width*height (default 100 million)");

    status.add_options()("session", po::value<long long>(), "show this session only");

  }
};

std::string help_text(const po::options_description& visible) {
  std::ostringstream help;
  help << "crawler-worker " << CRAWLER_VERSION
       << ": crawls web sites for images into crawler_ha (PostgreSQL)\n\n"
          "Usage:\n"
          "  crawler-worker crawl --db CONNINFO --storage DIR --seed URL [--seed URL ...] [options]\n"
          "      start a crawl session (crawl_start()), crawl it to the end, print a summary;\n"
          "      exit status 0 when the session finished with at least one page fetched\n"
          "  crawler-worker run --db CONNINFO --storage DIR [options]\n"
          "  crawler-worker run --db CONNINFO --storage-agent --agent-token-file FILE [options]\n"
          "      the service: work on every running session; SIGTERM stops gracefully\n"
          "      (leases returned), SIGHUP re-reads the config file\n"
          "  crawler-worker status --db CONNINFO [--session ID]\n"
          "      sessions, queue, recent errors and ha_status()\n\n"
       << visible;
  return help.str();
}

// What no option parser checks: the command, what it requires, the ranges.
void check_command(Command& cmd) {
  WorkerOptions& w = cmd.worker;
  CrawlRequest& c = cmd.crawl;
  if (cmd.name != "crawl" && cmd.name != "run" && cmd.name != "status")
    throw std::runtime_error("unknown command \"" + cmd.name +
                             "\": use crawl, run or status (see crawler-worker --help)");
  if (w.db.empty()) throw std::runtime_error("--db CONNINFO is required");
  if (cmd.name != "status") {
    if (w.storage.empty() && !w.storage_agent)
      throw std::runtime_error("--storage DIR or --storage-agent is required");
    if (!w.storage.empty() && w.storage_agent)
      throw std::runtime_error("--storage and --storage-agent exclude each other: files go to one place");
    if (w.storage_agent) {
      if (w.agent_token_file.empty())
        throw std::runtime_error("--storage-agent needs --agent-token-file FILE");
      w.agent_token = read_agent_token(w.agent_token_file);
      if (w.spool.empty()) w.spool = kDefaultSpool;
      if (w.max_spool_bytes < 1) throw std::runtime_error("--max-spool-bytes must be at least 1");
    }
  }
  if (cmd.name == "crawl" && c.seeds.empty())
    throw std::runtime_error("crawl needs at least one --seed URL");
  auto positive = [](int v, const char* name) {
    if (v < 1) throw std::runtime_error(std::string("--") + name + " must be at least 1");
  };
  positive(w.concurrency, "concurrency");
  positive(w.host_connections, "host-connections");
  positive(w.claim_batch, "claim-batch");
  positive(w.lease_seconds, "lease-seconds");
  positive(w.max_pending_writes, "max-pending-writes");
  positive(w.db_connections, "db-connections");
  positive(w.timeout_ms, "timeout-ms");
  positive(w.connect_timeout_ms, "connect-timeout-ms");
  if (w.lease_seconds < 3) throw std::runtime_error("--lease-seconds must be at least 3");
  if (w.worker_id.empty()) w.worker_id = default_worker_id();
  if (c.per_host && *c.per_host > w.host_connections) w.host_connections = *c.per_host;
}

Command parse_command_line(int argc, const char* const argv[]) {
  Command cmd;
  WorkerOptions& w = cmd.worker;
  CrawlRequest& c = cmd.crawl;
  OptionGroups groups(cmd);

  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&cmd.name));
  po::positional_options_description pos;
  pos.add("command", 1);

  po::options_description all;
  all.add(groups.common).add(groups.worker).add(groups.crawl).add(groups.status).add(hidden);
  po::options_description visible;
  visible.add(groups.common).add(groups.worker).add(groups.crawl).add(groups.status);
  cmd.help_text = help_text(visible);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    if (vm.count("config")) {
      std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw std::runtime_error("cannot read config file " + path);
      po::store(po::parse_config_file(in, all), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::runtime_error(std::string(e.what()) + " (see crawler-worker --help)");
  }
  if (vm.count("help") || cmd.name.empty() || cmd.name == "help") {
    cmd.name = "help";
    return cmd;
  }
  if (vm.count("version")) {
    cmd.name = "version";
    return cmd;
  }
  if (!w.storage_agent)
    for (const char* agent_only : {"agent-token-file", "agent-ca-file", "spool"})
      if (vm.count(agent_only))
        throw std::runtime_error(std::string("--") + agent_only + " applies only with --storage-agent");
  copy_opt(vm, "max-depth", c.max_depth);
  copy_opt(vm, "max-pages", c.max_pages);
  copy_opt(vm, "per-host", c.per_host);
  copy_opt(vm, "delay-ms", c.delay_ms);
  copy_opt(vm, "max-attempts", c.max_attempts);
  copy_opt(vm, "min-width", c.min_width);
  copy_opt(vm, "min-height", c.min_height);
  copy_opt(vm, "max-page-bytes", c.max_page_bytes);
  copy_opt(vm, "max-image-bytes", c.max_image_bytes);
  copy_opt(vm, "max-pixels", c.max_pixels);
  if (vm.count("session")) cmd.session = vm["session"].as<long long>();
  c.user_agent = w.user_agent;
  check_command(cmd);
  return cmd;
}

}  // namespace crawler
