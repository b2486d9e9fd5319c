#include "crawler/status_view.hpp"

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "crawler/progress.hpp"

namespace crawler {
namespace {

constexpr std::size_t kMinCut = 10;

// Display width of UTF-8 text: code points, not bytes (URLs are ASCII,
// errors and details may not be).
std::size_t columns_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// The first `width` columns of `s`, ending with "..." when cut; never
// splits a UTF-8 sequence.
std::string cut(const std::string& s, std::size_t width) {
  if (columns_of(s) <= width) return s;
  std::size_t keep = width > 3 ? width - 3 : 0, n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == keep) break;
      ++n;
    }
  }
  return s.substr(0, i) + "...";
}

std::string pad(const std::string& s, std::size_t width) {
  std::size_t n = columns_of(s);
  return n >= width ? s : s + std::string(width - n, ' ');
}

// The value of `column` in row `i`; "" for NULL or a missing column.
std::string value(const DbResult& r, std::size_t i, const std::string& column) {
  const Param& p = r.at(i, column);
  return p ? *p : "";
}

std::string yes_no(const std::string& v) {
  if (v == "t") return "yes";
  if (v == "f") return "no";
  return v;
}

// "2026-11-25 11:00:05" -> "11-25 11:00"
std::string short_time(const std::string& t) { return t.size() >= 16 ? t.substr(5, 11) : t; }

// The node's name, "*" for the node that answered.
std::string node_label(const DbResult& r, std::size_t i) {
  return value(r, i, "node_name") + (value(r, i, "is_local") == "t" ? "*" : "");
}

std::string human(const std::string& bytes) {
  if (bytes.empty()) return "";
  return human_bytes(std::strtod(bytes.c_str(), nullptr));
}

}  // namespace

std::string render_table(const TextTable& t, std::size_t width) {
  const std::size_t n = t.columns.size();
  std::vector<std::size_t> w(n);
  for (std::size_t c = 0; c < n; ++c) {
    w[c] = columns_of(t.columns[c]);
    for (const auto& row : t.rows)
      if (c < row.size()) w[c] = std::max(w[c], columns_of(row[c]));
  }
  auto total = [&] {
    std::size_t sum = 1 + (n ? 3 * (n - 1) : 0);
    for (auto x : w) sum += x;
    return sum;
  };
  auto cuttable = [&](std::size_t c) { return c < t.cuttable.size() && t.cuttable[c]; };
  while (width > 0 && total() > width) {
    std::size_t widest = n;
    for (std::size_t c = 0; c < n; ++c)
      if (cuttable(c) && w[c] > std::max(kMinCut, columns_of(t.columns[c])) && (widest == n || w[c] > w[widest]))
        widest = c;
    if (widest == n) break;  // nothing left to narrow: the line stays wider
    --w[widest];
  }
  std::ostringstream out;
  for (std::size_t c = 0; c < n; ++c) out << (c ? " | " : " ") << pad(t.columns[c], c + 1 < n ? w[c] : 0);
  out << "\n";
  for (std::size_t c = 0; c < n; ++c) out << (c ? "-+-" : "-") << std::string(w[c], '-');
  out << "\n";
  for (const auto& row : t.rows) {
    for (std::size_t c = 0; c < n; ++c) {
      std::string v = c < row.size() ? row[c] : "";
      if (cuttable(c)) v = cut(v, w[c]);
      out << (c ? " | " : " ") << (c + 1 < n ? pad(v, w[c]) : v);
    }
    out << "\n";
  }
  out << "(" << t.rows.size() << " row" << (t.rows.size() == 1 ? "" : "s") << ")\n\n";
  return out.str();
}

TextTable wide_table(const DbResult& r) {
  TextTable t;
  t.columns = r.columns;
  for (const auto& row : r.rows) {
    std::vector<std::string> cells;
    for (const auto& p : row) cells.push_back(p ? *p : "");
    t.rows.push_back(std::move(cells));
  }
  return t;
}

