/*
 * ha_endpoint.c
 *		ha_endpoint_check(): what a load balancer asks of this node (Patroni's
 *		GET /primary, /replica, /read-only, /health), answered from shared
 *		memory with the write fence's own rule, so that the node agent's HA
 *		port and psql never disagree.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "ha_shared.h"
#include "ha_write_rule.h"

PG_FUNCTION_INFO_V1(ha_endpoint_check);

/* What a load balancer asks of this node (Patroni's GET /primary, /replica, ...). */
typedef enum HaEndpoint
{
	HA_ENDPOINT_PRIMARY,		/* it takes writes */
	HA_ENDPOINT_REPLICA,		/* a standby fit to serve reads */
	HA_ENDPOINT_READ_ONLY,		/* either of the two */
	HA_ENDPOINT_HEALTH			/* the server answers */
} HaEndpoint;

static const struct
{
	const char *name;
	HaEndpoint	endpoint;
}			ha_endpoints[] =
{
	{"primary", HA_ENDPOINT_PRIMARY},
	{"read-write", HA_ENDPOINT_PRIMARY},
	{"replica", HA_ENDPOINT_REPLICA},
	{"read-only", HA_ENDPOINT_READ_ONLY},
	{"health", HA_ENDPOINT_HEALTH},
};

#define HA_ENDPOINT_NAMES "primary, read-write, replica, read-only or health"

/*
 * The lag a replica may have when the caller names none: small enough that
 * a reader sees recent writes, large enough that a burst of writes does not
 * take the replica out of the pool at every check.
 */
#define HA_ENDPOINT_DEFAULT_MAX_LAG "16MB"

/*
 * The most of a caller's argument an error message repeats, and the longest
 * max_lag read at all: the argument comes from an HTTP request through the
 * agent, and the message goes to the server's log.
 */
#define HA_ENDPOINT_ECHO_MAX 80

/*
 * A caller's text fit for an error message: at most HA_ENDPOINT_ECHO_MAX
 * bytes cut on a character boundary, "..." when cut, control characters as
 * '?' so that nothing forges a line of the log.
 */
static char *
echo_arg(text *t)
{
	const char *p = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			keep = pg_mbcliplen(p, len, Min(len, HA_ENDPOINT_ECHO_MAX));
	char	   *out = palloc(keep + 4);

	for (int i = 0; i < keep; i++)
		out[i] = ((unsigned char) p[i] < 0x20 || p[i] == 0x7f) ? '?' : p[i];
	strcpy(out + keep, keep < len ? "..." : "");
	return out;
}

/* The endpoint argument; 22004 for NULL, 22023 for any other name. */
static HaEndpoint
endpoint_arg(FunctionCallInfo fcinfo)
{
	text	   *t;
	const char *p;
	int			len;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("endpoint must not be NULL"),
				 errhint("The endpoints are " HA_ENDPOINT_NAMES ".")));
	t = PG_GETARG_TEXT_PP(0);
	p = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	for (int i = 0; i < lengthof(ha_endpoints); i++)
		if (strlen(ha_endpoints[i].name) == (size_t) len && memcmp(ha_endpoints[i].name, p, len) == 0)
			return ha_endpoints[i].endpoint;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("endpoint must be " HA_ENDPOINT_NAMES ", not \"%s\"", echo_arg(t))));
	return HA_ENDPOINT_HEALTH;	/* not reached */
}

/* Names the argument in pg_size_bytes()'s errors, which do not ("bigint out of range"). */
static void
max_lag_context(void *arg)
{
	errcontext("reading max_lag as a size");
}

/*
 * The max_lag argument in bytes, read by PostgreSQL's own pg_size_bytes()
 * ('16MB', '1 kB', '1048576') and with its errors; NULL is the default.
 * 22023 for a negative size or a text too long to be one.
 */
