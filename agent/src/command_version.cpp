#include <openssl/opensslv.h>

#include <boost/beast/version.hpp>
#include <iostream>

#include "crawler/agent/commands.hpp"

namespace crawler::agent {

int run_version_command(const std::vector<std::string>&) {
  std::cout << "crawler-ha " << CRAWLER_VERSION << " (" << BOOST_BEAST_VERSION_STRING << ", "
            << OPENSSL_VERSION_TEXT << ")\n";
  return 0;
}

}  // namespace crawler::agent