TextTable sessions_table(const DbResult& r) {
  TextTable t;
  t.columns = {"id", "status", "started", "pages", "images", "bytes", "errors", "queued", "leased", "failed"};
  for (std::size_t i = 0; i < r.rows.size(); ++i)
    t.rows.push_back({value(r, i, "id"), value(r, i, "status"), short_time(value(r, i, "started")),
                      value(r, i, "pages_fetched"), value(r, i, "images_stored"), human(value(r, i, "bytes_stored")),
                      value(r, i, "errors"), value(r, i, "queued"), value(r, i, "leased"), value(r, i, "failed")});
  return t;
}

TextTable errors_table(const DbResult& r) {
  TextTable t;
  t.columns = {"session", "url", "tries", "error", "at"};
  t.cuttable = {false, true, false, true, false};
  for (std::size_t i = 0; i < r.rows.size(); ++i)
    t.rows.push_back({value(r, i, "session_id"), value(r, i, "url"), value(r, i, "attempts"),
                      value(r, i, "last_error"), short_time(value(r, i, "at"))});
  return t;
}

TextTable ha_status_table(const DbResult& r) {
  TextTable t;
  struct Col {
    const char* name;
    bool cuttable;
    bool present;
  };
  // Each narrow column and whether the answer has what it shows.
  std::vector<Col> cols = {
      {"node", true, r.has_column("node_name")},
      {"role", false, r.has_column("role")},
      {"term", false, r.has_column("term")},
      {"healthy", false, r.has_column("healthy")},
      {"replication", false, r.has_column("replication_mode") || r.has_column("sync_state")},
      {"lag", false, r.has_column("lag_bytes") || r.has_column("lag_seconds")},
      {"flags", false, r.has_column("fenced") || r.has_column("needs_rejoin") || r.has_column("paused")},
  };
  for (const auto& c : cols)
    if (c.present) {
      t.columns.push_back(c.name);
      t.cuttable.push_back(c.cuttable);
    }
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    std::vector<std::string> row;
    auto add = [&](const Col& c, std::string v) {
      if (c.present) row.push_back(std::move(v));
    };
    add(cols[0], node_label(r, i));
    add(cols[1], value(r, i, "role"));
    add(cols[2], value(r, i, "term"));
    std::string healthy = yes_no(value(r, i, "healthy"));
    std::string failures = value(r, i, "consecutive_failures");
    if (!failures.empty() && failures != "0") healthy += " (" + failures + ")";
    add(cols[3], healthy);
    std::string mode = value(r, i, "replication_mode"), sync = value(r, i, "sync_state");
    add(cols[4], mode.empty() || sync.empty() ? mode + sync : mode + "/" + sync);
    std::string lag = human(value(r, i, "lag_bytes"));
    if (std::string secs = value(r, i, "lag_seconds"); !secs.empty()) {
      std::ostringstream s;
      s << std::fixed << std::setprecision(1) << std::strtod(secs.c_str(), nullptr) << " s";
      lag += (lag.empty() ? "" : ", ") + s.str();
    }
    add(cols[5], lag);
    std::string flags;
    for (auto [column, shown] : {std::pair{"fenced", "fenced"}, std::pair{"needs_rejoin", "rejoin"},
                                 std::pair{"paused", "paused"}})
      if (value(r, i, column) == "t") flags += (flags.empty() ? "" : ",") + std::string(shown);
    add(cols[6], flags.empty() ? "-" : flags);
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string ha_status_details(const DbResult& r, std::size_t width) {
  if (!r.has_column("detail")) return "";
  std::string out;
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    std::string detail = value(r, i, "detail");
    if (detail.empty()) continue;
    std::string line = "  " + node_label(r, i) + ": " + detail;
    out += (width ? cut(line, width) : line) + "\n";
  }
  return out;
}

}  // namespace crawler
