// Which clients may talk to the application port: an allow-list of
// networks (CIDRs), checked against a connection's remote address.
// Immutable once parsed, so one instance may be read from any thread.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace crawler::agent {

class ClientNetworks {
 public:
  // At most this many networks in one list: allows() scans them all on
  // every connection, so a list must stay small enough to make that cheap.
  static constexpr std::size_t kMaxNetworks = 1024;

  // Reads a list of networks separated by commas and/or white space, e.g.
  // "10.0.0.0/8, 127.0.0.1 ::1 fd00::/8 [::1]/128". Each entry is a numeric
  // address with an optional "/PREFIX" (0-32 for IPv4, 0-128 for IPv6;
  // none means a single host, /32 or /128); an IPv6 address may be written
  // in brackets. Host bits below the prefix are cleared, not refused:
  // "10.1.2.3/8" is read as 10.0.0.0/8. Duplicates are accepted.
  // Text that is empty, only white space, or the single word "all" (any
  // case) allows every client. Refused (nullopt, *error naming the entry):
  // host names, scope ids ("fe80::1%eth0"), a prefix out of range or
  // missing after '/', any other character or junk around an entry,
  // "all" next to other entries, separators with no entry at all (" , "),
  // and more than kMaxNetworks entries.
  static std::optional<ClientNetworks> parse(const std::string& text, std::string* error);

  // Whether `client` lies in one of the networks (always, for "all").
  // An IPv4 client and its IPv4-mapped IPv6 form (::ffff:10.1.2.3, as a
  // dual-stack socket reports it) are the same client: either form matches
  // IPv4 entries, and IPv6 entries that cover the mapped form (::/0,
  // ::ffff:0:0/96). Scope ids of the client's address are ignored.
  bool allows(const boost::asio::ip::address& client) const;

  // True when every client is allowed (empty text or "all").
  bool allows_all() const { return all_; }

  // For the log: "all clients", or the networks in canonical form with
  // duplicates removed, e.g. "10.0.0.0/8, ::1/128".
  std::string describe() const;

 private:
  ClientNetworks() = default;

  bool all_ = true;
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace crawler::agent