static int64
max_lag_arg(FunctionCallInfo fcinfo)
{
	Datum		size;
	int64		bytes;
	ErrorContextCallback context;

	if (PG_ARGISNULL(1))
		size = CStringGetTextDatum(HA_ENDPOINT_DEFAULT_MAX_LAG);
	else
	{
		text	   *t = PG_GETARG_TEXT_PP(1);

		/* pg_size_bytes() would repeat all of it in its message */
		if (VARSIZE_ANY_EXHDR(t) > HA_ENDPOINT_ECHO_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_lag is too long to be a size: \"%s\"", echo_arg(t)),
					 errhint("Give a size such as '16MB', '1 kB' or '1048576' (bytes).")));
		size = PointerGetDatum(t);
	}
	context.callback = max_lag_context;
	context.arg = NULL;
	context.previous = error_context_stack;
	error_context_stack = &context;
	bytes = DatumGetInt64(DirectFunctionCall1(pg_size_bytes, size));
	error_context_stack = context.previous;
	if (bytes < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_lag must not be negative: \"%s\"", echo_arg(DatumGetTextPP(size)))));
	return bytes;
}

/*
 * How far this standby is behind its primary, in bytes: the primary's WAL
 * position as this node's health check last saw it (kept while the primary
 * is unreachable, as Patroni keeps the last known leader position), minus
 * the furthest this node has received of it: the larger of its apply
 * worker's received_lsn and its replication origin's progress (what is
 * applied, known also while no apply worker runs).  0 when the primary's
 * position is older than what was received.  False, with `why` saying what
 * is missing, when either end is unknown.  Reads catalogs and shared memory
 * only: it never waits on the primary or on a lock a writer holds.
 */
static bool
standby_lag(const HaShared *snap, int64 *lag, const char **why)
{
	char	   *sql;
	bool		have_sub;
	XLogRecPtr	received = InvalidXLogRecPtr;

	*lag = 0;
	if (!snap->peer.ever_seen)
	{
		*why = "its primary has not answered a health check yet";
		return false;
	}
	if (snap->peer.role != HA_ROLE_PRIMARY)
	{
		*why = psprintf("the peer last answered as %s, not as the primary",
						snap->peer.role != HA_ROLE_NONE ? ha_role_name(snap->peer.role) : "no known role");
		return false;
	}
	if (XLogRecPtrIsInvalid(snap->peer.lsn))
	{
		*why = "its primary gave no WAL position";
		return false;
	}

	/*
	 * Nothing of the caller's in it: names are ours, the database is this
	 * one.  The origin's progress comes from pg_replication_origin_status
	 * (the value pg_replication_origin_progress(name, false) gives), which
	 * has no row where that function would raise: an origin dropped with
	 * its subscription by a rejoin running meanwhile.
	 */
	sql = psprintf("SELECT (SELECT pg_catalog.max(w.received_lsn) FROM pg_catalog.pg_stat_subscription w"
				   "         WHERE w.subid = s.oid AND w.relid IS NULL),"
				   "       (SELECT o.remote_lsn FROM pg_catalog.pg_replication_origin_status o"
				   "         WHERE o.external_id = 'pg_' || s.oid::pg_catalog.text)"
				   "  FROM pg_catalog.pg_subscription s"
				   " WHERE s.subname = '" HA_SUBSCRIPTION "' AND s.subdbid = %u",
				   MyDatabaseId);
	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: reading the subscription's progress failed")));
	have_sub = SPI_processed == 1;
	if (have_sub)
	{
		/* two pg_lsn columns; NULL is no position */
		for (int col = 1; col <= 2; col++)
		{
			bool		isnull;
			Datum		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

			if (!isnull && DatumGetLSN(v) > received)
				received = DatumGetLSN(v);
		}
	}
	SPI_finish();

	if (!have_sub)
	{
		*why = "this node has no subscription " HA_SUBSCRIPTION;
		return false;
	}
	if (XLogRecPtrIsInvalid(received))
	{
		*why = "the subscription " HA_SUBSCRIPTION " has received nothing yet";
		return false;
	}
	*lag = snap->peer.lsn > received ? (int64) (snap->peer.lsn - received) : 0;
	return true;
}

/*
 * The 'primary' check: the write rule, with the inputs ha_health() gives
 * it, so that the check and ha_health().writable cannot disagree.
 */
static bool
primary_check(const HaShared *snap, const char **reason)
{
	HaWriteCheck check;
	HaRole		role = snap->state_loaded ? snap->role : HA_ROLE_NONE;

	ha_check_write(role, snap->term, snap->fenced, &check);
	*reason = ha_write_verdict_text(&check, role, snap->term, snap->primary_name);
	return check.verdict == HA_WRITE_ALLOWED;
}

/*
 * The 'replica' check: a standby whose worker runs, that needs no rejoin,
 * is not fenced, and is at most max_lag bytes behind its primary.  On a
 * standby `lag`/`lag_known` get its lag (standby_lag()), whatever the
 * verdict; elsewhere they are left alone.
 */
