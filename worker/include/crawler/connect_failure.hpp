// What a failed database connection means: a database that may come back
// (refused, starting up, too many clients, a read-only node while a
// failover runs: worth waiting for) or a setting that retrying cannot fix
// (the conninfo's syntax or values, a host name DNS does not know, the
// password, pg_hba.conf, a database or role that does not exist). A pure
// rule over libpq's message, so every case is unit-tested.
//
// libpq 15 gives no SQLSTATE for a failed connection (the server's error
// during the startup is only in PQerrorMessage()), so the rule reads the
// message: libpq's own wording (the client's locale: the worker never sets
// LC_MESSAGES, so it is English) and the server's primary messages of the
// SQLSTATEs 28P01, 28000, 3D000 and 08001, which servers send in English
// unless lc_messages says otherwise; a message it does not know counts as
// one that may go away, so the worker waits rather than gives up.
#pragma once
#include <string>
#include <string_view>

namespace crawler {

struct ConnectFailure {
  // Retrying cannot fix it: every host tried failed for a reason that only
  // a change of settings cures.
  bool permanent = false;
  // libpq's message on one line: each host's failure, separated by "; ".
  std::string reason;
};

// The meaning of PQerrorMessage() after a failed connection. libpq tries
// each host of a multi-host conninfo and reports one failure per host (a
// line starting "connection to server", hints on indented lines below it):
// the whole is permanent only when every host's failure is, since a host
// that was down may come back.
ConnectFailure classify_connect_failure(std::string_view message);

}  // namespace crawler
