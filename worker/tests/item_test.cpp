#include <gtest/gtest.h>

#include "crawler/item.hpp"

using namespace crawler;

namespace {
const Stage kAll[] = {Stage::kClaimed, Stage::kFetching, Stage::kParsing,
                      Stage::kStoring, Stage::kUploading, Stage::kLinksQueued, Stage::kReported};
}

TEST(ItemStage, APageGoesFromClaimToItsLinksToItsReport) {
  Item it;
  EXPECT_EQ(it.stage, Stage::kClaimed);
  EXPECT_TRUE(it.enter(Stage::kFetching));
  EXPECT_TRUE(it.enter(Stage::kParsing));
  EXPECT_TRUE(it.enter(Stage::kLinksQueued));
  EXPECT_TRUE(it.enter(Stage::kReported));
}

TEST(ItemStage, AnImageIsStoredThenReported) {
  Item it;
  EXPECT_TRUE(it.enter(Stage::kFetching));
  EXPECT_TRUE(it.enter(Stage::kStoring));
  EXPECT_TRUE(it.enter(Stage::kReported));
}

TEST(ItemStage, AnImageForTheAgentIsStoredThenUploadedThenReported) {
  Item it;
  EXPECT_TRUE(it.enter(Stage::kFetching));
  EXPECT_TRUE(it.enter(Stage::kStoring));
  EXPECT_FALSE(it.enter(Stage::kClaimed));  // a stored file is on its way: nothing to give back yet
  EXPECT_TRUE(it.enter(Stage::kUploading));
  EXPECT_TRUE(it.enter(Stage::kReported));
}

TEST(ItemStage, AnUploadAbandonedByAStopGoesBackToClaimed) {
  Item it;
  EXPECT_TRUE(it.enter(Stage::kFetching));
  EXPECT_TRUE(it.enter(Stage::kStoring));
  EXPECT_TRUE(it.enter(Stage::kUploading));
  EXPECT_TRUE(it.enter(Stage::kClaimed));
  EXPECT_FALSE(returned_on_stop(Stage::kUploading));  // the stop waits for the uploader's word
}

TEST(ItemStage, ARedirectOrAnAbandonedTransferGoesBackToClaimed) {
  Item it;
  EXPECT_TRUE(it.enter(Stage::kFetching));
  EXPECT_TRUE(it.enter(Stage::kClaimed));
  EXPECT_TRUE(it.enter(Stage::kFetching));
}

TEST(ItemStage, EveryStageButTheLastMayEndInAReport) {
  for (Stage s : kAll) EXPECT_EQ(stage_may_follow(s, Stage::kReported), s != Stage::kReported) << stage_name(s);
}

TEST(ItemStage, AReportedItemGoesNowhere) {
  for (Stage s : kAll) EXPECT_FALSE(stage_may_follow(Stage::kReported, s)) << stage_name(s);
}

TEST(ItemStage, AForbiddenMoveLeavesTheStage) {
  Item it;
  EXPECT_FALSE(it.enter(Stage::kStoring));  // nothing was fetched
  EXPECT_EQ(it.stage, Stage::kClaimed);
  EXPECT_FALSE(it.enter(Stage::kLinksQueued));
  EXPECT_FALSE(it.enter(Stage::kClaimed));
}

TEST(ItemStage, StoringImagesCountAQuarterReportedItemsNothing) {
  EXPECT_EQ(work_quarters(Stage::kClaimed), 4);
  EXPECT_EQ(work_quarters(Stage::kFetching), 4);
  EXPECT_EQ(work_quarters(Stage::kParsing), 4);
  EXPECT_EQ(work_quarters(Stage::kStoring), 1);
  EXPECT_EQ(work_quarters(Stage::kUploading), 1);
  EXPECT_EQ(work_quarters(Stage::kLinksQueued), 0);
  EXPECT_EQ(work_quarters(Stage::kReported), 0);
}

TEST(ItemStage, AStopReturnsOnlyWhatNothingWillWrite) {
  EXPECT_TRUE(returned_on_stop(Stage::kClaimed));
  EXPECT_TRUE(returned_on_stop(Stage::kParsing));
  EXPECT_FALSE(returned_on_stop(Stage::kFetching));  // the stop waits for it to end first
  EXPECT_FALSE(returned_on_stop(Stage::kStoring));
  EXPECT_FALSE(returned_on_stop(Stage::kLinksQueued));
  EXPECT_FALSE(returned_on_stop(Stage::kReported));
}
