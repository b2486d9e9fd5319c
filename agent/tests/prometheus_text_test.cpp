// The Prometheus text exposition the agent's /metrics writes: escaping,
// families written once and together, names checked, numbers as
// Prometheus reads them, and ha_metrics()'s rows read from their text.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "crawler/agent/server/prometheus_text.hpp"

using namespace crawler::agent;

namespace {

MetricSample sample(std::string name, MetricLabels labels, double value, std::string help = "A help text",
                    MetricKind kind = MetricKind::gauge) {
  MetricSample s;
  s.name = std::move(name);
  s.kind = kind;
  s.help = std::move(help);
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

// Whether `out` refuses `s`, leaving its text as it was.
::testing::AssertionResult refused(PrometheusText& out, const MetricSample& s) {
  const std::string before = out.text();
  std::string why;
  if (out.add(s, &why)) return ::testing::AssertionFailure() << s.name << " was taken";
  if (why.empty()) return ::testing::AssertionFailure() << "refused without a reason";
  if (out.text() != before) return ::testing::AssertionFailure() << "the text changed: " << out.text();
  return ::testing::AssertionSuccess() << why;
}

bool add(PrometheusText& out, const MetricSample& s) {
  std::string why;
  bool ok = out.add(s, &why);
  EXPECT_TRUE(ok) << why;
  return ok;
}

std::vector<crawler::Param> row(const char* name, const char* kind, const char* help, const char* labels,
                                const char* value) {
  return {std::string(name), std::string(kind), std::string(help), std::string(labels), std::string(value)};
}

}  // namespace

TEST(PrometheusText, FamilyHeadersOnceAndSamplesSortedLabels) {
  PrometheusText out;
  ASSERT_TRUE(add(out, sample("crawler_ha_term", {{"node", "a"}}, 3)));
  ASSERT_TRUE(add(out, sample("crawler_ha_term", {{"node", "b"}}, 3)));
  ASSERT_TRUE(add(out, sample("crawler_ha_node_role", {{"role", "primary"}, {"node", "a"}}, 1, "Role",
                              MetricKind::gauge)));
  ASSERT_TRUE(add(out, sample("crawler_ha_failovers_total", {}, 2, "", MetricKind::counter)));
  EXPECT_EQ(out.text(),
            "# HELP crawler_ha_term A help text\n"
            "# TYPE crawler_ha_term gauge\n"
            "crawler_ha_term{node=\"a\"} 3\n"
            "crawler_ha_term{node=\"b\"} 3\n"
            "# HELP crawler_ha_node_role Role\n"
            "# TYPE crawler_ha_node_role gauge\n"
            "crawler_ha_node_role{node=\"a\",role=\"primary\"} 1\n"
            // no help text: no HELP line, the TYPE still
            "# TYPE crawler_ha_failovers_total counter\n"
            "crawler_ha_failovers_total 2\n");
  EXPECT_TRUE(out.has_family("crawler_ha_term"));
  EXPECT_FALSE(out.has_family("crawler_ha_up"));
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
  EXPECT_EQ(escape_help("say \"x\"\\\nnext"), "say \"x\"\\\\\\nnext");
  PrometheusText out;
  ASSERT_TRUE(add(out, sample("m", {{"url", "http://a/\"x\"\\\n"}, {"u", "é → ü"}}, 1, "line one\nline \\two")));
  EXPECT_EQ(out.text(),
            "# HELP m line one\\nline \\\\two\n"
            "# TYPE m gauge\n"
            "m{u=\"é → ü\",url=\"http://a/\\\"x\\\"\\\\\\n\"} 1\n");
}

TEST(PrometheusText, NonContiguousFamilyRefused) {
  // Refused, not merged: the format wants a family's lines together, and a
  // name in two runs means two sources describe one metric.
  PrometheusText out;
  ASSERT_TRUE(add(out, sample("a_metric", {{"x", "1"}}, 1)));
  ASSERT_TRUE(add(out, sample("b_metric", {}, 1)));
  EXPECT_TRUE(refused(out, sample("a_metric", {{"x", "2"}}, 1)));
  // The family being written still takes samples.
  EXPECT_TRUE(add(out, sample("b_metric", {{"y", "1"}}, 2)));
  EXPECT_EQ(out.text().find("x=\"2\""), std::string::npos);
}

TEST(PrometheusText, SameFamilyMustKeepKindAndHelp) {
  PrometheusText out;
  ASSERT_TRUE(add(out, sample("m_total", {{"s", "1"}}, 1, "h", MetricKind::counter)));
  EXPECT_TRUE(refused(out, sample("m_total", {{"s", "2"}}, 1, "h", MetricKind::gauge)));
  EXPECT_TRUE(refused(out, sample("m_total", {{"s", "2"}}, 1, "other help", MetricKind::counter)));
  EXPECT_TRUE(add(out, sample("m_total", {{"s", "2"}}, 1, "h", MetricKind::counter)));
}

TEST(PrometheusText, DuplicateSeriesAndLabelsRefused) {
  PrometheusText out;
  ASSERT_TRUE(add(out, sample("m", {{"a", "1"}, {"b", "2"}}, 1)));
  // The same label set in another order is the same series.
  EXPECT_TRUE(refused(out, sample("m", {{"b", "2"}, {"a", "1"}}, 5)));
  EXPECT_TRUE(refused(out, sample("m", {{"a", "1"}, {"a", "2"}}, 1)));
  // An empty value is an absent label: {} and {e=""} are one series.
  ASSERT_TRUE(add(out, sample("m", {{"e", ""}}, 1)));
  EXPECT_TRUE(refused(out, sample("m", {}, 1)));
  EXPECT_NE(out.text().find("\nm 1\n"), std::string::npos) << out.text();
}

TEST(PrometheusText, InvalidNamesRefused) {
  EXPECT_TRUE(valid_metric_name("crawler_ha_up"));
  EXPECT_TRUE(valid_metric_name("_x:rule:sum"));
  EXPECT_TRUE(valid_label_name("node"));
  EXPECT_TRUE(valid_label_name("_private"));
  PrometheusText out;
  for (const char* bad : {"", "1abc", "has-dash", "has space", "ünicode", "a\nb", "a{b}", "a\"b"})
    EXPECT_TRUE(refused(out, sample(bad, {}, 1))) << bad;
  for (const char* bad : {"", "1x", "__name__", "__reserved", "with:colon", "has-dash", "a b", "é"})
    EXPECT_TRUE(refused(out, sample("m", {{bad, "v"}}, 1))) << bad;
  EXPECT_TRUE(out.text().empty());
}

TEST(PrometheusText, Utf8Checked) {
  EXPECT_TRUE(valid_utf8("plain é 😀"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // cut short
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  PrometheusText out;
  EXPECT_TRUE(refused(out, sample("m", {{"l", "bad \xff"}}, 1)));
  EXPECT_TRUE(refused(out, sample("m", {}, 1, "help \xc0\xaf")));
}

TEST(PrometheusText, ValuesAsPrometheusReadsThem) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(-0.0), "0");
  EXPECT_EQ(format_metric_value(1), "1");
  EXPECT_EQ(format_metric_value(-3), "-3");
  EXPECT_EQ(format_metric_value(1234567), "1234567");
  EXPECT_EQ(format_metric_value(1e6), "1000000");
  EXPECT_EQ(format_metric_value(1719000000), "1719000000");
  EXPECT_EQ(format_metric_value(9007199254740993.0), "9007199254740992");  // 2^53 + 1 is not a double
  EXPECT_EQ(format_metric_value(1e20), "100000000000000000000");
  EXPECT_EQ(format_metric_value(1e21), "1e+21");
  EXPECT_EQ(format_metric_value(-2.5e300), "-2.5e+300");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(0.1), "0.1");
  EXPECT_EQ(format_metric_value(1.5e-7), "1.5e-07");
  EXPECT_EQ(format_metric_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_metric_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
  // The shortest form reads back as the same double.
  for (double v : {1.0 / 3, 2.0 / 3 * 1e-300, 123456.789, 5e-324, 1.7976931348623157e308}) {
    std::string s = format_metric_value(v);
    double back = 0;
    std::from_chars(s.data(), s.data() + s.size(), back);
    EXPECT_EQ(back, v) << s;
  }
}

TEST(PrometheusText, RowsOfHaMetrics) {
  std::string why;
  auto s = sample_from_row(row("crawler_ha_term", "gauge", "The term", "{\"node\": \"a\"}", "3"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(s->name, "crawler_ha_term");
  EXPECT_EQ(s->kind, MetricKind::gauge);
  EXPECT_EQ(s->help, "The term");
  ASSERT_EQ(s->labels.size(), 1u);
  EXPECT_EQ(s->labels[0], (std::pair<std::string, std::string>("node", "a")));
  EXPECT_EQ(s->value, 3);

  s = sample_from_row(row("m", "counter", "", "{}", "1e+21"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(s->kind, MetricKind::counter);
  EXPECT_TRUE(s->labels.empty());
  EXPECT_EQ(s->value, 1e21);
  // PostgreSQL's spelling of the special values.
  s = sample_from_row(row("m", "gauge", "", "{}", "Infinity"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(format_metric_value(s->value), "+Inf");
  s = sample_from_row(row("m", "gauge", "", "{}", "-Infinity"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(format_metric_value(s->value), "-Inf");
  s = sample_from_row(row("m", "gauge", "", "{}", "NaN"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(format_metric_value(s->value), "NaN");
  s = sample_from_row(row("m", "gauge", "", "{\"q\": \"say \\\"hi\\\"\\n\"}", "-0.5"), &why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(s->labels[0].second, "say \"hi\"\n");
  EXPECT_EQ(s->value, -0.5);

  for (const auto& bad : {row("m", "histogram", "", "{}", "1"), row("m", "gauge", "", "[1]", "1"),
                          row("m", "gauge", "", "{\"n\": 1}", "1"), row("m", "gauge", "", "{\"n\": null}", "1"),
                          row("m", "gauge", "", "not json", "1"), row("m", "gauge", "", "{}", "1,5"),
                          row("m", "gauge", "", "{}", ""), row("m", "gauge", "", "{}", "1 "),
                          row("m", "gauge", "", "{}", "0x10")}) {
    why.clear();
    EXPECT_FALSE(sample_from_row(bad, &why)) << bad[3].value() << " " << bad[4].value();
    EXPECT_FALSE(why.empty());
  }
  auto with_null = row("m", "gauge", "", "{}", "1");
  with_null[4] = std::nullopt;
  EXPECT_FALSE(sample_from_row(with_null, &why));
  EXPECT_FALSE(sample_from_row({std::string("m")}, &why));
}
