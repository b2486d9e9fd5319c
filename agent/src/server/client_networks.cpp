#include "crawler/agent/server/client_networks.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <string_view>

namespace crawler::agent {
namespace {

namespace ip = boost::asio::ip;

// The longest valid entry, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]/128",
// has 51 characters; anything longer is refused before it is parsed.
constexpr std::size_t kMaxEntryLength = 64;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_separator(char c) { return c == ',' || is_space(c); }

// An entry as the error shows it: cut short and with control bytes escaped,
// because the text may be hostile and the error goes to a log.
std::string quote(std::string_view entry) {
  std::string out = "\"";
  for (std::size_t i = 0; i < entry.size() && i < kMaxEntryLength; ++i) {
    unsigned char c = static_cast<unsigned char>(entry[i]);
    if (std::isprint(c) && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (entry.size() > kMaxEntryLength) out += "...";
  return out + "\"";
}

bool is_all(std::string_view text) {
  return text.size() == 3 && std::tolower(static_cast<unsigned char>(text[0])) == 'a' &&
         std::tolower(static_cast<unsigned char>(text[1])) == 'l' &&
         std::tolower(static_cast<unsigned char>(text[2])) == 'l';
}

// Only white space: a lone "," must not read as an empty (allow-all) list.
std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Whether the first `prefix` bits of a and b are equal.
bool same_prefix(const ip::address_v6::bytes_type& a, const ip::address_v6::bytes_type& b,
                 unsigned prefix) {
  std::size_t whole = prefix / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<ClientNetworks> ClientNetworks::parse(const std::string& text, std::string* error) {
  ClientNetworks nets;
  std::string_view rest = trim(text);
  if (rest.empty() || is_all(rest)) return nets;
  nets.all_ = false;

  std::size_t entries = 0;
  while (!rest.empty()) {
    std::size_t start = 0;
    while (start < rest.size() && is_separator(rest[start])) ++start;
    rest.remove_prefix(start);
    if (rest.empty()) break;
    std::size_t end = 0;
    while (end < rest.size() && !is_separator(rest[end])) ++end;
    std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(end);

    const std::string bad = "client network " + quote(entry);
    if (++entries > kMaxNetworks) {
      *error = "more than " + std::to_string(kMaxNetworks) + " client networks";
      return std::nullopt;
    }
    if (is_all(entry)) {
      *error = "client networks: \"all\" cannot be combined with other networks";
      return std::nullopt;
    }
    if (entry.size() > kMaxEntryLength) {
      *error = bad + " is too long to be an address";
      return std::nullopt;
    }
    // Checked here rather than left to make_address(), which stops at a NUL
    // and reads a '%' as the start of a scope id.
    for (char c : entry) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != ':' && c != '/' &&
          c != '[' && c != ']') {
        *error = bad + " is not ADDRESS or ADDRESS/PREFIX (e.g. 10.0.0.0/8, fd00::/8)";
        return std::nullopt;
      }
    }

    std::size_t slash = entry.find('/');
    std::string_view host = entry.substr(0, slash);
    std::optional<std::string_view> prefix_text;
    if (slash != std::string_view::npos) prefix_text = entry.substr(slash + 1);

    bool bracketed = !host.empty() && host.front() == '[';
    if (bracketed) {
      if (host.size() < 3 || host.back() != ']') {
        *error = bad + ": unbalanced brackets";
        return std::nullopt;
      }
      host = host.substr(1, host.size() - 2);
    }
    if (host.find_first_of("[]") != std::string_view::npos) {
      *error = bad + ": misplaced brackets";
      return std::nullopt;
    }
    boost::system::error_code ec;
    ip::address address = ip::make_address(std::string(host), ec);
    if (ec) {
      *error = bad + ": \"" + std::string(host) + "\" is not a numeric IPv4 or IPv6 address";
      return std::nullopt;
    }
    if (bracketed && !address.is_v6()) {
      *error = bad + ": brackets are only for IPv6 addresses";
      return std::nullopt;
    }

    const unsigned max_prefix = address.is_v4() ? 32 : 128;
    unsigned prefix = max_prefix;
    if (prefix_text) {
      auto [ptr, pec] = std::from_chars(prefix_text->data(), prefix_text->data() + prefix_text->size(), prefix);
      if (prefix_text->empty() || prefix_text->size() > 3 || pec != std::errc() ||
          ptr != prefix_text->data() + prefix_text->size() || prefix > max_prefix) {
        *error = bad + ": the prefix length must be 0-" + std::to_string(max_prefix);
        return std::nullopt;
      }
    }

    if (address.is_v4()) {
      auto net = ip::network_v4(address.to_v4(), static_cast<unsigned short>(prefix)).canonical();
      if (std::find(nets.v4_.begin(), nets.v4_.end(), net) == nets.v4_.end()) nets.v4_.push_back(net);
    } else {
      auto net = ip::network_v6(address.to_v6(), static_cast<unsigned short>(prefix)).canonical();
      if (std::find(nets.v6_.begin(), nets.v6_.end(), net) == nets.v6_.end()) nets.v6_.push_back(net);
    }
  }
  if (entries == 0) {
    *error = "client networks " + quote(text) + " list no network (leave it empty or say \"all\" to allow every client)";
    return std::nullopt;
  }
  return nets;
}

bool ClientNetworks::allows(const ip::address& client) const {
  if (all_) return true;
  std::optional<ip::address_v4> v4;
  ip::address_v6 v6;
  if (client.is_v4()) {
    v4 = client.to_v4();
    v6 = ip::make_address_v6(ip::v4_mapped, *v4);
  } else {
    v6 = client.to_v6();
    if (v6.is_v4_mapped()) v4 = ip::make_address_v4(ip::v4_mapped, v6);
  }
  if (v4) {
    for (const auto& net : v4_) {
      if ((v4->to_uint() & net.netmask().to_uint()) == net.network().to_uint()) return true;
    }
  }
  const auto bytes = v6.to_bytes();
  for (const auto& net : v6_) {
    if (same_prefix(bytes, net.network().to_bytes(), net.prefix_length())) return true;
  }
  return false;
}

std::string ClientNetworks::describe() const {
  if (all_) return "all clients";
  std::string out;
  for (const auto& net : v4_) out += (out.empty() ? "" : ", ") + net.to_string();
  for (const auto& net : v6_) out += (out.empty() ? "" : ", ") + net.to_string();
  return out;
}

}  // namespace crawler::agent
