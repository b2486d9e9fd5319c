// The agent's part of alerting: every alert_interval_s it measures its
// store's disk, asks the database which notifications are due
// (ha_alert_evaluate(): the conditions, thresholds, cooldowns, HA events and
// which node sends are decided there) and POSTs each to the configured
// webhook in Alertmanager's webhook format, so that any receiver written for
// Alertmanager takes them. A delivery is reported back (ha_alert_notified())
// only once the receiver answered 2xx; one that failed every attempt is due
// again at the next evaluation.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "crawler/agent/config.hpp"
#include "crawler/agent/stopper.hpp"

namespace crawler::agent {

// One notification due, as ha_alert_evaluate() returns it.
struct DueAlert {
  std::string alert;       // the rule's name (disk_usage)
  std::string alertname;   // its Prometheus-style name (CrawlerHaDiskUsage)
  std::string status;      // firing or resolved
  std::string severity;
  std::map<std::string, std::string> labels;  // the alert's own labels (node, table, term)
  std::string labels_json; // the same, as the database's jsonb text (the key of ha_alert_notified())
  std::string summary;
  std::string description;
  std::string value;       // as the database wrote it; empty when NULL
  std::string started_at;  // RFC 3339, UTC
  std::string ended_at;    // RFC 3339, UTC; empty while firing
};

// Prometheus' signature of a label set (64-bit FNV-1a over the names and
// values sorted by name, each followed by 0xff), as 16 hex digits: the
// `fingerprint` Alertmanager gives an alert with these labels.
std::string label_fingerprint(const std::map<std::string, std::string>& labels);

// The body Alertmanager would POST to a webhook receiver for `alert`
// alone (version 4: receiver, status, alerts[1], groupLabels, commonLabels,
// commonAnnotations, externalURL, groupKey, truncatedAlerts). Its labels are
// the alert's own plus alertname and severity; its annotations summary,
// description, value and the node that sent it (`reported_by`).
std::string alertmanager_webhook_body(const DueAlert& alert, const std::string& node_name);

// The store's file system's use in percent as df counts it for the agent:
// 100 x (1 - blocks free to it / all blocks); nullopt when statvfs fails.
std::optional<double> store_used_percent(const std::string& store_root);

// The sender's thread. start() returns at once; stop() ends a sleep or a
// delivery's wait and joins.
class AlertSender {
 public:
  AlertSender(const AgentConfig& config, std::string store_root);
  ~AlertSender();
  AlertSender(const AlertSender&) = delete;
  AlertSender& operator=(const AlertSender&) = delete;

  // Starts the thread; nothing when alert_interval_s is 0.
  void start();
  void stop();

 private:
  void run();

  const AgentConfig& config_;
  std::string store_root_;
  Stopper stop_;
  std::thread thread_;
};

}  // namespace crawler::agent
