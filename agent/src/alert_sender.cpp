#include "crawler/agent/alert_sender.hpp"

#include <curl/curl.h>
#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <vector>

#include "crawler/agent/node_db.hpp"
#include "crawler/agent/token_file.hpp"
#include "crawler/log.hpp"

namespace crawler::agent {
namespace {

// The notifications due, with times in RFC 3339 (UTC) as Alertmanager
// writes them, and the node's name for the body.
constexpr const char* kEvaluateSql =
    "SELECT e.alert, e.alertname, e.status, e.severity, e.labels::text, e.summary, e.description, "
    "e.value::text, "
    "to_char(e.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "to_char(e.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "(SELECT n.node_name FROM @extschema@.ha_node n) "
    "FROM @extschema@.ha_alert_evaluate($1::double precision) e";

// What Alertmanager writes as the end of an alert still firing.
constexpr const char* kNoEnd = "0001-01-01T00:00:00Z";

std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) { return size * n; }

// Aborts a transfer in flight when the agent stops.
int abort_on_stop(void* stopper, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Stopper*>(stopper)->stopped() ? 1 : 0;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// One POST of `body`; true on a 2xx answer, else false with *error.
bool post_once(const AgentConfig& config, const std::string& token, const std::string& body, Stopper& stop,
               std::string* error) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    *error = "curl_easy_init failed";
    return false;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  add("Content-Type: application/json");
  add("Expect:");  // no 100-continue round trip for a small body
  if (!token.empty()) add("Authorization: Bearer " + token);
  char errbuf[CURL_ERROR_SIZE] = "";
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, config.alert_webhook_url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "crawler-ha-agent/" CRAWLER_VERSION);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config.alert_webhook_timeout_ms));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config.alert_webhook_ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config.alert_webhook_ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &stop);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    *error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return false;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    *error = "the receiver answered HTTP " + std::to_string(status);
    return false;
  }
  return true;
}

// The rows of ha_alert_evaluate() as notifications; a row that cannot be
// one (labels not an object of strings) is logged and skipped.
std::vector<DueAlert> due_alerts(const DbResult& r, std::string* node_name) {
  std::vector<DueAlert> out;
  for (const auto& row : r.rows) {
    if (row.size() != 11 || !row[0] || !row[1] || !row[2] || !row[4]) continue;
    DueAlert a;
    a.alert = *row[0];
    a.alertname = *row[1];
    a.status = *row[2];
    a.severity = row[3].value_or("");
    a.labels_json = *row[4];
    auto labels = nlohmann::json::parse(a.labels_json, nullptr, false);
    if (!labels.is_object()) {
      CRAWLER_LOG(error) << "alerts: the labels of " << a.alert << " are not a JSON object";
      continue;
    }
    for (const auto& [k, v] : labels.items()) a.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
    a.summary = row[5].value_or("");
    a.description = row[6].value_or("");
    a.value = row[7].value_or("");
    a.started_at = row[8].value_or("");
    a.ended_at = row[9].value_or("");
    if (row[10]) *node_name = *row[10];
    out.push_back(std::move(a));
  }
  return out;
}

std::string describe(const DueAlert& a) {
  std::string s = a.alertname + " " + a.status;
  for (const auto& [k, v] : a.labels) s += " " + k + "=" + v;
  return s;
}

}  // namespace

