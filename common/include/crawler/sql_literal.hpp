// The text forms of the write API's parameters, as PostgreSQL's input
// functions read them (text[], bigint[], interval, timestamptz), and the text
// the database accepts: the one place each is spelled. Pure, unit-tested.
#pragma once
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crawler {

// An array literal built one element at a time, so that a large batch is
// encoded once, without a vector of copies first. Text elements are
// double-quoted with '"' and '\' escaped by '\' (array_in's rules); a NUL
// byte cannot be sent (libpq would end the parameter there, and no text
// value holds one), so such an element is refused.
class PgArrayLiteral {
 public:
  // Appends a text element; false, with nothing appended, when it holds a
  // NUL byte.
  bool add_text(std::string_view element);
  void add_bigint(std::int64_t element);
  std::size_t size() const { return size_; }  // elements so far
  // The literal, "{}" when empty.
  std::string str() const { return text_ + '}'; }

 private:
  std::string text_ = "{";
  std::size_t size_ = 0;
};

// `v` as a text[] literal; nothing when an element holds a NUL byte.
std::optional<std::string> pg_text_array(const std::vector<std::string>& v);
// `v` as a bigint[] literal.
std::string pg_bigint_array(const std::vector<std::int64_t>& v);
// A whole number of seconds as an interval ("60 seconds").
std::string pg_interval_seconds(long seconds);
// Seconds with a fraction (a robots.txt Crawl-delay) as an interval, in
// fixed notation to the microsecond: interval_in reads no exponent. Negative
// and NaN are 0 s; more than a billion seconds is a billion.
std::string pg_interval_fractional_seconds(double seconds);
// A moment as a timestamptz in UTC ("2026-11-25 11:00:00+00"); moments
// before 1970 or after 9999 are clamped to those years' ends.
std::string pg_timestamp_utc(std::time_t t);

// Text the database accepts: valid UTF-8 (each byte of anything else
// becomes '?'), no NUL (also '?'), at most `max_bytes` bytes, cut at a
// character boundary.
std::string valid_text(std::string_view in, std::size_t max_bytes);
// valid_text() on one line: control characters become spaces (error messages).
std::string one_line(std::string_view in, std::size_t max_bytes = 4000);

}  // namespace crawler
