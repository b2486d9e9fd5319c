#include <gtest/gtest.h>

#include <limits>

#include "crawler/sql_literal.hpp"

using namespace crawler;

TEST(SqlLiteral, TextArrayQuotesEveryElementAndEscapesQuotesAndBackslashes) {
  EXPECT_EQ(pg_text_array({}), "{}");
  EXPECT_EQ(pg_text_array({""}), "{\"\"}");
  EXPECT_EQ(pg_text_array({"a", "b,c"}), "{\"a\",\"b,c\"}");
  EXPECT_EQ(pg_text_array({"say \"hi\""}), "{\"say \\\"hi\\\"\"}");
  EXPECT_EQ(pg_text_array({"C:\\dir\\"}), "{\"C:\\\\dir\\\\\"}");
  EXPECT_EQ(pg_text_array({"NULL", "{x}", " sp "}), "{\"NULL\",\"{x}\",\" sp \"}");
}

TEST(SqlLiteral, TextArrayRefusesANulByte) {
  EXPECT_EQ(pg_text_array({"ok", std::string("a\0b", 3)}), std::nullopt);
  PgArrayLiteral a;
  EXPECT_TRUE(a.add_text("x"));
  EXPECT_FALSE(a.add_text(std::string_view("\0", 1)));
  EXPECT_EQ(a.size(), 1u);  // nothing of the refused element is kept
  EXPECT_EQ(a.str(), "{\"x\"}");
}

TEST(SqlLiteral, HugeArraysAreEncodedWhole) {
  std::vector<std::string> urls(20000, "http://h.test/" + std::string(2000, 'a'));
  auto lit = pg_text_array(urls);
  ASSERT_TRUE(lit);
  EXPECT_EQ(lit->size(), 2 + 20000 * (urls[0].size() + 2) + 19999);
}

TEST(SqlLiteral, BigintArrayTakesTheWholeRange) {
  EXPECT_EQ(pg_bigint_array({}), "{}");
  EXPECT_EQ(pg_bigint_array({1, -2, 3}), "{1,-2,3}");
  EXPECT_EQ(pg_bigint_array({std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}),
            "{-9223372036854775808,9223372036854775807}");
}

TEST(SqlLiteral, IntervalsAreSecondsInFixedNotation) {
  EXPECT_EQ(pg_interval_seconds(60), "60 seconds");
  EXPECT_EQ(pg_interval_fractional_seconds(2), "2.000000 seconds");
  EXPECT_EQ(pg_interval_fractional_seconds(0.5), "0.500000 seconds");
  // an exponent is what interval_in cannot read: 1e-07 must not appear
  EXPECT_EQ(pg_interval_fractional_seconds(1e-7), "0.000000 seconds");
  EXPECT_EQ(pg_interval_fractional_seconds(-3), "0.000000 seconds");
  EXPECT_EQ(pg_interval_fractional_seconds(std::numeric_limits<double>::quiet_NaN()), "0.000000 seconds");
  EXPECT_EQ(pg_interval_fractional_seconds(std::numeric_limits<double>::infinity()), "1000000000.000000 seconds");
}

TEST(SqlLiteral, TimestampsAreUtcAndClampedToFourDigitYears) {
  EXPECT_EQ(pg_timestamp_utc(0), "1970-01-01 00:00:00+00");
  EXPECT_EQ(pg_timestamp_utc(1700000000), "2023-11-14 22:13:20+00");
  EXPECT_EQ(pg_timestamp_utc(std::numeric_limits<std::time_t>::max()), "9999-12-31 23:59:59+00");
  EXPECT_EQ(pg_timestamp_utc(-5), "1970-01-01 00:00:00+00");
}

TEST(SqlLiteral, ValidTextReplacesBadBytesAndCutsAtACharacter) {
  EXPECT_EQ(valid_text("plain", 100), "plain");
  EXPECT_EQ(valid_text(std::string("a\0b", 3), 100), "a?b");
  EXPECT_EQ(valid_text("caf\xc3\xa9", 100), "caf\xc3\xa9");
  EXPECT_EQ(valid_text("caf\xc3\xa9", 4), "caf");  // not half of the é
  EXPECT_EQ(valid_text("\xff\xfe", 100), "??");
  EXPECT_EQ(valid_text("\xe2\x82", 100), "??");  // a truncated sequence
}

TEST(SqlLiteral, OneLineHasNoControlCharacters) {
  EXPECT_EQ(one_line("a\nb\tc"), "a b c");
  EXPECT_EQ(one_line(std::string("x\0y", 3)), "x y");
  EXPECT_EQ(one_line(std::string(5000, 'e')).size(), 4000u);
}
