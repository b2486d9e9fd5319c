// The schedule's decision alone: which backup type is due, given when the
// newest backup of each type started, with pgBackRest's rule that a higher
// type restarts the lower ones' clocks, and how often the scheduler looks.
#include <gtest/gtest.h>

#include "crawler/agent/backup_scheduler.hpp"

using namespace crawler::agent;
using std::chrono::hours;
using std::chrono::seconds;
using TP = std::chrono::system_clock::time_point;

namespace {

const TP kNow = TP(seconds(2'000'000'000));
const BackupIntervals kDefaults{seconds(604800), seconds(86400), seconds(3600)};

std::optional<std::string> due(std::optional<TP> full, std::optional<TP> diff, std::optional<TP> incr,
                               const BackupIntervals& iv = kDefaults) {
  return due_backup_type(kNow, full, diff, incr, iv);
}

}  // namespace

TEST(DueBackupType, NoBackupAtAllMakesAFull) {
  EXPECT_EQ(due(std::nullopt, std::nullopt, std::nullopt), "full");
  // A diff or incr without a full to build on would be a full anyway.
  EXPECT_EQ(due(std::nullopt, kNow - hours(1), kNow - hours(1)), "full");
  // The first full is made even when full backups are not repeated.
  EXPECT_EQ(due(std::nullopt, std::nullopt, std::nullopt, {seconds(0), seconds(0), seconds(5)}), "full");
}

TEST(DueBackupType, EveryTypeDisabledMakesNothing) {
  EXPECT_EQ(due(std::nullopt, std::nullopt, std::nullopt, {seconds(0), seconds(0), seconds(0)}), std::nullopt);
}

TEST(DueBackupType, AnOldFullMakesAFull) {
  EXPECT_EQ(due(kNow - seconds(604800), std::nullopt, kNow - seconds(10)), "full");
  EXPECT_EQ(due(kNow - seconds(604799), kNow - seconds(10), kNow - seconds(10)), std::nullopt);
}

TEST(DueBackupType, DiffClockCountsFromTheNewerOfFullAndDiff) {
  // A full an hour ago restarts the diff clock, whatever the last diff.
  EXPECT_EQ(due(kNow - hours(1), kNow - hours(48), std::nullopt), "incr");
  EXPECT_EQ(due(kNow - hours(25), std::nullopt, kNow - seconds(1)), "diff");
  EXPECT_EQ(due(kNow - hours(49), kNow - hours(24), kNow - seconds(1)), "diff");
  EXPECT_EQ(due(kNow - hours(49), kNow - hours(23), kNow - seconds(1)), std::nullopt);
}

TEST(DueBackupType, IncrClockCountsFromTheNewestOfAnyType) {
  EXPECT_EQ(due(kNow - hours(2), std::nullopt, std::nullopt), "incr");
  EXPECT_EQ(due(kNow - hours(2), std::nullopt, kNow - hours(1)), "incr");
  EXPECT_EQ(due(kNow - hours(2), std::nullopt, kNow - seconds(3599)), std::nullopt);
  // A diff 10 minutes ago counts as the newest backup for the incr clock.
  EXPECT_EQ(due(kNow - hours(30), kNow - std::chrono::minutes(10), kNow - hours(5)), std::nullopt);
}

TEST(DueBackupType, DisabledTypesAreNeverDue) {
  BackupIntervals incr_only{seconds(0), seconds(0), seconds(5)};
  EXPECT_EQ(due(kNow - hours(10000), std::nullopt, std::nullopt, incr_only), "incr");
  EXPECT_EQ(due(kNow - hours(10000), std::nullopt, kNow - seconds(4), incr_only), std::nullopt);
  BackupIntervals full_only{seconds(3600), seconds(0), seconds(0)};
  EXPECT_EQ(due(kNow - hours(2), std::nullopt, std::nullopt, full_only), "full");
  EXPECT_EQ(due(kNow - seconds(100), std::nullopt, std::nullopt, full_only), std::nullopt);
}

TEST(DueBackupType, ATimeInTheFutureIsNotDue) {
  EXPECT_EQ(due(kNow + hours(1), std::nullopt, std::nullopt), std::nullopt);
  EXPECT_EQ(due(kNow - hours(2), std::nullopt, kNow + hours(3)), std::nullopt);
}

TEST(BackupCheckPeriod, AMinuteOrTheSmallestEnabledInterval) {
  EXPECT_EQ(backup_check_period(kDefaults), seconds(60));
  EXPECT_EQ(backup_check_period({seconds(3600), seconds(0), seconds(5)}), seconds(5));
  EXPECT_EQ(backup_check_period({seconds(0), seconds(0), seconds(0)}), seconds(60));
}
