// What the crawl command shows: the live line and the summary's reasons
// and explanations.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crawler/progress.hpp"

using namespace crawler;

TEST(Progress, TheLiveLineCountsRetriesAsTheyHappen) {
  SessionStatus s;
  s.queued = 1;
  s.retries = 2;
  RecentRates rates;
  std::string line = progress_line(s, rates, true);
  EXPECT_NE(line.find("errors 0  retries 2"), std::string::npos) << line;
  EXPECT_EQ(line.find("reconnecting"), std::string::npos);
  EXPECT_EQ(line.find("eta"), std::string::npos) << "no rate yet, no estimate: " << line;
  EXPECT_NE(progress_line(s, rates, false).find("[database reconnecting]"), std::string::npos);
}

TEST(Progress, RatesAreOverTheLastSecondsNotSinceTheStart) {
  using namespace std::chrono_literals;
  RecentRates rates(10s);
  RecentRates::Clock::time_point t0{};
  CrawlStats mine;
  SessionStatus s;
  rates.add(t0, mine, s);
  EXPECT_EQ(rates.pages_per_s(), 0);
  // 100 pages in the first 10 s, then nothing for 20 s: the rate falls to 0
  mine.pages = 100;
  s.done = 100;
  rates.add(t0 + 10s, mine, s);
  EXPECT_DOUBLE_EQ(rates.pages_per_s(), 10);
  EXPECT_DOUBLE_EQ(rates.session_urls_per_s(), 10);
  rates.add(t0 + 20s, mine, s);
  rates.add(t0 + 30s, mine, s);
  EXPECT_DOUBLE_EQ(rates.pages_per_s(), 0);
  // then 50 images in 5 s
  mine.images = 50;
  s.done = 150;
  rates.add(t0 + 35s, mine, s);
  EXPECT_DOUBLE_EQ(rates.images_per_s(), 50.0 / 15);
}

TEST(Progress, TheEstimateIsTheFrontierAtTheRecentRate) {
  SessionStatus s;
  EXPECT_EQ(eta_text(s, 10), "");  // nothing left
  s.queued = 90;
  s.leased = 10;
  EXPECT_EQ(eta_text(s, 0), "");  // no rate
  EXPECT_EQ(eta_text(s, 10), "10 s");
  EXPECT_EQ(eta_text(s, 0.4), "4 min 10 s");
  EXPECT_EQ(eta_text(s, 0.01), "2 h 46 min");
  EXPECT_EQ(eta_text(s, 1e-9), "");  // centuries: not an estimate
  RecentRates rates(std::chrono::seconds(10));
  CrawlStats mine;
  rates.add(RecentRates::Clock::time_point{}, mine, s);
  s.done = 20;
  rates.add(RecentRates::Clock::time_point{} + std::chrono::seconds(2), mine, s);
  EXPECT_NE(progress_line(s, rates, true).find("  eta 10 s"), std::string::npos) << progress_line(s, rates, true);
}

TEST(Progress, TheBreakdownCountsResponsesByStatusAndFailuresByKind) {
  CrawlStats mine;
  EXPECT_EQ(breakdown_lines(mine), "");
  mine.statuses = {{200, 150}, {404, 2}, {0, 1}, {301, 3}};
  mine.error_kinds = {{"http", 2}, {"timeout", 1}};
  EXPECT_EQ(breakdown_lines(mine),
            "  responses       200: 150, 301: 3, 404: 2, none: 1\n"
            "  failures        http 2, timeout 1 (retries included)\n");
}

TEST(Progress, StatsJsonHasEveryCountAndSurvivesHostileText) {
  SummaryInput in;
  in.session = 7;
  in.last.status = "finished";
  in.last.pages_fetched = 3;
  in.last.success_rate = 0.75;
  in.mine.pages = 3;
  in.stats.statuses = {{200, 3}, {0, 1}};
  in.stats.error_kinds = {{"connect", 1}};
  in.failures = {{"http://a/\xff\"x", "Couldn't connect \x01"}};
  EarlyFetchStats early;
  early.started = 2;
  auto j = nlohmann::json::parse(stats_json(in, early));
  EXPECT_EQ(j["session"], 7);
  EXPECT_EQ(j["status"], "finished");
  EXPECT_EQ(j["session_counts"]["pages_fetched"], 3);
  EXPECT_DOUBLE_EQ(j["success_rate"].get<double>(), 0.75);
  EXPECT_EQ(j["worker"]["responses_by_status"]["200"], 3);
  EXPECT_EQ(j["worker"]["responses_by_status"]["none"], 1);
  EXPECT_EQ(j["worker"]["failures_by_kind"]["connect"], 1);
  EXPECT_EQ(j["worker"]["early_fetches"]["started"], 2);
  EXPECT_EQ(j["recent_failures"][0]["url"], "http://a/\xef\xbf\xbd\"x");  // not UTF-8: U+FFFD
  in.last.success_rate.reset();
  in.last.status.clear();
  j = nlohmann::json::parse(stats_json(in, early));
  EXPECT_TRUE(j["success_rate"].is_null());
  EXPECT_TRUE(j["status"].is_null());
}

