// The tables of the status command: sessions, recent errors and
// ha_status(), narrowed to fit kStatusWidth columns (fewer columns, shorter
// values, long text cut) or, with --wide, every column as the database
// gave it. Pure: unit-tested on answers made by hand.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler {

// The width the narrow tables fit (a terminal of 100 columns).
constexpr std::size_t kStatusWidth = 100;

// A table to print: its header, its rows, and which columns may be cut.
struct TextTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> cuttable;  // per column; empty: none
};

// The table as text: a header, a rule, the rows, "(N rows)" and a blank
// line. When the lines would be wider than `width`, the widest cuttable
// column is narrowed (to no less than 10 characters) until they fit; a cut
// value ends with "...". `width` 0: nothing is cut.
std::string render_table(const TextTable& t, std::size_t width);

// Every column of an answer, every value as it is ("" for NULL).
TextTable wide_table(const DbResult& r);
// The sessions (database.cpp's sessions_overview): bytes in kB/MB, the
// start without the year and seconds, counters under short names.
TextTable sessions_table(const DbResult& r);
// The recent failed URLs (recent_errors): the URL and the error cuttable.
TextTable errors_table(const DbResult& r);
// ha_status(): node ("*" marks the node that answered; cuttable), role,
// term, healthy (with the failed checks in a row), replication (mode/sync
// state), lag (bytes and seconds), flags (fenced, rejoin for needs_rejoin,
// paused). Columns the answer lacks are left out; the detail, often long,
// is under the table (ha_status_details()).
TextTable ha_status_table(const DbResult& r);
// ha_status()'s detail of each node, one line each ("  alpha*: primary
// alpha"), cut to `width` columns ("..."; 0: not cut); "" without details.
std::string ha_status_details(const DbResult& r, std::size_t width);

}  // namespace crawler
