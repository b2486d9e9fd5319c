#include "crawler/db_call.hpp"

#include <algorithm>

namespace crawler {

const Param& DbResult::at(std::size_t row, const std::string& column) const {
  static const Param null;
  for (std::size_t c = 0; c < columns.size(); ++c)
    if (columns[c] == column && row < rows.size()) return rows[row][c];
  return null;
}

bool DbResult::has_column(const std::string& column) const {
  return std::find(columns.begin(), columns.end(), column) != columns.end();
}

}  // namespace crawler
