#include "crawler/options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "crawler/log.hpp"
#include "crawler/sql_literal.hpp"
#include "crawler/url.hpp"

namespace po = boost::program_options;

namespace crawler {

std::string CrawlRequest::options_json() const {
  nlohmann::json o = nlohmann::json::object();
  auto num = [&](const char* k, const auto& v) {
    if (v) o[k] = *v;
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
  num("image_expiry_s", image_expiry_s);
  if (!allow_domains.empty()) o["allowed_domains"] = allow_domains;
  if (!accept_pages.empty()) o["accept_pages"] = accept_pages;
  if (!reject_pages.empty()) o["reject_pages"] = reject_pages;
  if (!accept_images.empty()) o["accept_images"] = accept_images;
  if (!reject_images.empty()) o["reject_images"] = reject_images;
  if (images_any_host) o["images_any_host"] = true;
  if (no_robots) o["robots"] = false;
  if (random_wait) o["random_wait"] = true;
  if (!scope.empty()) o["scope"] = scope;
  if (no_sitemaps) o["sitemaps"] = false;
  if (!user_agent.empty()) o["user_agent"] = user_agent;
  for (const std::string& t : thumbnails) {
    // NAME=SIZE, checked when parsed (parse_command); the range is the extension's.
    auto eq = t.find('=');
    o["thumbnails"][t.substr(0, eq)] = std::stoll(t.substr(eq + 1));
  }
  return json_text(o);
}

std::string json_text(const nlohmann::json& j) {
  // Bytes that are not UTF-8 (a server's header, a hostile page) become
  // U+FFFD instead of an exception: the database refuses them anyway.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_text(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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

const char* const kCommands[] = {"crawl", "run", "status", "export"};

bool known_command(const std::string& name) {
  for (const char* c : kCommands)
    if (name == c) return true;
  return false;
}

// Which commands take the options of a group.
enum class Group { common, storage, worker, crawl, session, status, exporting };

bool group_applies(Group g, const std::string& command) {
  switch (g) {
    case Group::common: return true;
    case Group::storage: return command == "crawl" || command == "run" || command == "export";
    case Group::worker: return command == "crawl" || command == "run";
    case Group::crawl: return command == "crawl";
    case Group::session: return command == "status" || command == "export";
    case Group::status: return command == "status";
    case Group::exporting: return command == "export";
  }
  return false;
}

const char* group_commands(Group g) {
  switch (g) {
    case Group::common: return "every command";
    case Group::storage: return "crawl, run and export";
    case Group::worker: return "crawl and run";
    case Group::crawl: return "crawl";
    case Group::session: return "status and export";
    case Group::status: return "status";
    case Group::exporting: return "export";
  }
  return "";
}

// Commands that read the service's config file as it is: the options of
// the commands that do the crawling are checked there and ignored.
bool reads_service_config(const std::string& command) { return command == "status" || command == "export"; }

// Edit distance, for "did you mean": a misspelt name is one or two edits
// away from the one meant.
std::size_t edits(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

// The options, by the commands that take them, each bound to its field of
// `cmd`. The crawl options' defaults named in their help are the extension's
// (crawl_settings()), which applies them when an option is not given:
// t/250 holds the help text to them.
struct OptionGroups {
  po::options_description common{"Options of every command"};
  po::options_description storage{"Storage options (crawl, run and export)"};
  po::options_description worker{"Worker options (crawl and run)"};
  po::options_description crawl{"Crawl options (crawl)"};
  po::options_description session{"Session option (status and export)"};
  po::options_description status{"Status options (status)"};
  po::options_description exporting{"Export options (export)"};

  explicit OptionGroups(Command& cmd) {
    WorkerOptions& w = cmd.worker;
    CrawlRequest& c = cmd.crawl;
    StatusRequest& s = cmd.status;
    ExportRequest& x = cmd.export_request;
    common.add_options()
        ("help,h", "show the help of the command (of the program without one)")
        ("version", "show the version")
        ("config", po::value<std::string>(&cmd.config_file),
         "read options from this file too (lines `key = value`, the long option names; a boolean "
         "option alone on its line means true; # starts a comment; the command line wins)")
        ("db", po::value<std::string>(&w.db),
         "libpq conninfo of the database, e.g. 'host=a,b dbname=crawl "
         "target_session_attrs=read-write' (crawl and run add target_session_attrs=read-write when "
         "absent; status and export take any node)")
        ("log-level", po::value<std::string>(&w.log_level)->default_value("info"),
         "debug, info, warning or error");

    storage.add_options()
        ("storage", po::value<std::string>(&w.storage),
         "directory of the content-addressed image store (ab/cd/<sha256>.<ext>) on this "
         "machine; or --storage-agent")
        ("storage-agent", po::bool_switch(&w.storage_agent),
         "store images through the primary node's agent (PUT /api/blobs/<sha256>.<ext>) instead "
         "of --storage: the database names it (crawl_blob_target()), also after a failover; a "
         "row is recorded only once its file is stored there (export: read them from the agent "
         "of the node it reads from, GET /api/blobs/<sha256>)")
        ("agent-token-file", po::value<std::string>(&w.agent_token_file),
         "file holding the agents' bearer token (required with --storage-agent; must not be "
         "accessible to group or others)")
        ("agent-ca-file", po::value<std::string>(&w.agent_ca_file),
         "CA certificates (PEM) that verify the agents' TLS certificates (default the system's)");

    worker.add_options()
        ("spool", po::value<std::string>(&w.spool),
         "with --storage-agent: directory where downloaded images wait for their upload "
         "(default /var/tmp/crawler-worker; a file is removed once the agent has it; images of "
         "at most 64 KiB without thumbnails wait in memory, 64 MiB of them at most)")
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
         "one transaction; connections do not wait for each other (each counts in its own row), "
         "but all share the disk's commit rate")
        ("no-early-fetch", po::bool_switch(&w.no_early_fetch),
         "fetch a URL only once the frontier leases it (by default, a page's links on its own "
         "host are fetched while they are queued, when the session's delay is 0, robots.txt "
         "allows them without a Crawl-delay and per_host has room; the frontier still decides "
         "whether the result is used)")
        ("user-agent", po::value<std::string>(&w.user_agent),
         "User-Agent sent (crawl: stored as the session's user_agent; run: overrides sessions)")
        ("proxy", po::value<std::string>(&w.proxy),
         "send every request through this proxy: http://, https://, socks4://, socks4a://, socks5:// or "
         "socks5h:// HOST[:PORT] (default: none, or the http_proxy/https_proxy environment)")
        ("cookies", po::value<std::string>(&w.cookies_file),
         "send cookies from FILE (the Netscape cookie file format of curl and wget: a site's login "
         "or consent); cookies the servers set during the crawl are kept too");

    crawl.add_options()
        ("seed", po::value<std::vector<std::string>>(&c.seeds)->composing(),
         "start URL (repeat for several)")
        ("seeds-file", po::value<std::string>(&c.seeds_file),
         "start URLs from FILE, one per line (blank lines and #comments skipped); with --seed, both")
        ("stats-json", po::value<std::string>(&c.stats_json),
         "write the crawl's statistics to FILE as JSON when it ends (counts, success rate, responses "
         "by status, failures by kind)")
        ("max-depth", po::value<int>(), "pages deeper than this are not followed (default 5)")
        ("max-pages", po::value<int>(), "at most this many pages per session (default 100000)")
        ("per-host", po::value<int>(), "leased URLs per host at once, across all workers (default 2)")
        ("delay-ms", po::value<int>(), "politeness delay between two fetches of one host (default 1000)")
        ("max-attempts", po::value<int>(), "tries per URL before it fails for good (default 3)")
        ("allow-domain", po::value<std::vector<std::string>>(&c.allow_domains)->composing(),
         "follow pages on this domain and its subdomains (repeat; default the seeds' hosts). A public "
         "suffix (com, co.uk, github.io) is refused")
        ("scope", po::value<std::string>(&c.scope),
         "without --allow-domain, the domains the crawl stays in: hosts (the seeds' hosts and their "
         "subdomains, the default) or site (the seeds' registrable domains by the Public Suffix List: "
         "a seed www.example.co.uk crawls *.example.co.uk)")
        ("images-any-host", po::bool_switch(&c.images_any_host), "store images from any host (CDNs)")
        ("accept-page", po::value<std::vector<std::string>>(&c.accept_pages)->composing(),
         "follow only pages whose URL matches this POSIX regular expression (repeat: any of them; "
         "seeds are always crawled)")
        ("reject-page", po::value<std::vector<std::string>>(&c.reject_pages)->composing(),
         "never follow pages whose URL matches this POSIX regular expression (repeat)")
        ("accept-image", po::value<std::vector<std::string>>(&c.accept_images)->composing(),
         "store only images whose URL matches this POSIX regular expression (repeat: any of them)")
        ("reject-image", po::value<std::vector<std::string>>(&c.reject_images)->composing(),
         "never store images whose URL matches this POSIX regular expression (repeat)")
        ("no-robots", po::bool_switch(&c.no_robots), "ignore robots.txt")
        ("random-wait", po::bool_switch(&c.random_wait),
         "wait 0.5 to 1.5 times --delay-ms between two fetches of a host, drawn anew each time (as wget's "
         "--random-wait); a robots.txt Crawl-delay is never shortened")
        ("no-sitemaps", po::bool_switch(&c.no_sitemaps),
         "do not follow the Sitemap: lines of robots.txt (by default the sitemaps each host's robots.txt "
         "names are crawled: the pages and images they list, sitemap indexes, gzipped or not; with "
         "--no-robots no robots.txt is read, so only --sitemap ones are)")
        ("sitemap", po::value<std::vector<std::string>>(&c.sitemaps)->composing(),
         "a sitemap to start from, besides the seeds (repeat for several; XML, gzipped or not, a sitemap "
         "index or a list of URLs); it must be within the crawl's domains")
        ("thumbnail", po::value<std::vector<std::string>>(&c.thumbnails)->composing(),
         "NAME=SIZE: also store a thumbnail of each image that fits a SIZE x SIZE box (16 to 4096, aspect "
         "kept, never enlarged; JPEG, or PNG for images with transparency), recorded with the image under "
         "NAME (a lower-case letter, then up to 31 of a-z, 0-9, _); repeat for up to 8 sizes")
        ("min-width", po::value<int>(), "images narrower than this are not stored")
        ("min-height", po::value<int>(), "images lower than this are not stored")
        ("max-page-bytes", po::value<long long>(), "largest page body (default 10 MiB)")
        ("max-image-bytes", po::value<long long>(), "largest image body (default 50 MiB)")
        ("max-pixels", po::value<long long>(), "largest width*height (default 100 million)")
        ("image-expiry-s", po::value<long long>(),
         "known images confirmed within this many seconds (90 days by default) are not fetched again; older "
         "ones are asked for with their validators (If-None-Match, If-Modified-Since); 0 revalidates every "
         "one (default 7776000)");

    session.add_options()
        ("session", po::value<long long>(),
         "status: show this session only; export: the session exported (required). Exit status 1 "
         "when it does not exist");

    status.add_options()
        ("wide", po::bool_switch(&s.wide), "every column of every table, nothing cut (the tables fit 100 "
         "columns without it)")
        ("json", po::bool_switch(&s.json), "everything as one JSON object: the database, sessions, "
         "recent_errors and ha_status, every column, values as PostgreSQL's text (null for NULL)");

    exporting.add_options()
        ("format", po::value<std::string>(&x.format),
         "jsonl (one JSON object per image), csv (RFC 4180, a header row) or webdataset (tar "
         "shards of the images and their JSON, as img2dataset writes them)")
        ("output", po::value<std::string>(&x.output),
         "jsonl and csv: the file written (`-`: standard output); webdataset: the directory of the "
         "shards (new or empty). Files appear whole, renamed into place when complete")
        ("shard-size", po::value<long long>(&x.shard_size),
         "webdataset: images per shard (default 10000)");
  }

  // The group an option belongs to (by its long name); nullopt when none.
  std::optional<Group> group_of(const std::string& name) const {
    for (auto [desc, g] : {std::pair{&common, Group::common}, std::pair{&storage, Group::storage},
                           std::pair{&worker, Group::worker}, std::pair{&crawl, Group::crawl},
                           std::pair{&session, Group::session}, std::pair{&status, Group::status},
                           std::pair{&exporting, Group::exporting}})
      if (desc->find_nothrow(name, false)) return g;
    return std::nullopt;
  }

  // The known option nearest to `name` (one or two edits away), or "".
  std::string nearest(const std::string& name) const {
    std::string best;
    std::size_t best_edits = 3;
    for (const auto* desc : {&common, &storage, &worker, &crawl, &session, &status, &exporting})
      for (const auto& o : desc->options()) {
        std::size_t e = edits(name, o->long_name());
        if (e < best_edits) {
          best_edits = e;
          best = o->long_name();
        }
      }
    return best;
  }
};

namespace {

// The exit statuses of each command, as their help and the man page give them.
const char* exit_statuses(const std::string& command) {
  if (command == "crawl")
    return "Exit status:\n"
           "  0    the session finished and at least one page was fetched\n"
           "  1    the session ended otherwise (stopped, nothing fetched); or the database\n"
           "       cannot be used (a conninfo, host name, password or database that cannot\n"
           "       work: said at once) or did not answer within 60 s; or the --stats-json\n"
           "       file could not be written\n"
           "  2    bad command line or config file, bad seed, unusable storage or spool\n"
           "       directory, crawl_start() refused, or the agent refused the token\n"
           "  3    interrupted (SIGINT/SIGTERM): leases returned; the session is still\n"
           "       running and any `crawler-worker run` continues it\n"
           "  130  a second SIGINT/SIGTERM while stopping: ended at once, without waiting\n"
           "       for the database (unreturned leases expire)\n";
  if (command == "run")
    return "Exit status:\n"
           "  0    stopped by SIGINT/SIGTERM: leases returned, results written\n"
           "  1    the database cannot be used (a conninfo, host name, password or database\n"
           "       that cannot work: said at once; a database that is down is waited for),\n"
           "       or the agent refused the token\n"
           "  2    bad command line or config file, unusable storage or spool directory\n"
           "       (the unit's RestartPreventExitStatus=2: systemd does not restart it)\n"
           "  130  a second SIGINT/SIGTERM while stopping: ended at once, without waiting\n"
           "       for the database (unreturned leases expire)\n";
  if (command == "status")
    return "Exit status:\n"
           "  0    shown\n"
           "  1    the database cannot be used or no node answered within 30 s, or the\n"
           "       session of --session does not exist\n"
           "  2    bad command line or config file\n";
  if (command == "export")
    return "Exit status:\n"
           "  0    every image of the session exported\n"
           "  1    the database cannot be used or no node answered within 30 s, the session\n"
           "       does not exist, the output could not be written, the agent could not be\n"
           "       reached, or images were skipped (missing, or not matching their sha256:\n"
           "       each said on stderr and in the shard's _stats.json; the rest exported)\n"
           "  2    bad command line or config file, an output that cannot be written\n"
           "       (said before anything is read), or the agent refused the token\n"
           "  3    interrupted (SIGINT/SIGTERM): the files under way removed, finished\n"
           "       shards kept\n";
  return "Exit status: 0 success; 1 the database cannot be used or did not answer,\n"
         "the crawl ended without a page (crawl), the session does not exist (status,\n"
         "export), images skipped (export); 2 a bad command line or config file; 3 crawl\n"
         "or export interrupted; 130 a second SIGINT/SIGTERM during a stop. Each\n"
         "command's --help gives its own.\n";
}

std::string command_help(const std::string& command, const OptionGroups& g) {
  std::ostringstream help;
  help << "crawler-worker " << CRAWLER_VERSION << ": crawls web sites for images into crawler_ha (PostgreSQL)\n\n";
  po::options_description visible;
  if (command == "crawl") {
    help << "Usage: crawler-worker crawl --db CONNINFO --storage DIR --seed URL [options]\n"
            "       crawler-worker crawl --db CONNINFO --storage-agent\n"
            "                            --agent-token-file FILE --seed URL [options]\n"
            "       (--seed may be repeated)\n\n"
            "Starts a crawl session (crawl_start()), crawls it with this worker until the\n"
            "database says it is over and prints a summary. On a terminal a live line shows\n"
            "the session's pages, images, queue, errors and retries; otherwise it is logged\n"
            "every 10 s. Other workers (crawler-worker run) may work on the session too.\n";
    visible.add(g.common).add(g.storage).add(g.worker).add(g.crawl);
  } else if (command == "run") {
    help << "Usage: crawler-worker run --db CONNINFO --storage DIR [options]\n"
            "       crawler-worker run --db CONNINFO --storage-agent\n"
            "                          --agent-token-file FILE [options]\n\n"
            "The service: works on every running session (start them with `crawler-worker\n"
            "crawl` or crawl_start() in SQL) until SIGINT/SIGTERM, which returns the leases;\n"
            "SIGHUP re-reads the config file. Logs what it has done every minute.\n";
    visible.add(g.common).add(g.storage).add(g.worker);
  } else if (command == "status") {
    help << "Usage: crawler-worker status --db CONNINFO [--session ID] [--wide | --json]\n\n"
            "The latest sessions (or one), their queue, recent errors and ha_status(), read\n"
            "from the primary when one answers, else from any node (a standby included).\n"
            "With --config it reads the service's config file: the options of crawl and run\n"
            "in it are checked and ignored.\n";
    visible.add(g.common).add(g.session).add(g.status);
  } else if (command == "export") {
    help << "Usage: crawler-worker export --db CONNINFO --session ID --format jsonl|csv\n"
            "                             --output FILE|-\n"
            "       crawler-worker export --db CONNINFO --session ID --format webdataset\n"
            "                             --output DIR --storage DIR [--shard-size N]\n"
            "       crawler-worker export --db CONNINFO --session ID --format webdataset\n"
            "                             --output DIR --storage-agent --agent-token-file FILE\n\n"
            "Writes a session's images, in id order, a page of rows at a time (memory stays\n"
            "small whatever the session's size), from any node (a standby included): their\n"
            "rows as JSON lines or CSV, or webdataset shards (NNNNN.tar holding KEY.EXT, the\n"
            "image, and KEY.json, its row; NNNNN_stats.json; stats.json at the end) with the\n"
            "bytes read from the store or an agent and checked against their sha256. An image\n"
            "missing or not matching is skipped and said. On a terminal a live line shows the\n"
            "progress; otherwise it is logged every 10 s. With --config it reads the\n"
            "service's config file: the options of crawl and run in it are checked and\n"
            "ignored.\n";
    visible.add(g.common).add(g.session).add(g.exporting).add(g.storage);
  } else {
    help << "Usage: crawler-worker COMMAND [options]\n\n"
            "Commands:\n"
            "  crawl   start a crawl session, crawl it to the end, print a summary\n"
            "  run     the service: work on every running session until SIGTERM\n"
            "  status  sessions, queue, recent errors and ha_status(), from any node\n"
            "  export  a session's images as JSON lines, CSV or webdataset shards\n\n"
            "`crawler-worker COMMAND --help` (or `crawler-worker help COMMAND`) lists the\n"
            "options of that command; the manual page crawler-worker(1) has them all.\n";
    visible.add(g.common);
  }
  help << visible << "\n" << exit_statuses(command);
  return help.str();
}

// The message of a Boost.Program_options error, with the nearest option
// name when the option is unknown.
std::string explain(const po::error& e, const OptionGroups& g, const std::string& command) {
  std::string msg = e.what();
  if (const auto* unknown = dynamic_cast<const po::unknown_option*>(&e)) {
    std::string name = unknown->get_option_name();
    while (!name.empty() && name.front() == '-') name.erase(0, 1);
    if (std::string near = g.nearest(name); !near.empty()) msg += " (did you mean --" + near + "?)";
  }
  return msg + " (see crawler-worker " + (command.empty() ? "" : command + " ") + "--help)";
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Reads the config file `path` into `vm` for `command`, line by line, so
// that each mistake names its line. Lines are `key = value`; `#` starts a
// comment anywhere (as Boost's reader had it, so files written for it keep
// their meaning); a boolean option alone on its line is true.
void read_config_file(const std::string& path, const std::string& command, const OptionGroups& g,
                      const po::options_description& all, po::variables_map& vm) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read config file " + path + ": " + std::strerror(errno));
  po::parsed_options parsed(&all);
  std::map<std::string, int> seen;  // key -> the line that gave it
  int n = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++n;
    auto refuse = [&](const std::string& why) {
      return std::runtime_error("config file " + path + ", line " + std::to_string(n) + ": " + why);
    };
    std::string line = trim(raw.substr(0, raw.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[') throw refuse("sections are not used: write `key = value` lines");
    std::size_t eq = line.find('=');
    std::string key = trim(line.substr(0, eq));
    std::replace(key.begin(), key.end(), '_', '-');
    if (key.empty()) throw refuse("no key before `=`");
    if (key == "help" || key == "version" || key == "config")
      throw refuse("\"" + key + "\" belongs on the command line, not in a config file");
    const po::option_description* d = all.find_nothrow(key, false);
    std::optional<Group> group = g.group_of(key);
    if (!d || !group) {
      std::string near = g.nearest(key);
      throw refuse("unknown option \"" + key + "\"" +
                   (near.empty() || near == key ? "" : " (did you mean \"" + near + "\"?)"));
    }
    std::vector<std::string> tokens;
    if (eq != std::string::npos) {
      tokens.push_back(trim(line.substr(eq + 1)));
    } else if (d->semantic()->max_tokens() != 0) {
      throw refuse("\"" + key + "\" needs a value: " + key + " = VALUE");
    }
    // The value's type is checked here, where the line is known.
    try {
      boost::any probe;
      d->semantic()->parse(probe, tokens, true);
    } catch (const po::error&) {
      throw refuse("invalid value \"" + (tokens.empty() ? "" : tokens[0]) + "\" for \"" + key + "\"");
    }
    if (!d->semantic()->is_composing()) {
      if (auto [it, fresh] = seen.emplace(key, n); !fresh)
        throw refuse("\"" + key + "\" is given twice (also on line " + std::to_string(it->second) + ")");
    }
    if (!group_applies(*group, command)) {
      // status and export read the service's file: what is not theirs is ignored.
      if (reads_service_config(command)) continue;
      throw refuse("\"" + key + "\" is an option of " + group_commands(*group) + ", not of " + command);
    }
    po::option opt(key, tokens);
    opt.original_tokens = {key};
    parsed.options.push_back(std::move(opt));
  }
  // store() keeps a value already stored: the command line's wins.
  po::store(parsed, vm);
}

}  // namespace

namespace {

// The directory `path` is in ("." for a bare name, "/" for a file of the root).
std::string directory_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Refuses a file `path` of --`option` that could not be created or
// replaced: a directory there, or a directory that does not take files.
void check_file_writable(const char* option, const std::string& path) {
  const std::string dir = directory_of(path);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw std::runtime_error(std::string("--") + option + " " + path + ": a directory; give a file name");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error(std::string("--") + option + " " + path + ": cannot write in " + dir + ": " +
                             std::strerror(errno));
}

// The shards' directory: an empty one, or one to create in a directory
// that takes it. Shards of an earlier export left beside these would be
// read as part of this one.
void check_shard_directory(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw std::runtime_error("--output " + path + ": " + std::strerror(errno));
    check_file_writable("output", path);  // created at the start
    return;
  }
  if (!S_ISDIR(st.st_mode))
    throw std::runtime_error("--output " + path + ": not a directory (--format webdataset writes one)");
  if (::access(path.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error("--output " + path + ": cannot write in it: " + std::strerror(errno));
  std::error_code ec;
  if (!std::filesystem::is_empty(path, ec) || ec)
    throw std::runtime_error("--output " + path + ": " + (ec ? ec.message() : "not empty") +
                             "; give a new or empty directory (files of another export would mix with these)");
}

// What export requires, its output checked before anything is read: an
// export of hours must not fail at its end for a directory that never
// took files.
void check_export(Command& cmd) {
  ExportRequest& x = cmd.export_request;
  WorkerOptions& w = cmd.worker;
  if (!x.session) throw std::runtime_error("export needs --session ID (crawler-worker status lists the sessions)");
  if (x.format.empty()) throw std::runtime_error("export needs --format jsonl, csv or webdataset");
  if (x.format != "jsonl" && x.format != "csv" && x.format != "webdataset")
    throw std::runtime_error("--format \"" + x.format + "\" is not a format: use jsonl, csv or webdataset");
  if (x.output.empty())
    throw std::runtime_error(x.format == "webdataset" ? "export needs --output DIR (the shards' directory)"
                                                      : "export needs --output FILE (- for standard output)");
  if (x.shard_size < 1) throw std::runtime_error("--shard-size must be at least 1");
  if (x.format != "webdataset") {
    if (x.output != "-") check_file_writable("output", x.output);
    return;
  }
  if (x.output == "-") throw std::runtime_error("--format webdataset writes a directory of shards: --output DIR, not -");
  if (w.storage.empty() && !w.storage_agent)
    throw std::runtime_error("--format webdataset needs --storage DIR or --storage-agent: where the images' bytes are read");
  if (!w.storage.empty() && w.storage_agent)
    throw std::runtime_error("--storage and --storage-agent exclude each other: the bytes come from one place");
  if (w.storage_agent) {
    if (w.agent_token_file.empty()) throw std::runtime_error("--storage-agent needs --agent-token-file FILE");
    w.agent_token = read_agent_token(w.agent_token_file);
  } else {
    struct stat st;
    if (::stat(w.storage.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || ::access(w.storage.c_str(), R_OK | X_OK) != 0)
      throw std::runtime_error("--storage " + w.storage + ": not a directory this user can read");
  }
  check_shard_directory(x.output);
}

// --proxy: a URL libcurl takes as a proxy, said now rather than as a
// transfer error on every URL.
void check_proxy(const std::string& proxy) {
  static const char* const kSchemes[] = {"http://", "https://", "socks4://", "socks4a://", "socks5://", "socks5h://"};
  bool known = false;
  for (const char* scheme : kSchemes)
    if (proxy.rfind(scheme, 0) == 0 && proxy.size() > std::strlen(scheme)) known = true;
  if (!known)
    throw std::runtime_error("--proxy \"" + one_line(proxy, 200) +
                             "\": a proxy URL is http://, https://, socks4://, socks4a://, socks5:// or socks5h:// "
                             "followed by HOST[:PORT]");
  for (unsigned char ch : proxy)
    if (ch <= 0x20 || ch >= 0x7f) throw std::runtime_error("--proxy: spaces or control characters in the URL");
}

// --cookies: a regular file this process can read. What it holds is read by
// libcurl (a line it cannot read is skipped, as curl and wget skip it); the
// worker logs how many cookies it loaded.
void check_cookies_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error("--cookies " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("--cookies " + path + ": not a regular file");
  if (::access(path.c_str(), R_OK) != 0)
    throw std::runtime_error("--cookies " + path + ": " + std::strerror(errno));
}

}  // namespace

// What no option parser checks: what the command requires, the ranges.
void check_command(Command& cmd) {
  WorkerOptions& w = cmd.worker;
  CrawlRequest& c = cmd.crawl;
  if (!parse_log_level(w.log_level))
    throw std::runtime_error("--log-level \"" + w.log_level + "\" is not a level: use debug, info, warning or error");
  if (w.db.empty()) throw std::runtime_error("--db CONNINFO is required");
  if (cmd.name == "export") check_export(cmd);
  if (cmd.name != "status" && cmd.name != "export") {
    if (!w.proxy.empty()) check_proxy(w.proxy);
    if (!w.cookies_file.empty()) check_cookies_file(w.cookies_file);
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
  if (cmd.name == "status" && cmd.status.wide && cmd.status.json)
    throw std::runtime_error("--wide and --json exclude each other");
  if (cmd.name == "crawl" && !c.seeds_file.empty()) {
    std::vector<std::string> more = read_seeds_file(c.seeds_file);
    c.seeds.insert(c.seeds.end(), more.begin(), more.end());
  }
  if (cmd.name == "crawl" && c.seeds.empty())
    throw std::runtime_error("crawl needs at least one --seed URL (or --seeds-file FILE)");
  // Said now, not after a crawl of hours: its directory must take the file.
  if (cmd.name == "crawl" && !c.stats_json.empty()) check_file_writable("stats-json", c.stats_json);
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
  hidden.add_options()("command", po::value<std::string>(&cmd.name))(
      "args", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("command", 1).add("args", -1);

  po::options_description all;
  all.add(groups.common).add(groups.storage).add(groups.worker).add(groups.crawl).add(groups.session)
      .add(groups.status).add(groups.exporting).add(hidden);

  po::variables_map vm;
  po::parsed_options parsed(&all);
  try {
    parsed = po::command_line_parser(argc, argv).options(all).positional(pos).run();
    po::store(parsed, vm);
  } catch (const po::error& e) {
    throw std::runtime_error(explain(e, groups, ""));
  }
  const std::string name = vm.count("command") ? vm["command"].as<std::string>() : "";
  std::vector<std::string> args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};

  if (vm.count("version")) {
    cmd.name = "version";
    return cmd;
  }
  if (name == "help" || vm.count("help") || argc <= 1) {
    std::string topic = name == "help" ? (args.empty() ? "" : args.front()) : name;
    if (!topic.empty() && !known_command(topic))
      throw std::runtime_error("unknown command \"" + topic + "\": use crawl, run, status or export (see crawler-worker --help)");
    if (name == "help" && args.size() > 1) throw std::runtime_error("help takes one command: crawler-worker help COMMAND");
    cmd.name = "help";
    cmd.help_text = command_help(topic, groups);
    return cmd;
  }
  if (name.empty())
    throw std::runtime_error("a command is needed first: crawl, run, status or export (see crawler-worker --help)");
  if (!known_command(name))
    throw std::runtime_error("unknown command \"" + name + "\": use crawl, run, status or export (see crawler-worker --help)");
  if (!args.empty())
    throw std::runtime_error("unexpected argument \"" + args.front() + "\" (see crawler-worker " + name + " --help)");
  cmd.help_text = command_help(name, groups);

  // Options of another command are mistakes: run would ignore --seed, and
  // the user would think the crawl had it.
  for (const auto& o : parsed.options) {
    if (o.position_key != -1) continue;
    std::optional<Group> g = groups.group_of(o.string_key);
    if (g && !group_applies(*g, name))
      throw std::runtime_error("--" + o.string_key + " is an option of " + group_commands(*g) + ", not of " +
                               name + " (see crawler-worker " + name + " --help)");
  }
  try {
    if (vm.count("config")) read_config_file(vm["config"].as<std::string>(), name, groups, all, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::runtime_error(explain(e, groups, name));
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
  copy_opt(vm, "image-expiry-s", c.image_expiry_s);
  for (const std::string& t : c.thumbnails) {
    auto eq = t.find('=');
    const std::string size = eq == std::string::npos ? "" : t.substr(eq + 1);
    if (eq == 0 || eq == std::string::npos || size.empty() || size.size() > 9 ||
        size.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("--thumbnail \"" + t.substr(0, 60) + "\": NAME=SIZE is expected, e.g. small=50");
  }
  copy_opt(vm, "session", cmd.status.session);
  copy_opt(vm, "session", cmd.export_request.session);
  if (vm.count("shard-size") && cmd.export_request.format != "webdataset")
    throw std::runtime_error("--shard-size applies only with --format webdataset");
  c.user_agent = w.user_agent;
  check_command(cmd);
  return cmd;
}

}  // namespace crawler
