#include "crawler/agent/cluster_nodes.hpp"

#include <libpq-fe.h>

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
  std::vector<NodeTarget> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string host = pick(hosts, i, "hosts"), addr = pick(addrs, i, "host addresses"),
                port = pick(ports, i, "ports");
    std::string conninfo;
    for (const auto& [k, v] : set) {
      if (k == "host" || k == "hostaddr" || k == "port" || k == "target_session_attrs" || k == "load_balance_hosts")
        continue;
      conninfo += k + "=" + quoted(v) + " ";
    }
    if (!host.empty()) conninfo += "host=" + quoted(host) + " ";
    if (!addr.empty()) conninfo += "hostaddr=" + quoted(addr) + " ";
    if (!port.empty()) conninfo += "port=" + quoted(port);
    std::string label = host.empty() ? (addr.empty() ? "(default)" : addr) : host;
    if (!port.empty()) label += ":" + port;
    out.push_back(NodeTarget{label, conninfo});
  }
  return out;
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

std::vector<NodeAnswer> ask_nodes(const std::vector<NodeTarget>& nodes, const std::string& sql,
                                  int connect_timeout_s, int statement_timeout_ms) {
  std::vector<NodeAnswer> answers(nodes.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      NodeAnswer& a = answers[i];
      a.target = nodes[i];
      NodeDb db(a.target.conninfo, a.target.label, "crawler-ha",
                "-c statement_timeout=" + std::to_string(statement_timeout_ms), connect_timeout_s);
      if (!db.try_connect()) {
        a.error = db.last_error();
        return;
      }
      a.reached = true;
      a.result = db.call(db.with_schema(sql));
      if (!a.result.ok) a.error = a.result.sqlstate + " " + a.result.error;
    });
  }
  for (auto& t : threads) t.join();
  return answers;
}

}  // namespace crawler::agent
