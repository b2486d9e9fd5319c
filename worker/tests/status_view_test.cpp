// The status command's tables: narrow ones fit 100 columns, --wide keeps
// everything.
#include <gtest/gtest.h>

#include <sstream>

#include "crawler/status_view.hpp"

using namespace crawler;

namespace {
std::size_t widest_line(const std::string& text) {
  std::istringstream in(text);
  std::size_t w = 0;
  for (std::string line; std::getline(in, line);) w = std::max(w, line.size());
  return w;
}

// ha_status() as the extension answers it (its twenty columns), for two
// nodes and a witness, with a long detail.
DbResult ha_answer() {
  DbResult r;
  r.ok = true;
  r.columns = {"node_name", "node_id", "is_local", "role", "term", "healthy", "last_check", "latency_ms",
               "consecutive_failures", "replication_mode", "sync_state", "lag_bytes", "lag_seconds",
               "last_failover", "last_failover_ms", "fenced", "needs_rejoin", "paused", "detail", "agent_url"};
  std::string detail(300, 'd');
  r.rows = {{"alpha", "1", "t", "primary", "3", "t", "2026-12-06 02:00:00.123456+00", "0.8", "0", "semi_sync",
             "sync", "0", "0", "2026-12-06 01:00:00+00", "1234.5", "f", "f", "f", "this node " + detail,
             "https://10.0.0.5:8000"},
            {"beta", "2", "f", "standby", "3", "f", "2026-12-06 02:00:00.123456+00", "10000.2", "4", "semi_sync",
             "async", "123456789", "12.25", std::nullopt, std::nullopt, "t", "t", "f", "peer " + detail,
             std::nullopt},
            {"witness", "3", "f", "witness", "3", "t", std::nullopt, std::nullopt, "0", std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, std::nullopt, std::nullopt, "f", "f", "t", std::nullopt, std::nullopt}};
  return r;
}
}  // namespace

TEST(StatusView, HaStatusFitsAHundredColumns) {
  DbResult r = ha_answer();
  std::string text = render_table(ha_status_table(r), kStatusWidth);
  EXPECT_LE(widest_line(text), kStatusWidth) << text;
  EXPECT_NE(text.find(" alpha* "), std::string::npos) << text;
  EXPECT_NE(text.find("semi_sync/sync"), std::string::npos);
  EXPECT_NE(text.find("no (4)"), std::string::npos);
  EXPECT_NE(text.find("123.5 MB, 12.2 s"), std::string::npos) << text;
  EXPECT_NE(text.find("fenced,rejoin"), std::string::npos);
  EXPECT_NE(text.find("paused"), std::string::npos);
  EXPECT_NE(text.find("(3 rows)"), std::string::npos);
  // The details below it, one line each, cut to the width.
  std::string details = ha_status_details(r, kStatusWidth);
  EXPECT_LE(widest_line(details), kStatusWidth) << details;
  EXPECT_EQ(details.substr(0, 21), "  alpha*: this node d") << details;
  EXPECT_NE(details.find("\n  beta: peer ddd"), std::string::npos) << details;
  EXPECT_NE(details.find("d...\n"), std::string::npos) << "the detail is cut";
  EXPECT_EQ(details.find("witness"), std::string::npos) << "no line without a detail";
  EXPECT_NE(ha_status_details(r, 0).find(std::string(300, 'd')), std::string::npos);
  // A long node name is cut, the table still fits.
  r.rows[1][0] = "beta-" + std::string(80, 'n') + ".example.org";
  EXPECT_LE(widest_line(render_table(ha_status_table(r), kStatusWidth)), kStatusWidth);
}

TEST(StatusView, WideKeepsEveryColumnAndValue) {
  std::string text = render_table(wide_table(ha_answer()), 0);
  for (const char* c : {"node_id", "last_check", "latency_ms", "last_failover_ms", "agent_url"})
    EXPECT_NE(text.find(c), std::string::npos) << c;
  EXPECT_NE(text.find(std::string(300, 'd')), std::string::npos);
  EXPECT_GT(widest_line(text), 300u);
}

TEST(StatusView, ErrorsCutTheUrlAndTheErrorToFit) {
  DbResult r;
  r.ok = true;
  r.columns = {"session_id", "url", "attempts", "last_error", "at"};
  r.rows = {{"12", "http://example.test/" + std::string(200, 'u') + ".png", "3",
             "Timeout was reached: " + std::string(200, 'e'), "2026-12-06 02:00:05"}};
  std::string text = render_table(errors_table(r), kStatusWidth);
  EXPECT_LE(widest_line(text), kStatusWidth) << text;
  EXPECT_NE(text.find("http://example.test/uu"), std::string::npos);
  EXPECT_NE(text.find("Timeout was reached: ee"), std::string::npos);
  EXPECT_NE(text.find("12-06 02:00"), std::string::npos);
}

TEST(StatusView, SessionsUseShortNamesAndHumanBytes) {
  DbResult r;
  r.ok = true;
  r.columns = {"id", "status", "started", "pages_fetched", "images_stored", "bytes_stored",
               "errors", "queued", "leased", "failed"};
  r.rows = {{"1025", "running", "2026-12-06 02:00:05", "1234567", "7654321", "123456789012", "12345", "123456",
             "64", "12345"}};
  std::string text = render_table(sessions_table(r), kStatusWidth);
  EXPECT_LE(widest_line(text), kStatusWidth) << text;
  EXPECT_NE(text.find("123.5 GB"), std::string::npos) << text;
  EXPECT_NE(text.find("12-06 02:00"), std::string::npos);
}

TEST(StatusView, CutsNeverSplitAUtf8Character) {
  TextTable t;
  t.columns = {"x"};
  t.cuttable = {true};
  t.rows = {{std::string(20, 'a') + "\xc3\xa9\xc3\xa9\xc3\xa9"}};
  std::string text = render_table(t, 12);
  EXPECT_NE(text.find(" aaaaaaaa...\n"), std::string::npos) << text;
  t.rows = {{"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"}};
  text = render_table(t, 12);
  EXPECT_NE(text.find(" \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...\n"), std::string::npos) << text;
}
