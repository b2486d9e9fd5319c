// Prometheus' text exposition format (version 0.0.4), as the agent's
// /metrics writes it: samples grouped in families, each family's HELP and
// TYPE once before its first sample, label values escaped, numbers as
// Prometheus' parser reads them. The rules are checked here rather than
// trusted, since most rows come from SQL (ha_metrics()): a row that would
// make the whole scrape fail in Prometheus is refused alone.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler::agent {

// The metric types the agent writes. Histograms and summaries are not
// among them: their samples follow rules of their own (_bucket, _sum).
enum class MetricKind { gauge, counter, untyped };

// "gauge", "counter" or "untyped" as a kind; nullopt for anything else.
std::optional<MetricKind> parse_metric_kind(std::string_view text);

// The kind's name as the TYPE line writes it.
const char* metric_kind_name(MetricKind kind);

// Label names and values, in any order (they are written sorted by name).
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One sample and the family it belongs to.
struct MetricSample {
  std::string name;
  MetricKind kind = MetricKind::gauge;
  std::string help;  // empty: no HELP line
  MetricLabels labels;
  double value = 0;
};

// Whether `name` is a metric name Prometheus takes: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool valid_metric_name(std::string_view name);

// Whether `name` is a label name a target may send: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with "__" (reserved for Prometheus' own labels).
bool valid_label_name(std::string_view name);

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates),
// as Prometheus requires of label values and help texts.
bool valid_utf8(std::string_view text);

// `value` as a label value between the quotes: \ " and newline escaped as
// \\ \" \n; everything else as it is.
std::string escape_label_value(std::string_view value);

// `text` as a HELP line's text: \ and newline escaped as \\ \n (quotes are
// not escaped there).
std::string escape_help(std::string_view text);

// `value` as Prometheus reads it: NaN, +Inf, -Inf; a whole number below
// 1e21 in plain digits (1234567, not 1.234567e+06); anything else in the
// shortest form that reads back as the same double (0.25, 1.5e-07,
// 1e+21). Negative zero is 0.
std::string format_metric_value(double value);

// A row of ha_metrics() as its text values: name, kind, help, labels (a
// JSON object whose members are all strings) and value (as PostgreSQL
// writes a double precision: 1.5, 1e+21, Infinity, -Infinity, NaN). nullopt
// with *why when the row has another number of columns, a NULL, a kind
// parse_metric_kind() refuses, labels that are not such an object, or a
// value that is not a number. The names are checked by PrometheusText::add().
std::optional<MetricSample> sample_from_row(const std::vector<Param>& row, std::string* why);

// The exposition being written, a sample at a time.
class PrometheusText {
 public:
  // Appends `sample`: first its family's HELP (when it has a help text) and
  // TYPE lines when it starts a family, then its line. Returns false with
  // *why, the text unchanged, when the sample is refused:
  // - a metric or label name that is not valid, a label name twice, a
  //   label value or help text that is not UTF-8;
  // - a sample of the family being written with another kind or help;
  // - a sample of a family written earlier and followed by another: the
  //   format wants a family's lines together, and two runs of one name
  //   mean two sources describe the same metric, a mistake merging would
  //   hide (and merging would mean holding the text back until the end);
  // - a series (name and label set) written already.
  // A label with an empty value is left out: Prometheus takes it for absent,
  // so {a=""} and {} are the same series.
  bool add(const MetricSample& sample, std::string* why);

  // Whether the family `name` has been written (it then takes no sample
  // unless it is the last one written).
  bool has_family(std::string_view name) const;

  // The exposition so far: complete lines, each ending in "\n".
  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::string family_;  // the family being written ("" before the first)
  MetricKind kind_ = MetricKind::gauge;
  std::string help_;
  std::set<std::string, std::less<>> families_;  // every family written
  std::set<std::string> series_;                 // the label sets of family_'s samples
};

}  // namespace crawler::agent
