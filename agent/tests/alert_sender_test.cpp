// The alert sender's pure parts: the label fingerprint Alertmanager would
// compute, the webhook body's form, and the store's disk use.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crawler/agent/alert_sender.hpp"

using crawler::agent::alertmanager_webhook_body;
using crawler::agent::DueAlert;
using crawler::agent::label_fingerprint;
using crawler::agent::store_used_percent;

namespace {

DueAlert disk_alert() {
  DueAlert a;
  a.alert = "disk_usage";
  a.alertname = "CrawlerHaDiskUsage";
  a.status = "firing";
  a.severity = "warning";
  a.labels = {{"node", "a"}};
  a.labels_json = R"({"node": "a"})";
  a.summary = "the blob store of a is 90.0 % full, above 85 %";
  a.description = "the file system of this node's blob store is fuller than threshold percent";
  a.value = "90";
  a.started_at = "2026-12-06T01:02:03.000004Z";
  return a;
}

}  // namespace

TEST(AlertFingerprint, IsPrometheusLabelSignature) {
  // 64-bit FNV-1a of nothing: the offset basis, as Prometheus' empty set.
  EXPECT_EQ(label_fingerprint({}), "cbf29ce484222325");
  // Computed independently (FNV-1a over name, 0xff, value, 0xff, sorted).
  EXPECT_EQ(label_fingerprint({{"severity", "warning"}, {"node", "a"}, {"alertname", "CrawlerHaDiskUsage"}}),
            "cd4ef83672852eb1");
  // The separator keeps "ab"="" apart from "a"="b".
  EXPECT_NE(label_fingerprint({{"ab", ""}}), label_fingerprint({{"a", "b"}}));
}

TEST(AlertWebhookBody, FiringHasAlertmanagersForm) {
  auto body = nlohmann::json::parse(alertmanager_webhook_body(disk_alert(), "a"));
  EXPECT_EQ(body["version"], "4");
  EXPECT_EQ(body["status"], "firing");
  EXPECT_EQ(body["receiver"], "crawler-ha");
  EXPECT_EQ(body["truncatedAlerts"], 0);
  ASSERT_EQ(body["alerts"].size(), 1u);
  const auto& alert = body["alerts"][0];
  EXPECT_EQ(alert["status"], "firing");
  EXPECT_EQ(alert["labels"], (nlohmann::json{{"alertname", "CrawlerHaDiskUsage"}, {"node", "a"}, {"severity", "warning"}}));
  EXPECT_EQ(alert["annotations"]["summary"], "the blob store of a is 90.0 % full, above 85 %");
  EXPECT_EQ(alert["annotations"]["value"], "90");
  EXPECT_EQ(alert["annotations"]["reported_by"], "a");
  EXPECT_EQ(alert["startsAt"], "2026-12-06T01:02:03.000004Z");
  EXPECT_EQ(alert["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(alert["fingerprint"], "cd4ef83672852eb1");
  EXPECT_EQ(body["commonLabels"], alert["labels"]);
  EXPECT_EQ(body["groupLabels"], alert["labels"]);
  EXPECT_EQ(body["groupKey"], "{}:{alertname=\"CrawlerHaDiskUsage\",node=\"a\",severity=\"warning\"}");
}

TEST(AlertWebhookBody, ResolvedCarriesItsEnd) {
  DueAlert a = disk_alert();
  a.status = "resolved";
  a.ended_at = "2026-12-06T01:05:00.000000Z";
  a.value.clear();
  auto body = nlohmann::json::parse(alertmanager_webhook_body(a, "a"));
  EXPECT_EQ(body["status"], "resolved");
  EXPECT_EQ(body["alerts"][0]["endsAt"], "2026-12-06T01:05:00.000000Z");
  EXPECT_FALSE(body["alerts"][0]["annotations"].contains("value"));
}

TEST(AlertWebhookBody, HostileTextStaysValidJson) {
  DueAlert a = disk_alert();
  a.labels = {{"table", "x\"}\n\xff\xfe<script>"}};
  a.summary = std::string("bad \xc3\x28 utf-8 and a quote \" and \\ ");
  auto text = alertmanager_webhook_body(a, "n\"ode");
  auto body = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << text;
  EXPECT_EQ(body["alerts"][0]["annotations"]["reported_by"], "n\"ode");
  EXPECT_TRUE(body["alerts"][0]["labels"].contains("table"));
}

TEST(StoreUsedPercent, MeasuresAndRefusesMissing) {
  auto used = store_used_percent("/");
  ASSERT_TRUE(used.has_value());
  EXPECT_GE(*used, 0.0);
  EXPECT_LE(*used, 100.0);
  EXPECT_FALSE(store_used_percent("/nonexistent/store/dir").has_value());
}
