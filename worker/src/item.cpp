#include "crawler/item.hpp"

namespace crawler {

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::kClaimed: return "claimed";
    case Stage::kFetching: return "fetching";
    case Stage::kParsing: return "parsing";
    case Stage::kStoring: return "storing";
    case Stage::kUploading: return "uploading";
    case Stage::kLinksQueued: return "links queued";
    case Stage::kReported: return "reported";
  }
  return "?";
}

bool stage_may_follow(Stage from, Stage to) {
  switch (to) {
    case Stage::kClaimed: return from == Stage::kFetching || from == Stage::kUploading;
    case Stage::kFetching: return from == Stage::kClaimed;
    case Stage::kParsing:
    case Stage::kStoring: return from == Stage::kFetching;
    case Stage::kUploading: return from == Stage::kStoring;
    case Stage::kLinksQueued: return from == Stage::kParsing;
    case Stage::kReported: return from != Stage::kReported;
  }
  return false;
}

int work_quarters(Stage s) {
  switch (s) {
    case Stage::kClaimed:
    case Stage::kFetching:
    case Stage::kParsing: return 4;
    case Stage::kStoring:
    case Stage::kUploading: return 1;
    case Stage::kLinksQueued:
    case Stage::kReported: return 0;
  }
  return 0;
}

bool returned_on_stop(Stage s) { return s == Stage::kClaimed || s == Stage::kParsing; }

bool Item::enter(Stage to) {
  if (!stage_may_follow(stage, to)) return false;
  stage = to;
  return true;
}

}  // namespace crawler