std::string label_fingerprint(const std::map<std::string, std::string>& labels) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;  // FNV prime
    }
  };
  const std::string sep(1, '\xff');
  for (const auto& [k, v] : labels) {  // a std::map iterates sorted by name
    mix(k);
    mix(sep);
    mix(v);
    mix(sep);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string alertmanager_webhook_body(const DueAlert& a, const std::string& node_name) {
  std::map<std::string, std::string> labels = a.labels;
  labels["alertname"] = a.alertname;
  labels["severity"] = a.severity;
  nlohmann::json label_json(labels);
  nlohmann::json annotations = {
      {"summary", a.summary}, {"description", a.description}, {"reported_by", node_name}};
  if (!a.value.empty()) annotations["value"] = a.value;
  nlohmann::json alert = {
      {"status", a.status},
      {"labels", label_json},
      {"annotations", annotations},
      {"startsAt", a.started_at},
      {"endsAt", a.ended_at.empty() ? std::string(kNoEnd) : a.ended_at},
      {"generatorURL", ""},
      {"fingerprint", label_fingerprint(labels)},
  };
  // One alert per notification: its group is the alert itself, keyed as
  // Alertmanager keys a group (the route's matchers, then the group labels).
  std::string group_key = "{}:{alertname=\"" + a.alertname + "\"";
  for (const auto& [k, v] : labels)
    if (k != "alertname") group_key += "," + k + "=\"" + v + "\"";
  group_key += "}";
  nlohmann::json body = {
      {"version", "4"},
      {"groupKey", group_key},
      {"truncatedAlerts", 0},
      {"status", a.status},
      {"receiver", "crawler-ha"},
      {"groupLabels", label_json},
      {"commonLabels", label_json},
      {"commonAnnotations", annotations},
      {"externalURL", ""},
      {"alerts", nlohmann::json::array({alert})},
  };
  // Invalid UTF-8 in a summary (a hostile table or node name) is replaced,
  // not a reason to lose the notification.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<double> store_used_percent(const std::string& store_root) {
  struct statvfs vfs {};
  if (statvfs(store_root.c_str(), &vfs) != 0 || vfs.f_blocks == 0) return std::nullopt;
  return 100.0 * (1.0 - static_cast<double>(vfs.f_bavail) / static_cast<double>(vfs.f_blocks));
}

AlertSender::AlertSender(const AgentConfig& config, std::string store_root)
    : config_(config), store_root_(std::move(store_root)) {}

AlertSender::~AlertSender() { stop(); }

void AlertSender::start() {
  if (config_.alert_interval_s <= 0) {
    CRAWLER_LOG(info) << "alerts: not evaluated (alert_interval_s = 0)";
    return;
  }
  thread_ = std::thread([this] { run(); });
}

void AlertSender::stop() {
  stop_.stop();
  if (thread_.joinable()) thread_.join();
}

void AlertSender::run() {
  const auto interval = std::chrono::seconds(config_.alert_interval_s);
  // A short statement timeout: an evaluation must not hang on a lock for
  // longer than the interval it is repeated at.
  NodeDb db(config_.db, "alerts", "alerts", "-c statement_timeout=" + std::to_string(config_.alert_interval_s * 1000 + 5000));
  TokenFile token(config_.alert_webhook_token_file);
  if (config_.alert_webhook_url.empty())
    CRAWLER_LOG(info) << "alerts: no alert_webhook_url: alerts are evaluated and recorded as HA events only";
  while (!stop_.stopped()) {
    if (!db.ensure(stop_)) break;
    auto used = store_used_percent(store_root_);
    std::vector<Param> params{used ? Param(std::to_string(*used)) : Param()};
    DbResult r = db.call(db.with_schema(kEvaluateSql), params);
    if (!r.ok) {
      CRAWLER_LOG(error) << "alerts: ha_alert_evaluate() failed: " << r.sqlstate << " " << r.error;
      stop_.sleep_for(interval);
      continue;
    }
    std::string node_name;
    std::vector<DueAlert> due = due_alerts(r, &node_name);
    if (config_.alert_webhook_url.empty()) {
      // Nothing to deliver to: the HA events are the record.
      stop_.sleep_for(interval);
      continue;
    }
    for (const DueAlert& a : due) {
      const std::string body = alertmanager_webhook_body(a, node_name);
      std::string error;
      bool delivered = false;
      auto backoff = std::chrono::milliseconds(500);
      for (int attempt = 1; attempt <= config_.alert_webhook_attempts && !stop_.stopped(); ++attempt) {
        if (post_once(config_, token.get(), body, stop_, &error)) {
          delivered = true;
          break;
        }
        if (attempt < config_.alert_webhook_attempts && !stop_.sleep_for(backoff)) break;
        backoff *= 2;
      }
      if (!delivered) {
        // The receiver is down or refuses: the rest waits with this one for
        // the next evaluation, which finds them all due again.
        CRAWLER_LOG(warn) << "alerts: " << describe(a) << " not delivered to " << config_.alert_webhook_url
                          << " after " << config_.alert_webhook_attempts << " attempt(s): " << error;
        break;
      }
      DbResult n = db.call(db.with_schema("SELECT @extschema@.ha_alert_notified($1, $2::jsonb, $3)"),
                           {a.alert, a.labels_json, a.status});
      if (!n.ok)
        CRAWLER_LOG(error) << "alerts: ha_alert_notified() failed: " << n.sqlstate << " " << n.error
                           << " (the notification may be sent again)";
      else
        CRAWLER_LOG(info) << "alerts: delivered " << describe(a);
    }
    stop_.sleep_for(interval);
  }
}

}  // namespace crawler::agent
