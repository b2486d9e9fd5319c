#include "crawler/sql_literal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace crawler {

bool PgArrayLiteral::add_text(std::string_view element) {
  if (element.find('\0') != std::string_view::npos) return false;
  text_.reserve(text_.size() + element.size() + 4);
  if (size_++) text_ += ',';
  text_ += '"';
  for (char c : element) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
  return true;
}

void PgArrayLiteral::add_bigint(std::int64_t element) {
  if (size_++) text_ += ',';
  text_ += std::to_string(element);
}

std::optional<std::string> pg_text_array(const std::vector<std::string>& v) {
  PgArrayLiteral a;
  for (const auto& e : v)
    if (!a.add_text(e)) return std::nullopt;
  return a.str();
}

std::string pg_bigint_array(const std::vector<std::int64_t>& v) {
  PgArrayLiteral a;
  for (auto e : v) a.add_bigint(e);
  return a.str();
}

std::string pg_interval_seconds(long seconds) { return std::to_string(seconds) + " seconds"; }

std::string pg_interval_fractional_seconds(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN too
  seconds = std::min(seconds, 1e9);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f seconds", seconds);
  return buf;
}

std::string pg_timestamp_utc(std::time_t t) {
  // 9999-12-31 23:59:59 UTC: gmtime_r stays within a four-digit year.
  constexpr std::time_t kLast = 253402300799;
  t = std::clamp<std::time_t>(t, 0, kLast);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", &tm);
  return buf;
}

std::string valid_text(std::string_view in, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(in.size(), max_bytes));
  for (std::size_t i = 0; i < in.size();) {
    auto c = static_cast<unsigned char>(in[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= in.size() && c != 0;
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) >> 6) == 2;
    if (!ok) len = 1;
    if (out.size() + len > max_bytes) break;
    if (ok) out.append(in, i, len);
    else out.push_back('?');
    i += len;
  }
  return out;
}

std::string one_line(std::string_view in, std::size_t max_bytes) {
  std::string s(in);
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return valid_text(s, max_bytes);
}

}  // namespace crawler
