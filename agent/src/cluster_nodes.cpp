#include "crawler/agent/cluster_nodes.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include "crawler/agent/node_db.hpp"

namespace crawler::agent {
namespace {

struct OptionsFree {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

// A conninfo value in single quotes, backslash and quote escaped.
std::string quoted(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (std::size_t at; (at = s.find(',', from)) != std::string::npos; from = at + 1) out.push_back(s.substr(from, at - from));
  out.push_back(s.substr(from));
  return out;
}

// Whether libpq must read `v` in quotes: it ends an unquoted value at white
// space, and reads quotes and backslashes as its own.
bool needs_quotes(const std::string& v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (std::isspace(c) || c == '\'' || c == '\\') return true;
  return false;
}

std::string conninfo_value(const std::string& v) { return needs_quotes(v) ? quoted(v) : v; }

std::string join_commas(const std::vector<std::string>& list) {
  std::string out;
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + list[i];
  return out;
}

// Secrets: a command prints the client string, and a terminal or a log must
// not show them. libpq finds them in the password file or PGPASSWORD.
bool is_secret(const std::string& keyword) { return keyword == "password" || keyword == "sslpassword"; }

std::vector<NodeTarget> split_one(const std::string& db) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, OptionsFree> opts(PQconninfoParse(db.c_str(), &err));
  if (!opts) {
    std::string why = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw std::invalid_argument("cannot read the connection string: " + why);
  }
  std::map<std::string, std::string> set;
  for (PQconninfoOption* o = opts.get(); o->keyword; ++o)
    if (o->val && *o->val) set[o->keyword] = o->val;
  std::vector<std::string> hosts = split_commas(set.count("host") ? set["host"] : "");
  std::vector<std::string> addrs = split_commas(set.count("hostaddr") ? set["hostaddr"] : "");
  std::vector<std::string> ports = split_commas(set.count("port") ? set["port"] : "");
  std::size_t n = std::max({hosts.size(), addrs.size(), ports.size()});
  auto pick = [&](const std::vector<std::string>& list, std::size_t i, const char* what) -> std::string {
    if (list.size() == 1) return list[0];
    if (list.size() != n)
      throw std::invalid_argument(std::string("the connection string names ") + std::to_string(n) +
                                  " servers but " + std::to_string(list.size()) + " " + what);
    return list[i];
  };
  std::map<std::string, std::string> settings = set;
  settings.erase("host");
  settings.erase("hostaddr");
  settings.erase("port");
  std::vector<NodeTarget> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string host = pick(hosts, i, "hosts"), addr = pick(addrs, i, "host addresses"),
                port = pick(ports, i, "ports");
    std::string conninfo;
    for (const auto& [k, v] : settings) {
      if (k == "target_session_attrs" || k == "load_balance_hosts") continue;
      conninfo += k + "=" + quoted(v) + " ";
    }
    if (!host.empty()) conninfo += "host=" + quoted(host) + " ";
    if (!addr.empty()) conninfo += "hostaddr=" + quoted(addr) + " ";
    if (!port.empty()) conninfo += "port=" + quoted(port);
    std::string label = host.empty() ? (addr.empty() ? "(default)" : addr) : host;
    if (!port.empty()) label += ":" + port;
    out.push_back(NodeTarget{label, conninfo, host, addr, port, settings});
  }
  return out;
}

// What client_conninfo() and client_uri() both say: the servers' lists and
// the one set of settings, passwords left out, the clients' defaults added.
struct ClientParts {
  std::vector<std::string> hosts, addrs, ports;
  std::map<std::string, std::string> settings;
};

ClientParts client_parts(const std::vector<NodeTarget>& nodes) {
  if (nodes.empty()) throw std::invalid_argument("no node to connect to");
  ClientParts p;
  bool any_host = false, any_addr = false, any_port = false;
  for (const auto& n : nodes) {
    for (const auto& key : {"dbname", "user"}) {
      auto a = nodes[0].settings.find(key), b = n.settings.find(key);
      std::string va = a == nodes[0].settings.end() ? "" : a->second, vb = b == n.settings.end() ? "" : b->second;
      if (va != vb)
        throw std::invalid_argument(std::string("the connection strings name two values of ") + key + " (\"" + va +
                                    "\" and \"" + vb + "\"): one string for clients cannot say both");
    }
    if (n.settings != nodes[0].settings)
      throw std::invalid_argument("the connection strings of " + nodes[0].label + " and " + n.label +
                                  " differ in their settings: one string for clients cannot say both");
    p.hosts.push_back(n.host);
    p.addrs.push_back(n.hostaddr);
    p.ports.push_back(n.port);
    any_host = any_host || !n.host.empty();
    any_addr = any_addr || !n.hostaddr.empty();
    any_port = any_port || !n.port.empty();
  }
  if (!any_host) p.hosts.clear();
  if (!any_addr) p.addrs.clear();
  if (!any_port) p.ports.clear();
  for (const auto& [k, v] : nodes[0].settings)
    if (!is_secret(k)) p.settings[k] = v;
  // Clients want the writable node, and to give up on a dead one soon
  // enough to try the next host.
  p.settings.emplace("target_session_attrs", "read-write");
  p.settings.emplace("connect_timeout", "2");
  return p;
}

}  // namespace

