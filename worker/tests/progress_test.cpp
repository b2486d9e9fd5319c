// What the crawl command shows: the live line and the summary's reasons
// and explanations.
#include <gtest/gtest.h>

#include "crawler/progress.hpp"

using namespace crawler;

TEST(Progress, TheLiveLineCountsRetriesAsTheyHappen) {
  SessionStatus s;
  s.queued = 1;
  s.retries = 2;
  CrawlStats mine;
  std::string line = progress_line(s, mine, 10, true);
  EXPECT_NE(line.find("errors 0  retries 2"), std::string::npos) << line;
  EXPECT_EQ(line.find("reconnecting"), std::string::npos);
  EXPECT_NE(progress_line(s, mine, 10, false).find("[database reconnecting]"), std::string::npos);
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
