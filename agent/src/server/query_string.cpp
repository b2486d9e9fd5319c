#include "crawler/agent/server/query_string.hpp"

namespace crawler::agent {
namespace {

constexpr std::size_t kMaxPairs = 32;
constexpr std::size_t kMaxPart = 1024;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; false on a bad escape or a NUL.
bool decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_query(std::string_view target, std::string* why) {
  std::map<std::string, std::string> pairs;
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return pairs;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    if (pairs.size() == kMaxPairs) {
      *why = "at most " + std::to_string(kMaxPairs) + " query parameters";
      return std::nullopt;
    }
    std::size_t eq = pair.find('=');
    std::string_view raw_name = pair.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (raw_name.size() > kMaxPart || raw_value.size() > kMaxPart) {
      *why = "a query parameter's name or value is longer than " + std::to_string(kMaxPart) + " bytes";
      return std::nullopt;
    }
    std::string name, value;
    if (!decode(raw_name, &name) || !decode(raw_value, &value)) {
      *why = "the query holds a bad %-escape or a NUL byte";
      return std::nullopt;
    }
    if (name.empty()) {
      *why = "a query parameter has no name";
      return std::nullopt;
    }
    if (!pairs.emplace(std::move(name), std::move(value)).second) {
      *why = "a query parameter is given twice";
      return std::nullopt;
    }
  }
  return pairs;
}

}  // namespace crawler::agent
