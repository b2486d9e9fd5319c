#include "crawler/agent/server/prometheus_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace crawler::agent {
namespace {

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_digit(char c) { return c >= '0' && c <= '9'; }

// A double as PostgreSQL's float8 output writes it. from_chars, not
// strtod: the locale must not change what a comma or point means.
std::optional<double> parse_double(const std::string& text) {
  std::string_view s = text;
  // PostgreSQL writes no '+', but from_chars refuses one: take it as a sign.
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<MetricKind> parse_metric_kind(std::string_view text) {
  if (text == "gauge") return MetricKind::gauge;
  if (text == "counter") return MetricKind::counter;
  if (text == "untyped") return MetricKind::untyped;
  return std::nullopt;
}

const char* metric_kind_name(MetricKind kind) {
  switch (kind) {
    case MetricKind::gauge:
      return "gauge";
    case MetricKind::counter:
      return "counter";
    case MetricKind::untyped:
      return "untyped";
  }
  return "untyped";
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(ascii_letter(c) || c == '_' || c == ':' || (i > 0 && ascii_digit(c)))) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(ascii_letter(c) || c == '_' || (i > 0 && ascii_digit(c)))) return false;
  }
  return true;
}

bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int more;
    unsigned cp;
    unsigned min;
    if ((c & 0xE0) == 0xC0) more = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) more = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) more = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    if (end - p <= more) return false;
    for (int i = 1; i <= more; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past Unicode's end.
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    p += more + 1;
  }
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";
  char buf[64];
  std::to_chars_result r;
  // Counts and byte sizes read as the numbers they are, not 1.234567e+06;
  // from 1e21 on the digits would be mostly noise.
  if (std::trunc(value) == value && std::fabs(value) < 1e21)
    r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  else
    r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

std::optional<MetricSample> sample_from_row(const std::vector<Param>& row, std::string* why) {
  if (row.size() != 5) {
    *why = "a row of " + std::to_string(row.size()) + " columns, not 5";
    return std::nullopt;
  }
  for (const Param& p : row)
    if (!p) {
      *why = "a NULL in the row";
      return std::nullopt;
    }
  MetricSample s;
  s.name = *row[0];
  auto kind = parse_metric_kind(*row[1]);
  if (!kind) {
    *why = s.name + ": kind \"" + row[1]->substr(0, 32) + "\" is not gauge, counter or untyped";
    return std::nullopt;
  }
  s.kind = *kind;
  s.help = *row[2];
  nlohmann::json labels = nlohmann::json::parse(*row[3], nullptr, false);
  if (labels.is_discarded() || !labels.is_object()) {
    *why = s.name + ": labels are not a JSON object";
    return std::nullopt;
  }
  for (const auto& [key, value] : labels.items()) {
    if (!value.is_string()) {
      *why = s.name + ": label " + key.substr(0, 64) + " is not a string";
      return std::nullopt;
    }
    s.labels.emplace_back(key, value.get<std::string>());
  }
  auto value = parse_double(*row[4]);
  if (!value) {
    *why = s.name + ": value \"" + row[4]->substr(0, 32) + "\" is not a number";
    return std::nullopt;
  }
  s.value = *value;
  return s;
}

bool PrometheusText::add(const MetricSample& sample, std::string* why) {
  const std::string& name = sample.name;
  if (!valid_metric_name(name)) {
    *why = "metric name \"" + name.substr(0, 64) + "\" is not valid";
    return false;
  }
  if (!valid_utf8(sample.help)) {
    *why = name + ": its help text is not UTF-8";
    return false;
  }
  MetricLabels labels;
  for (const auto& [k, v] : sample.labels) {
    if (!valid_label_name(k)) {
      *why = name + ": label name \"" + k.substr(0, 64) + "\" is not valid";
      return false;
    }
    if (!valid_utf8(v)) {
      *why = name + ": the value of label " + k + " is not UTF-8";
      return false;
    }
    if (!v.empty()) labels.emplace_back(k, v);
  }
  std::sort(labels.begin(), labels.end());
  std::string series;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0 && labels[i].first == labels[i - 1].first) {
      *why = name + ": label " + labels[i].first + " twice";
      return false;
    }
    series += i == 0 ? "{" : ",";
    series += labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
  }
  if (!series.empty()) series += "}";

  const bool same_family = !family_.empty() && name == family_;
  if (same_family) {
    if (sample.kind != kind_ || sample.help != help_) {
      *why = name + ": a sample with another type or help text than the family's first";
      return false;
    }
    if (series_.count(series)) {
      *why = name + series + ": the same series twice";
      return false;
    }
  } else if (families_.count(name)) {
    *why = name + ": its family was written already, before " + family_ + " (a family's samples must be together)";
    return false;
  }

  if (!same_family) {
    if (!sample.help.empty()) out_ += "# HELP " + name + " " + escape_help(sample.help) + "\n";
    out_ += "# TYPE " + name + " " + metric_kind_name(sample.kind) + "\n";
    family_ = name;
    kind_ = sample.kind;
    help_ = sample.help;
    families_.insert(name);
    series_.clear();
  }
  series_.insert(series);
  out_ += name + series + " " + format_metric_value(sample.value) + "\n";
  return true;
}

bool PrometheusText::has_family(std::string_view name) const { return families_.find(name) != families_.end(); }

}  // namespace crawler::agent
