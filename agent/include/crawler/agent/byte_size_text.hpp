// Sizes as the crawler-ha commands print them for people (their --json
// output keeps the exact numbers).
#pragma once
#include <string>

namespace crawler::agent {

// `bytes` in binary units, one decimal from kB on: "512 B", "1.5 kB",
// "3.2 GB" (1 kB = 1024 B, as du -h counts).
std::string byte_size_text(double bytes);

}  // namespace crawler::agent
