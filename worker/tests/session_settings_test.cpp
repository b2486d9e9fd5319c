#include <gtest/gtest.h>

#include "crawler/session_settings.hpp"

using namespace crawler;

namespace {
// crawl_session_settings()'s answer as database.cpp selects it.
DbResult answer() {
  DbResult r;
  r.ok = true;
  r.columns = {"id", "status", "user_agent", "robots", "max_page_bytes", "max_image_bytes", "max_pixels",
               "min_width", "min_height", "delay_ms", "per_host", "max_depth", "revisit", "sitemaps", "thumbnails",
               "page_patterns", "image_patterns"};
  r.rows = {{"7", "running", "crawler_ha/1", "true", "1048576", "2097152", "3000000", "16", "32", "0", "4", "9",
             "true", "false", R"({"big": 270, "small": 50})", "false", "true"}};
  return r;
}
void drop(DbResult& r, const std::string& column) {
  for (std::size_t c = 0; c < r.columns.size(); ++c)
    if (r.columns[c] == column) {
      r.columns.erase(r.columns.begin() + static_cast<long>(c));
      for (auto& row : r.rows) row.erase(row.begin() + static_cast<long>(c));
      return;
    }
}
void set(DbResult& r, const std::string& column, Param v) {
  for (std::size_t c = 0; c < r.columns.size(); ++c)
    if (r.columns[c] == column) r.rows[0][c] = std::move(v);
}
}  // namespace

TEST(SessionSettings, EveryColumnIsRead) {
  auto parsed = read_session_settings(answer(), 0);
  ASSERT_TRUE(std::holds_alternative<SessionSettings>(parsed)) << std::get<std::string>(parsed);
  const auto& s = std::get<SessionSettings>(parsed);
  EXPECT_EQ(s.session, 7);
  EXPECT_EQ(s.status, "running");
  EXPECT_EQ(s.user_agent, "crawler_ha/1");
  EXPECT_TRUE(s.robots);
  EXPECT_TRUE(s.revisit);
  EXPECT_FALSE(s.sitemaps);
  EXPECT_FALSE(s.page_patterns);
  EXPECT_TRUE(s.image_patterns);
  EXPECT_EQ(s.max_page_bytes, 1048576u);
  EXPECT_EQ(s.max_image_bytes, 2097152u);
  EXPECT_EQ(s.max_pixels, 3000000u);
  EXPECT_EQ(s.min_width, 16);
  EXPECT_EQ(s.min_height, 32);
  EXPECT_EQ(s.delay_ms, 0);
  EXPECT_EQ(s.per_host, 4);
  EXPECT_EQ(s.max_depth, 9);
  ASSERT_EQ(s.thumbnails.size(), 2u);
  EXPECT_EQ(s.thumbnails[0].name, "big");
  EXPECT_EQ(s.thumbnails[0].box, 270);
  EXPECT_EQ(s.thumbnails[1].name, "small");
  EXPECT_EQ(s.thumbnails[1].box, 50);
}

TEST(SessionSettings, ThumbnailsMayBeNullButNotMissingOrMalformed) {
  DbResult r = answer();
  set(r, "thumbnails", Param{});
  auto parsed = read_session_settings(r, 0);
  ASSERT_TRUE(std::holds_alternative<SessionSettings>(parsed)) << std::get<std::string>(parsed);
  EXPECT_TRUE(std::get<SessionSettings>(parsed).thumbnails.empty());
  set(r, "thumbnails", std::string(R"({"Big": 5})"));
  EXPECT_TRUE(std::holds_alternative<std::string>(read_session_settings(r, 0)));
  drop(r, "thumbnails");
  auto missing = read_session_settings(r, 0);
  ASSERT_TRUE(std::holds_alternative<std::string>(missing));
  EXPECT_EQ(std::get<std::string>(missing), "no column thumbnails in the session's settings");
}

TEST(SessionSettings, AMissingColumnIsAnErrorNotADefault) {
  for (const char* column : {"id", "status", "user_agent", "robots", "max_page_bytes", "max_image_bytes",
                             "max_pixels", "min_width", "min_height", "delay_ms", "per_host", "max_depth",
                             "revisit", "sitemaps", "page_patterns", "image_patterns"}) {
    DbResult r = answer();
    drop(r, column);
    auto parsed = read_session_settings(r, 0);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << column;
    EXPECT_EQ(std::get<std::string>(parsed), std::string("no column ") + column + " in the session's settings");
  }
}

TEST(SessionSettings, ANullSettingIsAnError) {
  DbResult r = answer();
  set(r, "max_pixels", Param{});
  auto parsed = read_session_settings(r, 0);
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_EQ(std::get<std::string>(parsed), "setting max_pixels is NULL");
}

TEST(SessionSettings, AValueNotOfItsTypeIsAnError) {
  for (auto [column, value] : std::vector<std::pair<const char*, const char*>>{
           {"robots", "yes"}, {"max_page_bytes", "-1"}, {"max_page_bytes", "12abc"}, {"min_width", "99999999999"},
           {"robots", "t"}}) {
    DbResult r = answer();
    set(r, column, value);
    auto parsed = read_session_settings(r, 0);
    EXPECT_TRUE(std::holds_alternative<std::string>(parsed)) << column << " = " << value;
  }
}

TEST(SessionSettings, ARowThatIsNotThereIsAnError) {
  EXPECT_TRUE(std::holds_alternative<std::string>(read_session_settings(answer(), 1)));
}
