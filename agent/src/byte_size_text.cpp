#include "crawler/agent/byte_size_text.hpp"

#include <iomanip>
#include <sstream>

namespace crawler::agent {

std::string byte_size_text(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  std::ostringstream out;
  out << std::fixed << std::setprecision(u == 0 ? 0 : 1) << bytes << " " << units[u];
  return out.str();
}

}  // namespace crawler::agent
