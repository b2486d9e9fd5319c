/*
 * consistency_peer.c
 *		An asynchronous query on the peer for the consistency checks: send it,
 *		do the same work locally meanwhile, then collect the peer's answer.
 *
 * Both nodes hash their halves of a comparison at the same time, so a check
 * takes about as long as one side's work, not both.  The connection is kept
 * for the rest of the transaction (a bisection makes several calls, a merge
 * one per chunk) and closed at its end.  Waiting is interruptible
 * (WaitLatchOrSocket).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ha_conn.h"
#include "ha_guc.h"

PG_FUNCTION_INFO_V1(ha_peer_send);
PG_FUNCTION_INFO_V1(ha_peer_receive);

static HaConn peer;
static char *peer_query;
/* the query's parameters, in peer_memory with it */
static const char **peer_params;
static MemoryContext peer_memory;
static bool callback_registered = false;

/* The query under way and its parameters are gone: a new one may start. */
static void
peer_query_done(void)
{
	peer_query = NULL;
	peer_params = NULL;
	if (peer_memory)
		MemoryContextReset(peer_memory);
}

static void
peer_forget(void)
{
	ha_conn_close(&peer);
	ha_conn_reset(&peer, false);
	peer_query_done();
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

/*
 * ha_peer_send(query, params, timeout_ms): start the query on the peer and
 * return at once.  params (text[], NULL for none) are its $1..$n, sent
 * apart from the query text; a NULL element is SQL NULL.  The answer is
 * due within timeout_ms (NULL: crawler_ha.response_timeout_ms).
 */
Datum
ha_peer_send(PG_FUNCTION_ARGS)
{
	int			timeout = PG_ARGISNULL(2) ? ha_response_timeout_ms : PG_GETARG_INT32(2);
	int			nparams = 0;
	MemoryContext old;

	require_superuser_peer();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	if (timeout < 1 || timeout > 3600000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be between 1 and 3600000")));
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
		peer_memory = AllocSetContextCreate(TopMemoryContext, "crawler_ha peer query",
											ALLOCSET_DEFAULT_SIZES);
		callback_registered = true;
	}

	/* a refusal below leaves no query under way (peer_query is set last) */
	peer_query_done();
	old = MemoryContextSwitchTo(peer_memory);
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("params must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nparams);
		if (nparams > 65535)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("at most 65535 params can be sent, not %d", nparams)));
		peer_params = palloc(sizeof(char *) * Max(nparams, 1));
		for (int i = 0; i < nparams; i++)
			peer_params[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	}
	peer_query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MemoryContextSwitchTo(old);

	ha_conn_reset(&peer, true);
	if (nparams > 0)
		ha_conn_set_params(&peer, nparams, peer_params);
	ha_conn_start(&peer, ha_peer_conninfo, peer_query, timeout, "crawler_ha consistency");
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
		HaRemoteError err;

		ha_conn_remote_error(&peer, &err);
		peer_forget();
		ha_raise_remote_error(&err, "query on the peer (crawler_ha.peer_conninfo)");
	}
	if (peer.result && PQntuples(peer.result) > 0 && PQnfields(peer.result) > 0 &&
		!PQgetisnull(peer.result, 0, 0))
		value = pstrdup(PQgetvalue(peer.result, 0, 0));
	peer_query_done();
	ha_conn_reset(&peer, true);
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
