// choose_restore() and the --time forms (restore_plan.hpp).
#include "crawler/agent/restore_plan.hpp"

#include <gtest/gtest.h>

namespace crawler::agent {
namespace {

BackupInfo backup(const std::string& label, std::int64_t stop, std::int64_t term, bool error = false) {
  BackupInfo b;
  b.label = label;
  b.type = label.find('_') == std::string::npos ? "full" : "incr";
  b.start_time = stop - 5;
  b.stop_time = stop;
  b.term = term;
  b.error = error;
  return b;
}

// db1 primary in term 1 (backups at 100 and 200), failover at 250, db2
// primary in term 2 (backups at 300 and 400).
std::map<std::string, StanzaInfo> pair_history() {
  std::map<std::string, StanzaInfo> s;
  s["db1"].backups = {backup("20261206-000100F", 100, 1), backup("20261206-000100F_20261206-000200I", 200, 1)};
  s["db2"].backups = {backup("20261206-000300F", 300, 2), backup("20261206-000300F_20261206-000400I", 400, 2)};
  return s;
}

RestoreTarget at(std::int64_t t) { return {RestoreTarget::Kind::time, t, ""}; }

TEST(RestorePlanTest, LatestIsTheNewestBackupOfTheHighestTerm) {
  std::string error;
  auto c = choose_restore(pair_history(), "", {}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db2");
  EXPECT_EQ(c->backup.label, "20261206-000300F_20261206-000400I");
}

TEST(RestorePlanTest, ATimeTakesTheNewestBackupThatEndedBeforeIt) {
  std::string error;
  auto c = choose_restore(pair_history(), "", at(250), &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db1");
  EXPECT_EQ(c->backup.label, "20261206-000100F_20261206-000200I");
  c = choose_restore(pair_history(), "", at(350), &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db2");
  EXPECT_EQ(c->backup.label, "20261206-000300F");
}

TEST(RestorePlanTest, ABackupEndingAtTheTargetSecondCannotReachIt) {
  std::string error;
  auto c = choose_restore(pair_history(), "", at(200), &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->backup.label, "20261206-000100F");
}

TEST(RestorePlanTest, NothingBeforeTheFirstBackupSaysWhy) {
  std::string error;
  EXPECT_FALSE(choose_restore(pair_history(), "", at(50), &error));
  EXPECT_NE(error.find("a restore cannot stop before the end of the backup"), std::string::npos) << error;
}

TEST(RestorePlanTest, AHigherTermWinsOverANewerBackup) {
  auto s = pair_history();
  // the old primary came back in term 1 and was backed up by hand later
  s["db1"].backups.push_back(backup("20261206-000500F", 500, 1));
  std::string error;
  auto c = choose_restore(s, "", {}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db2");
}

TEST(RestorePlanTest, WithoutTermsTheNewestWins) {
  std::map<std::string, StanzaInfo> s;
  s["a"].backups = {backup("20261206-000100F", 100, -1)};
  s["b"].backups = {backup("20261206-000200F", 200, -1)};
  std::string error;
  auto c = choose_restore(s, "", {}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "b");
}

TEST(RestorePlanTest, AStanzaGivenIsTheOnlyOneLookedAt) {
  std::string error;
  auto c = choose_restore(pair_history(), "db1", {}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db1");
  EXPECT_EQ(c->backup.label, "20261206-000100F_20261206-000200I");
  EXPECT_FALSE(choose_restore(pair_history(), "db9", {}, &error));
  EXPECT_EQ(error, "the repository has no stanza db9");
  EXPECT_FALSE(choose_restore(pair_history(), "db2", at(250), &error));
  EXPECT_NE(error.find("the stanza db2"), std::string::npos);
}

TEST(RestorePlanTest, ALabelIsFoundInItsStanza) {
  std::string error;
  auto c = choose_restore(pair_history(), "", {RestoreTarget::Kind::set, 0, "20261206-000100F"}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->stanza, "db1");
  EXPECT_FALSE(choose_restore(pair_history(), "", {RestoreTarget::Kind::set, 0, "20991231-000000F"}, &error));
  auto s = pair_history();
  s["db2"].backups.push_back(backup("20261206-000100F", 100, 2));
  EXPECT_FALSE(choose_restore(s, "", {RestoreTarget::Kind::set, 0, "20261206-000100F"}, &error));
  EXPECT_NE(error.find("more than one stanza"), std::string::npos);
  EXPECT_TRUE(choose_restore(s, "db2", {RestoreTarget::Kind::set, 0, "20261206-000100F"}, &error));
}

TEST(RestorePlanTest, ABackupWithChecksumErrorsIsNeverChosen) {
  auto s = pair_history();
  s["db2"].backups[1].error = true;
  std::string error;
  auto c = choose_restore(s, "", {}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->backup.label, "20261206-000300F");
}

TEST(RestorePlanTest, TimeForms) {
  auto t = parse_time_text("2026-12-06 04:25:14");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 1796531114);
  EXPECT_EQ(t->target_text(), "2026-12-06 04:25:14+00");
  EXPECT_EQ(parse_time_text("2026-12-06T04:25:14Z")->seconds, 1796531114);
  EXPECT_EQ(parse_time_text("2026-12-06 05:25:14+01")->seconds, 1796531114);
  EXPECT_EQ(parse_time_text("2026-12-06 05:55:14+01:30")->seconds, 1796531114);
  EXPECT_EQ(parse_time_text("2026-12-06 03:25:14-0100")->seconds, 1796531114);
  t = parse_time_text("2026-12-06 04:25:14.25");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->target_text(), "2026-12-06 04:25:14.25+00");
  EXPECT_EQ(utc_text(1796531114), "2026-12-06 04:25:14+00");
  for (const char* bad : {"", "yesterday", "2026-13-01 00:00:00", "2026-04-31 00:00:00", "2026-12-06 24:00:00",
                          "2026-12-06 04:25", "2026-12-06 04:25:14+16", "2026-12-06 04:25:14.1234567",
                          "2026-12-06 04:25:14; DROP TABLE images", "2026-12-06 04:25:14\n"})
    EXPECT_FALSE(parse_time_text(bad)) << bad;
}

}  // namespace
}  // namespace crawler::agent