static bool
replica_check(const HaShared *snap, int64 max_lag, const char **reason, int64 *lag, bool *lag_known)
{
	const char *unknown = NULL;

	if (!snap->state_loaded || snap->role == HA_ROLE_NONE)
	{
		*reason = "this node's role is unknown: the HA worker has not loaded its state";
		return false;
	}
	if (snap->role != HA_ROLE_STANDBY)
	{
		*reason = psprintf("this node is the %s (term " INT64_FORMAT "), not a standby",
						   ha_role_name(snap->role), snap->term);
		return false;
	}

	*lag_known = standby_lag(snap, lag, &unknown);
	if (snap->worker_pid == 0)
		*reason = "the HA worker is not running";
	else if (snap->needs_rejoin)
		*reason = psprintf("this node must rejoin its primary (term " INT64_FORMAT ")", snap->term);
	else if (snap->fenced)
		*reason = psprintf("this node is fenced (term " INT64_FORMAT ")", snap->term);
	else if (!*lag_known)
		*reason = psprintf("replication lag unknown: %s", unknown);
	else if (*lag > max_lag)
		*reason = psprintf("replication lag " INT64_FORMAT " bytes is above max_lag " INT64_FORMAT " bytes",
						   *lag, max_lag);
	else
	{
		*reason = psprintf("a standby of term " INT64_FORMAT ", " INT64_FORMAT " bytes behind the primary %s%s",
						   snap->term, *lag, snap->peer.name[0] ? snap->peer.name : "(unnamed)",
						   snap->peer.reachable ? "" : " at its last seen position (unreachable now)");
		return true;
	}
	return false;
}

/*
 * ha_endpoint_check(endpoint, max_lag): the rule behind a load balancer's
 * check of this node, one row (ok, reason, lag_bytes); the agent answers
 * HTTP 200 when ok, 503 when not.  Reads shared memory and, for a standby's
 * lag, the local catalogs: it never waits on the network, and runs nothing
 * the caller chose.
 */
Datum
ha_endpoint_check(PG_FUNCTION_ARGS)
{
	HaEndpoint	endpoint = endpoint_arg(fcinfo);
	int64		max_lag = max_lag_arg(fcinfo);
	TupleDesc	td;
	HaShared	snap;
	Datum		values[3];
	bool		nulls[3];
	bool		ok = false;
	const char *reason = NULL;
	int64		lag = 0;
	bool		lag_known = false;

	ha_require_preload();
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ha_endpoint_check() must return a row")));
	td = BlessTupleDesc(td);

	SpinLockAcquire(&ha_shared->mutex);
	memcpy(&snap, ha_shared, sizeof(HaShared));
	SpinLockRelease(&ha_shared->mutex);

	/* on the primary, its standby's lag as ha_health() shows it */
	if (ha_primary_lag_known(&snap))
	{
		lag = snap.lag_bytes;
		lag_known = true;
	}

	switch (endpoint)
	{
		case HA_ENDPOINT_PRIMARY:
			ok = primary_check(&snap, &reason);
			break;
		case HA_ENDPOINT_REPLICA:
			ok = replica_check(&snap, max_lag, &reason, &lag, &lag_known);
			break;
		case HA_ENDPOINT_READ_ONLY:
			{
				const char *replica_reason;

				ok = primary_check(&snap, &reason);
				if (ok)
					break;
				ok = replica_check(&snap, max_lag, &replica_reason, &lag, &lag_known);
				/* the reason of the check that fits the node's role */
				if (ok || (snap.state_loaded && snap.role == HA_ROLE_STANDBY))
					reason = replica_reason;
				break;
			}
		case HA_ENDPOINT_HEALTH:
			ok = true;
			reason = snap.state_loaded && snap.role != HA_ROLE_NONE
				? psprintf("this node is the %s of term " INT64_FORMAT, ha_role_name(snap.role), snap.term)
				: psprintf("this node's role is unknown (term " INT64_FORMAT "): the HA worker has not loaded its state",
						   snap.term);
			break;
	}

	memset(nulls, 0, sizeof(nulls));
	values[0] = BoolGetDatum(ok);
	values[1] = CStringGetTextDatum(reason);
	values[2] = Int64GetDatum(lag);
	nulls[2] = !lag_known;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(td, values, nulls)));
}
