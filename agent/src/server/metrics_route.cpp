#include "metrics_route.hpp"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/beast/http/field.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "api_calls.hpp"
#include "crawler/agent/server/prometheus_text.hpp"
#include "crawler/log.hpp"

namespace crawler::agent {
namespace {

// The columns in ha_metrics()'s order; labels as the JSON text of the jsonb.
constexpr const char* kMetricsSql =
    "SELECT name, kind, help, labels::text, value FROM @extschema@.ha_metrics()";

// What /proc says of this process; each unset when it could not be read.
struct ProcessFigures {
  std::optional<double> cpu_seconds, resident_bytes, virtual_bytes, start_time_seconds, open_fds, max_fds;
};

// The system's boot time (Unix seconds) from /proc/stat: a process's start
// is counted in clock ticks from it. Read once: it does not change.
std::optional<double> boot_time() {
  static const std::optional<double> btime = [] {
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("btime ", 0) == 0) return std::optional<double>(std::stod(line.substr(6)));
    return std::optional<double>();
  }();
  return btime;
}

ProcessFigures process_figures() {
  ProcessFigures f;
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name, in parentheses, may hold spaces and parentheses:
  // the fields are counted from the last ')'.
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 1));
    std::vector<std::string> v;
    for (std::string s; fields >> s;) v.push_back(s);
    // v[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
    const long ticks = sysconf(_SC_CLK_TCK);
    const long page = sysconf(_SC_PAGESIZE);
    if (v.size() > 21 && ticks > 0 && page > 0) {
      try {
        f.cpu_seconds = (std::stod(v[11]) + std::stod(v[12])) / static_cast<double>(ticks);
        if (auto boot = boot_time()) f.start_time_seconds = *boot + std::stod(v[19]) / static_cast<double>(ticks);
        f.virtual_bytes = std::stod(v[20]);
        f.resident_bytes = std::stod(v[21]) * static_cast<double>(page);
      } catch (const std::exception&) {
        f = ProcessFigures();
      }
    }
  }
  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  if (!ec) f.open_fds = fds;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    f.max_fds = static_cast<double>(lim.rlim_cur);
  return f;
}

// Adds one of the agent's own samples. Its names are fixed here, so a
// refusal means ha_metrics() wrote a family of the same name: logged, and
// the agent's sample left out rather than the scrape broken.
void add_own(PrometheusText& out, const char* name, MetricKind kind, const char* help, double value) {
  MetricSample s;
  s.name = name;
  s.kind = kind;
  s.help = help;
  s.value = value;
  std::string why;
  if (!out.add(s, &why)) CRAWLER_LOG(warn) << "metrics: the agent's own sample is left out: " << why;
}

// Whether a failed call says only that the database is out of reach now
// (down, starting, stopping, overloaded): worth a debug line each scrape;
// anything else (a missing grant, a missing function) is a fault to fix.
bool transient_failure(const DbResult& r) {
  return r.sqlstate.rfind("08", 0) == 0 || r.sqlstate.rfind("57P", 0) == 0 || r.sqlstate == "53300" ||
         r.sqlstate == "57014";
}

// The whole exposition: the database's rows (when the call succeeded),
// then the agent's own families.
std::string render(ServerState& state, const DbResult& r, double sql_seconds) {
  PrometheusText out;
  std::size_t refused = 0;
  std::string first_refusal;
  if (r.ok) {
    for (const auto& row : r.rows) {
      std::string why;
      auto sample = sample_from_row(row, &why);
      if (sample && out.add(*sample, &why)) continue;
      if (refused++ == 0) first_refusal = why;
    }
    if (refused > 0)
      CRAWLER_LOG(warn) << "metrics: " << refused << " of the " << r.rows.size()
                        << " samples of ha_metrics() are left out, the first: " << first_refusal;
  } else if (transient_failure(r)) {
    CRAWLER_LOG(debug) << "metrics: ha_metrics() failed: " << r.sqlstate << " " << r.error;
  } else {
    CRAWLER_LOG(warn) << "metrics: ha_metrics() failed: " << r.sqlstate << " " << r.error;
  }

  add_own(out, "crawler_ha_agent_up", MetricKind::gauge, "Whether the node agent answers (always 1 when scraped)", 1);
  add_own(out, "crawler_ha_database_up", MetricKind::gauge,
          "Whether the node's database answered this scrape's ha_metrics() call (0: its metrics are absent)",
          r.ok ? 1 : 0);
  add_own(out, "crawler_ha_scrape_sql_duration_seconds", MetricKind::gauge,
          "How long this scrape's ha_metrics() call took, failed or not, in seconds", sql_seconds);
  add_own(out, "crawler_ha_scrape_samples_refused", MetricKind::gauge,
          "Samples of this scrape's ha_metrics() call the agent left out as not valid exposition (logged)",
          static_cast<double>(refused));

  // The store's file system: what an upload or a fetch may still fill.
  struct statvfs vfs {};
  if (statvfs(state.store.root().c_str(), &vfs) == 0) {
    add_own(out, "crawler_ha_store_free_bytes", MetricKind::gauge,
            "Bytes free for the agent on the file system of the node's store (statvfs f_bavail)",
            static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize));
    add_own(out, "crawler_ha_store_size_bytes", MetricKind::gauge,
            "Size of the file system of the node's store in bytes (statvfs f_blocks)",
            static_cast<double>(vfs.f_blocks) * static_cast<double>(vfs.f_frsize));
  }

  // The conventional process_ families, with the meaning Prometheus'
  // client libraries give them, so that existing dashboards work.
  ProcessFigures p = process_figures();
  if (p.cpu_seconds)
    add_own(out, "process_cpu_seconds_total", MetricKind::counter, "Total user and system CPU time spent in seconds.",
            *p.cpu_seconds);
  if (p.max_fds)
    add_own(out, "process_max_fds", MetricKind::gauge, "Maximum number of open file descriptors.", *p.max_fds);
  if (p.open_fds)
    add_own(out, "process_open_fds", MetricKind::gauge, "Number of open file descriptors.", *p.open_fds);
  if (p.resident_bytes)
    add_own(out, "process_resident_memory_bytes", MetricKind::gauge, "Resident memory size in bytes.",
            *p.resident_bytes);
  if (p.start_time_seconds)
    add_own(out, "process_start_time_seconds", MetricKind::gauge,
            "Start time of the process since unix epoch in seconds.", *p.start_time_seconds);
  if (p.virtual_bytes)
    add_own(out, "process_virtual_memory_bytes", MetricKind::gauge, "Virtual memory size in bytes.",
            *p.virtual_bytes);
  return out.text();
}

}  // namespace

awaitable<void> answer_metrics(Exchange& x, ServerState& state) {
  const auto started = std::chrono::steady_clock::now();
  // Named, not temporaries: gcc 12 destroys some temporaries of a co_await
  // expression twice.
  std::string sql = kMetricsSql;
  std::vector<Param> params;
  DbResult r = co_await sql_call(state, DbRole::reader, std::move(sql), std::move(params));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = render(state, r, seconds);
  co_await x.respond(std::move(res));
}

}  // namespace crawler::agent
