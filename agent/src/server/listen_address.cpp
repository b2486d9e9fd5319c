#include "crawler/agent/server/listen_address.hpp"

#include <charconv>

namespace crawler::agent {

std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text,
                                                                   std::string* error) {
  const std::string usage = "listen \"" + text +
                            "\" is not ADDRESS:PORT (e.g. 127.0.0.1:8000, 0.0.0.0:8000, [::]:8000)";
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    *error = usage;
    return std::nullopt;
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      *error = usage;
      return std::nullopt;
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    *error = usage + ": an IPv6 address goes in brackets";
    return std::nullopt;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    *error = usage + ": bad port";
    return std::nullopt;
  }
  boost::system::error_code aec;
  auto address = boost::asio::ip::make_address(host, aec);
  if (aec) {
    *error = usage + ": \"" + host + "\" is not a numeric address";
    return std::nullopt;
  }
  return boost::asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));
}

}  // namespace crawler::agent
