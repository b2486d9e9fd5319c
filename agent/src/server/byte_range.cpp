#include "crawler/agent/server/byte_range.hpp"

#include <limits>
#include <optional>

namespace crawler::agent {
namespace {

constexpr std::uint64_t kHuge = std::numeric_limits<std::uint64_t>::max();

// Decimal digits only (no sign, no space); saturates at 2^64-1, which no
// file reaches, so an absurd number still compares as "beyond the end".
std::optional<std::uint64_t> digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    unsigned d = static_cast<unsigned>(c - '0');
    v = v > (kHuge - d) / 10 ? kHuge : v * 10 + d;
  }
  return v;
}

bool unit_is_bytes(std::string_view unit) {
  constexpr std::string_view bytes = "bytes";
  if (unit.size() != bytes.size()) return false;
  for (std::size_t i = 0; i < unit.size(); ++i)
    if ((unit[i] | 0x20) != bytes[i]) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

RangeAnswer parse_range(std::string_view header, std::uint64_t size) {
  RangeAnswer whole;
  std::size_t eq = header.find('=');
  if (eq == std::string_view::npos || !unit_is_bytes(trim(header.substr(0, eq)))) return whole;
  std::string_view spec = trim(header.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return whole;
  std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);

  RangeAnswer unsatisfiable{RangeAnswer::unsatisfiable};
  if (a.empty()) {  // "-n": the last n bytes
    auto n = digits(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return unsatisfiable;
    std::uint64_t count = std::min(*n, size);
    return {RangeAnswer::partial, size - count, size - 1};
  }
  auto first = digits(a);
  if (!first) return whole;
  std::uint64_t last = kHuge;
  if (!b.empty()) {
    auto l = digits(b);
    if (!l || *l < *first) return whole;
    last = *l;
  }
  if (*first >= size) return unsatisfiable;
  return {RangeAnswer::partial, *first, std::min(last, size - 1)};
}

}  // namespace crawler::agent
