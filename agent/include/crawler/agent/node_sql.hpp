// What the HTTP API asks of this node's database: one SQL statement per
// route, since every rule (may this node write, is it a healthy standby,
// the cluster's status) lives in the extension's functions and the routes
// only carry their answers. The server depends on this interface only.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler::agent {

// The database role a call runs as: the agent's own login role (the
// load-balancer checks, which carry no token), or the role of the caller's
// token scope: read as crawler_ha_reader, operate as crawler_ha_writer,
// admin as crawler_ha_admin. The agent's login role is a member of those
// and switches to one for each call, so a call can do no more in the
// database than its token allows.
enum class DbRole { agent, reader, writer, admin };

// The role's name in the database ("none": the login role itself).
const char* db_role_name(DbRole role);

class NodeSql {
 public:
  virtual ~NodeSql() = default;
  // Runs `sql` as `role` with text `params` ($1, $2, ...) in a session of its own,
  // where every "@extschema@" in `sql` stands for the extension's schema
  // (quoted), as in the extension's own SQL files. `done` runs on the
  // server's event loop with the answer. Never blocks the caller: with the
  // database down the answer is SQLSTATE 08006 at once, and with too many
  // calls waiting already it is 53300 at once; a role the login role may
  // not take gives 42501.
  virtual void call(DbRole role, std::string sql, std::vector<Param> params,
                    std::function<void(DbResult)> done) = 0;
};

}  // namespace crawler::agent
