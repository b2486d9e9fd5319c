/*
 * consistency_peer.c
 *		An asynchronous query on the peer for the consistency checks: send it,
 *		do the same work locally meanwhile, then collect the peer's answer.
 *
 * Both nodes hash their halves of a comparison at the same time, so a check
 * takes about as long as one side's work, not both.  The connection is kept
 * for the rest of the transaction (a bisection makes several calls) and
 * closed at its end.  Waiting is interruptible (WaitLatchOrSocket).
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ha_conn.h"
#include "ha_guc.h"

PG_FUNCTION_INFO_V1(ha_peer_send);
PG_FUNCTION_INFO_V1(ha_peer_receive);

static HaConn peer;
static char *peer_query;
static bool callback_registered = false;

static void
peer_forget(void)
{
	ha_conn_close(&peer);
	ha_conn_reset(&peer, false);
	if (peer_query)
	{
		pfree(peer_query);
		peer_query = NULL;
	}
}

static void
peer_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		peer_forget();
}

/* Drive the exchange until `until` holds or it is over; interruptible. */
static void
peer_drive(bool (*until) (void))
{
	while (peer.phase != HA_CONN_DONE && peer.phase != HA_CONN_FAILED && !until())
	{
		int			rc = WaitLatchOrSocket(MyLatch,
										   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | peer.poll_wants,
										   PQsocket(peer.conn), ha_conn_wait_ms(&peer),
										   PG_WAIT_EXTENSION);

		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		ha_conn_step(&peer, rc);
	}
}

static bool
query_sent(void)
{
	return peer.phase == HA_CONN_READING;
}

static bool
never(void)
{
	return false;
}

static void
require_superuser_peer(void)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may query the peer directly"),
				 errhint("Use ha_check_consistency(), ha_diff() or ha_sync().")));
}

/* ha_peer_send(query): start the query on the peer and return at once. */
Datum
ha_peer_send(PG_FUNCTION_ARGS)
{
	require_superuser_peer();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	if (ha_peer_conninfo == NULL || ha_peer_conninfo[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("crawler_ha.peer_conninfo is not set"),
				 errhint("Set it in postgresql.conf to the other data node and reload.")));
	if (peer_query != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a query on the peer is already under way"),
				 errhint("Call ha_peer_receive() first.")));
	if (!callback_registered)
	{
		RegisterXactCallback(peer_xact_callback, NULL);
		callback_registered = true;
	}

	peer_query = MemoryContextStrdup(TopMemoryContext, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	ha_conn_reset(&peer, true);
	ha_conn_start(&peer, ha_peer_conninfo, peer_query, ha_response_timeout_ms, "crawler_ha consistency");
	peer_drive(query_sent);
	PG_RETURN_VOID();
}

/* ha_peer_receive(): the first value of the answer to ha_peer_send()'s query. */
Datum
ha_peer_receive(PG_FUNCTION_ARGS)
{
	char	   *value = NULL;

	require_superuser_peer();
	if (peer_query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no query on the peer is under way"),
				 errhint("Call ha_peer_send() first.")));
	peer_drive(never);
	if (peer.phase != HA_CONN_DONE)
	{
		char		err[sizeof(peer.error)];

		strlcpy(err, peer.error[0] ? peer.error : "no answer", sizeof(err));
		peer_forget();
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("query on the peer failed: %s", err)));
	}
	if (peer.result && PQntuples(peer.result) > 0 && PQnfields(peer.result) > 0 &&
		!PQgetisnull(peer.result, 0, 0))
		value = pstrdup(PQgetvalue(peer.result, 0, 0));
	pfree(peer_query);
	peer_query = NULL;
	ha_conn_reset(&peer, true);
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