TEST(Progress, ASeedThatFailedSaysItsHostWasUnreachable) {
  std::vector<std::string> seeds = {"http://127.0.0.1:9/"};
  std::string text = failure_lines(
      1, {{"http://127.0.0.1:9/", "Couldn't connect to server: Failed to connect to 127.0.0.1 port 9"}}, seeds);
  EXPECT_EQ(text,
            "  1 URL failed: Couldn't connect to server: Failed to connect to 127.0.0.1 port 9 (seed host "
            "unreachable: http://127.0.0.1:9/)\n");
  text = failure_lines(1, {{"http://127.0.0.1:9/", "HTTP 404"}}, seeds);
  EXPECT_EQ(text, "  1 URL failed: HTTP 404 (the seed http://127.0.0.1:9/)\n");
  EXPECT_EQ(failure_lines(0, {}, seeds), "");
  EXPECT_EQ(failure_lines(3, {}, seeds), "  3 URLs failed\n");
}

TEST(Progress, ManyFailuresAreGroupedByReason) {
  std::vector<FailedUrl> recent = {{"http://a/1.png", "HTTP 404"},
                                   {"http://a/2.png", "HTTP 404"},
                                   {"http://a/3.png", "too large: body larger than 5 bytes"},
                                   {"http://a/4.png", "HTTP 404"}};
  EXPECT_EQ(failure_lines(4, recent, {}),
            "  4 URLs failed:\n"
            "    3 URLs: HTTP 404\n"
            "    1 URL: too large: body larger than 5 bytes\n");
  EXPECT_EQ(failure_lines(30, recent, {}).substr(0, 45), "  30 URLs failed; the reasons of the last 4:\n");
}

TEST(Progress, TheSummaryExplainsCountsThatDifferFromThisWorkers) {
  SessionStatus s;
  s.pages_fetched = 71;
  s.images_stored = 40;
  SessionTally mine;
  mine.pages = 68;
  mine.images = 40;
  EXPECT_EQ(counts_explanation(s, mine), "  other workers, or earlier runs of this session, fetched 3 more pages\n");
  mine.pages = 71;
  mine.images = 42;
  EXPECT_EQ(counts_explanation(s, mine),
            "  2 images this worker recorded were already in the images table under the same URL (the session "
            "counts new rows only)\n");
  mine.images = 41;
  EXPECT_EQ(counts_explanation(s, mine),
            "  1 image this worker recorded was already in the images table under the same URL (the session "
            "counts new rows only)\n");
  mine.images = 39;
  EXPECT_EQ(counts_explanation(s, mine), "  other workers, or earlier runs of this session, stored 1 more image\n");
  mine.images = 40;
  EXPECT_EQ(counts_explanation(s, mine), "");
}

TEST(Progress, TheSummaryHasTheReasonsAndThisWorkersPart) {
  SummaryInput in;
  in.session = 7;
  in.last.status = "finished";
  in.last.failed = 1;
  in.last.errors = 1;
  in.last.retries = 2;
  in.seconds = 6;
  in.failures = {{"http://127.0.0.1:9/", "Couldn't connect to server"}};
  in.seeds = {"http://127.0.0.1:9/"};
  std::string text = crawl_summary(in);
  EXPECT_NE(text.find("session 7: finished in 6.00 s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  failed URLs     1 (errors 1, retries 2)\n"
                      "  1 URL failed: Couldn't connect to server (seed host unreachable: http://127.0.0.1:9/)\n"
                      "  this worker     0 pages, 0 images"),
            std::string::npos)
      << text;
}
