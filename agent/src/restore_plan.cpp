// Choosing the backup a restore starts from (restore_plan.hpp).
#include "crawler/agent/restore_plan.hpp"

#include <cstdio>
#include <ctime>
#include <regex>
#include <tuple>

namespace crawler::agent {
namespace {

bool reaches(const BackupInfo& b, const RestoreTarget& t) {
  if (b.error) return false;
  switch (t.kind) {
    case RestoreTarget::Kind::latest: return true;
    case RestoreTarget::Kind::time: return b.stop_time < t.time;
    case RestoreTarget::Kind::set: return b.label == t.label;
  }
  return false;
}

}  // namespace

std::optional<RestoreChoice> choose_restore(const std::map<std::string, StanzaInfo>& stanzas,
                                            const std::string& only_stanza, const RestoreTarget& target,
                                            std::string* error) {
  std::optional<RestoreChoice> best;
  int with_label = 0;
  for (const auto& [name, info] : stanzas) {
    if (!only_stanza.empty() && name != only_stanza) continue;
    const BackupInfo* newest = nullptr;
    for (const auto& b : info.backups)
      if (reaches(b, target) && (!newest || b.stop_time > newest->stop_time)) newest = &b;
    if (!newest) continue;
    if (target.kind == RestoreTarget::Kind::set) ++with_label;
    auto rank = [](const std::string& n, const BackupInfo& b) { return std::make_tuple(b.term, b.stop_time, n); };
    if (!best || rank(name, *newest) > rank(best->stanza, best->backup)) best = RestoreChoice{name, *newest, ""};
  }
  if (!only_stanza.empty() && !stanzas.count(only_stanza)) {
    *error = "the repository has no stanza " + only_stanza;
    return std::nullopt;
  }
  if (with_label > 1) {
    *error = "the backup " + target.label + " is in more than one stanza: name the stanza (--stanza)";
    return std::nullopt;
  }
  if (!best) {
    const std::string where = only_stanza.empty() ? "no stanza of the repository" : "the stanza " + only_stanza;
    switch (target.kind) {
      case RestoreTarget::Kind::latest: *error = where + " holds a usable backup"; break;
      case RestoreTarget::Kind::time:
        *error = where + " holds a backup that ended before " + utc_text(target.time) +
                 ": a restore cannot stop before the end of the backup it starts from";
        break;
      case RestoreTarget::Kind::set: *error = where + " holds a usable backup " + target.label; break;
    }
    return std::nullopt;
  }
  const std::string term = best->backup.term >= 0 ? "term " + std::to_string(best->backup.term) : "no term recorded";
  switch (target.kind) {
    case RestoreTarget::Kind::latest:
      best->why = "the newest backup of the stanza made in the highest term (" + term + ")";
      break;
    case RestoreTarget::Kind::time:
      best->why = "the newest backup before " + utc_text(target.time) + " of the stanza made in the highest term (" +
                  term + ")";
      break;
    case RestoreTarget::Kind::set: best->why = "the backup asked for (" + term + ")"; break;
  }
  return best;
}

std::string utc_text(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", &tm);
  return buf;
}

std::string TimePoint::target_text() const {
  std::string s = utc_text(seconds);
  return s.substr(0, s.size() - 3) + fraction + "+00";
}

std::optional<TimePoint> parse_time_text(const std::string& text) {
  static const std::regex form(
      R"(^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(?::?\d{2})?)?$)");
  std::smatch m;
  if (text.size() > 40 || !std::regex_match(text, m, form)) return std::nullopt;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  const int mday = tm.tm_mday;
  std::int64_t t = timegm(&tm);
  if (tm.tm_mday != mday) return std::nullopt;  // 31 April normalized into May
  const std::string zone = m[8].matched ? m[8].str() : "";
  if (!zone.empty() && zone != "Z") {
    const int sign = zone[0] == '-' ? -1 : 1;
    const int hours = std::stoi(zone.substr(1, 2));
    int minutes = 0;
    if (zone.size() > 3) minutes = std::stoi(zone.substr(zone.size() - 2));
    if (hours > 15 || minutes > 59) return std::nullopt;
    t -= sign * (hours * 3600 + minutes * 60);
  }
  return TimePoint{t, m[7].matched ? m[7].str() : ""};
}

}  // namespace crawler::agent
