/*
 * write_fence.c
 *		The check every write-API function makes before it writes.
 *
 * It runs in the caller's transaction, so a node that stops being writable
 * refuses the very next write.  The HA worker adds the term check here.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "utils/guc.h"

#include "crawler_ha.h"

PG_FUNCTION_INFO_V1(crawler_ha_assert_writable);

/* Name used in messages: the configured one, else "node<id>". */
const char *
crawler_ha_display_name(void)
{
	static char buf[32];

	if (crawler_ha_node_name != NULL && crawler_ha_node_name[0] != '\0')
		return crawler_ha_node_name;
	snprintf(buf, sizeof(buf), "node%d", crawler_ha_node_id);
	return buf;
}

Datum
crawler_ha_assert_writable(PG_FUNCTION_ARGS)
{
	const char *reset_ro;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("crawler_ha node \"%s\" does not accept writes", crawler_ha_display_name()),
				 errdetail("The server is in recovery."),
				 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));

	/*
	 * The reset value, not the session's current one: a client cannot lift
	 * the node's read-only setting with SET.
	 */
	reset_ro = GetConfigOptionResetString("default_transaction_read_only");
	if (reset_ro != NULL && strcmp(reset_ro, "on") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("crawler_ha node \"%s\" does not accept writes", crawler_ha_display_name()),
				 errdetail("default_transaction_read_only is on for this node."),
				 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));

	PG_RETURN_VOID();
}