std::vector<NodeTarget> split_nodes(const std::vector<std::string>& dbs) {
  std::vector<NodeTarget> out;
  for (const auto& db : dbs) {
    auto some = split_one(db);
    out.insert(out.end(), some.begin(), some.end());
  }
  if (out.empty()) out = split_one("");
  return out;
}

std::string client_conninfo(const std::vector<NodeTarget>& nodes) {
  ClientParts p = client_parts(nodes);
  std::string out;
  auto add = [&](const std::string& k, const std::string& v) { out += (out.empty() ? "" : " ") + k + "=" + conninfo_value(v); };
  if (!p.hosts.empty()) add("host", join_commas(p.hosts));
  if (!p.addrs.empty()) add("hostaddr", join_commas(p.addrs));
  if (!p.ports.empty()) add("port", join_commas(p.ports));
  for (const char* first : {"dbname", "user"})
    if (p.settings.count(first)) add(first, p.settings[first]);
  for (const auto& [k, v] : p.settings)
    if (k != "dbname" && k != "user") add(k, v);
  return out;
}

std::string client_uri(const std::vector<NodeTarget>& nodes) {
  ClientParts p = client_parts(nodes);
  std::string out = "postgresql://";
  if (p.settings.count("user")) out += percent_encode(p.settings["user"]) + "@";
  std::size_t n = std::max(p.hosts.size(), p.ports.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ",";
    if (i < p.hosts.size()) out += percent_encode(p.hosts[i]);
    if (i < p.ports.size() && !p.ports[i].empty()) out += ":" + percent_encode(p.ports[i]);
  }
  if (p.settings.count("dbname")) out += "/" + percent_encode(p.settings["dbname"]);
  char sep = '?';
  auto add = [&](const std::string& k, const std::string& v) {
    out += sep + percent_encode(k) + "=" + percent_encode(v);
    sep = '&';
  };
  if (!p.addrs.empty()) add("hostaddr", join_commas(p.addrs));
  for (const auto& [k, v] : p.settings)
    if (k != "dbname" && k != "user") add(k, v);
  return out;
}

std::string percent_encode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) out.push_back(static_cast<char>(c));
    else out += {'%', kHex[c >> 4], kHex[c & 15]};
  }
  return out;
}

NodeSessions::NodeSessions(std::vector<NodeTarget> nodes, int connect_timeout_s, int statement_timeout_ms)
    : nodes_(std::move(nodes)) {
  for (const auto& n : nodes_)
    dbs_.push_back(std::make_unique<NodeDb>(n.conninfo, n.label, "crawler-ha",
                                            "-c statement_timeout=" + std::to_string(statement_timeout_ms),
                                            connect_timeout_s));
}

NodeSessions::~NodeSessions() = default;

std::vector<NodeAnswer> NodeSessions::ask(const std::string& sql, const std::vector<Param>& params) {
  return ask_each(sql, std::vector<std::vector<Param>>(nodes_.size(), params));
}

std::vector<NodeAnswer> NodeSessions::ask_each(const std::string& sql, const std::vector<std::vector<Param>>& params) {
  if (params.size() != nodes_.size()) throw std::invalid_argument("ask_each: one parameter list per node");
  std::vector<NodeAnswer> answers(nodes_.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    threads.emplace_back([&, i] {
      NodeAnswer& a = answers[i];
      NodeDb& db = *dbs_[i];
      a.target = nodes_[i];
      if (!db.try_connect()) {
        a.error = db.last_error();
        return;
      }
      a.reached = true;
      a.result = db.call(db.with_schema(sql), params[i]);
      if (!a.result.ok) a.error = a.result.sqlstate + " " + a.result.error;
    });
  }
  for (auto& t : threads) t.join();
  return answers;
}

std::vector<NodeAnswer> ask_nodes(const std::vector<NodeTarget>& nodes, const std::string& sql,
                                  int connect_timeout_s, int statement_timeout_ms, const std::vector<Param>& params) {
  NodeSessions sessions(nodes, connect_timeout_s, statement_timeout_ms);
  return sessions.ask(sql, params);
}

}  // namespace crawler::agent
