/*
 * crawl_counts.c
 *		A session's counters without a hot row: each backend adds what its
 *		transaction counted to a row of its own in crawl_session_counts, once,
 *		when the transaction commits.
 *
 * The write API used to update the session's row in crawl_sessions on every
 * call.  Two result connections then waited for each other on that row
 * (through each other's commit), and a batch of a hundred calls updated it a
 * hundred times in one transaction (a hundred row versions, each UPDATE
 * walking the chain of the ones before).  Now a call only adds to this
 * backend's pending deltas (crawl_count() for the events, the crawl_frontier
 * trigger for the rows by state); at commit they are written, in session
 * order, to the row keyed (session, node, backend slot), which no concurrent
 * transaction of this node touches.  Totals are sums (crawl_session_totals).
 *
 * Deltas of a subtransaction that rolls back are dropped with it; the whole
 * list is dropped when the transaction aborts.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#if PG_VERSION_NUM < 170000
#include "storage/backendid.h"
#define COUNT_SLOT()	((int32) MyBackendId)
#else
#define COUNT_SLOT()	((int32) MyProcNumber)
#endif

PG_FUNCTION_INFO_V1(crawl_count);
PG_FUNCTION_INFO_V1(crawl_frontier_count);
PG_FUNCTION_INFO_V1(crawl_counts_flush);

/* The counters, in crawl_session_counts' column order (and crawl_count()'s arguments). */
#define N_COUNTERS		14
#define N_EVENT_COUNTERS 10
static const char *const counter_columns[N_COUNTERS] = {
	"pages_queued", "pages_fetched", "images_found", "images_stored", "bytes_stored",
	"errors", "retries", "images_changed", "images_unchanged", "images_fresh",
	"queued", "leased", "done", "failed"
};

/* what one session's counters moved by, in one (sub)transaction */
typedef struct PendingCount
{
	int64		session_id;
	int			nest_level;
	int64		delta[N_COUNTERS];
} PendingCount;

static PendingCount *pending = NULL;	/* in TopMemoryContext */
static int	npending = 0;
static int	maxpending = 0;

/* who writes the deltas and where: the extension's owner, its schema */
static Oid	flush_user = InvalidOid;
static Oid	flush_namespace = InvalidOid;

/* kept across transactions: the UPDATE of this backend's row, the INSERT of a new one */
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static Oid	plans_namespace = InvalidOid;
static bool callbacks_registered = false;

static void flush_pending(void);

static void
count_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			flush_pending();
			break;
		default:
			/* committed (flushed before), prepared, or aborted */
			npending = 0;
			break;
	}
}

static void
count_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i,
				j,
				kept = 0;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		for (i = 0; i < npending; i++)
			if (pending[i].nest_level < level)
				pending[kept++] = pending[i];
		npending = kept;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* the subtransaction's deltas are its parent's now */
		for (i = 0; i < npending; i++)
		{
			if (pending[i].nest_level < level)
			{
				pending[kept++] = pending[i];
				continue;
			}
			for (j = 0; j < kept; j++)
				if (pending[j].session_id == pending[i].session_id && pending[j].nest_level == level - 1)
					break;
			if (j < kept)
			{
				int			c;

				for (c = 0; c < N_COUNTERS; c++)
					pending[j].delta[c] += pending[i].delta[c];
			}
			else
			{
				pending[kept] = pending[i];
				pending[kept++].nest_level = level - 1;
			}
		}
		npending = kept;
	}
}

/* The pending entry of `session` at this nesting level, made if missing. */
static PendingCount *
pending_entry(int64 session, Oid namespace)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	if (!callbacks_registered)
	{
		RegisterXactCallback(count_xact_callback, NULL);
		RegisterSubXactCallback(count_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (npending == 0)
	{
		flush_user = GetUserId();
		flush_namespace = namespace;
	}
	for (i = npending - 1; i >= 0; i--)
		if (pending[i].session_id == session && pending[i].nest_level == level)
			return &pending[i];
	if (npending == maxpending)
	{
		maxpending = maxpending == 0 ? 16 : maxpending * 2;
		pending = pending == NULL
			? MemoryContextAlloc(TopMemoryContext, maxpending * sizeof(PendingCount))
			: repalloc(pending, maxpending * sizeof(PendingCount));
	}
	memset(&pending[npending], 0, sizeof(PendingCount));
	pending[npending].session_id = session;
	pending[npending].nest_level = level;
	return &pending[npending++];
}

static int
by_session(const void *a, const void *b)
{
	int64		x = ((const PendingCount *) a)->session_id;
	int64		y = ((const PendingCount *) b)->session_id;

	return x < y ? -1 : x > y;
}

static SPIPlanPtr
keep_plan(const char *sql)
{
	Oid			types[2 + N_COUNTERS];
	SPIPlanPtr	plan;
	int			c;

	types[0] = INT8OID;
	types[1] = INT4OID;
	for (c = 0; c < N_COUNTERS; c++)
		types[c + 2] = INT8OID;
	plan = SPI_prepare(sql, 2 + N_COUNTERS, types);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: could not prepare the counters' statement: %s",
						SPI_result_code_string(SPI_result))));
	SPI_keepplan(plan);
	return plan;
}

/*
 * The two statements that add one session's deltas ($3...) to this
 * backend's row (session $1, this node, slot $2): an UPDATE, and the INSERT
 * of the row when there is none yet.  Every name is qualified: they run as
 * the owner, under the caller's search_path.
 */
static void
prepare_statements(void)
{
	const char *nsp;
	StringInfoData sql;
	int			c;

	if (update_plan != NULL && plans_namespace == flush_namespace)
		return;
	if (update_plan != NULL)
	{
		SPI_freeplan(update_plan);
		SPI_freeplan(insert_plan);
		update_plan = insert_plan = NULL;
	}
	nsp = quote_identifier(get_namespace_name(flush_namespace));

	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s.crawl_session_counts c SET updated_at = pg_catalog.now()", nsp);
	for (c = 0; c < N_COUNTERS; c++)
		appendStringInfo(&sql, ", %s = c.%s OPERATOR(pg_catalog.+) $%d",
						 counter_columns[c], counter_columns[c], c + 3);
	appendStringInfo(&sql,
					 " WHERE c.session_id OPERATOR(pg_catalog.=) $1 AND c.slot OPERATOR(pg_catalog.=) $2"
					 " AND c.node_id OPERATOR(pg_catalog.=) (SELECT n.node_id FROM %s.ha_node n)", nsp);
	update_plan = keep_plan(sql.data);

	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.crawl_session_counts AS c (key, session_id, node_id, slot", nsp);
	for (c = 0; c < N_COUNTERS; c++)
		appendStringInfo(&sql, ", %s", counter_columns[c]);
	appendStringInfo(&sql,
					 ") SELECT $1::pg_catalog.text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) "
					 "n.node_id::pg_catalog.text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) "
					 "$2::pg_catalog.text, $1, n.node_id, $2");
	for (c = 0; c < N_COUNTERS; c++)
		appendStringInfo(&sql, ", $%d", c + 3);
	appendStringInfo(&sql,
					 " FROM %s.ha_node n WHERE EXISTS (SELECT 1 FROM %s.crawl_sessions s "
					 "WHERE s.id OPERATOR(pg_catalog.=) $1) "
					 "ON CONFLICT (key) DO UPDATE SET updated_at = pg_catalog.now()", nsp, nsp);
	for (c = 0; c < N_COUNTERS; c++)
		appendStringInfo(&sql, ", %s = c.%s OPERATOR(pg_catalog.+) EXCLUDED.%s",
						 counter_columns[c], counter_columns[c], counter_columns[c]);
	insert_plan = keep_plan(sql.data);
	plans_namespace = flush_namespace;
}

/*
 * Writes the pending deltas (of every nesting level: called at the top
 * level's commit, or by crawl_counts_flush()) and forgets them.  Sessions
 * in id order, so that two committing transactions lock their rows in the
 * same order; a session deleted meanwhile is skipped.
 */
static void
flush_pending(void)
{
	Oid			save_user;
	int			save_sec;
	int			i,
				n = 0;

	if (npending == 0)
		return;
	qsort(pending, npending, sizeof(PendingCount), by_session);
	for (i = 0; i < npending; i++)
	{
		int			c;

		if (n > 0 && pending[n - 1].session_id == pending[i].session_id)
			for (c = 0; c < N_COUNTERS; c++)
				pending[n - 1].delta[c] += pending[i].delta[c];
		else
			pending[n++] = pending[i];
	}

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(flush_user, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("crawler_ha: SPI_connect failed")));
	PushActiveSnapshot(GetTransactionSnapshot());
	for (i = 0; i < n; i++)
	{
		Datum		values[2 + N_COUNTERS];
		bool		any = false;
		int			c;

		values[0] = Int64GetDatum(pending[i].session_id);
		values[1] = Int32GetDatum(COUNT_SLOT());
		for (c = 0; c < N_COUNTERS; c++)
		{
			values[c + 2] = Int64GetDatum(pending[i].delta[c]);
			any |= pending[i].delta[c] != 0;
		}
		if (!any)
			continue;
		prepare_statements();
		if (SPI_execute_plan(update_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("crawler_ha: could not write the counters of crawl session " INT64_FORMAT,
							pending[i].session_id)));
		if (SPI_processed > 0)
			continue;
		/* the first count of this session by this backend slot (or a session deleted meanwhile) */
		if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_INSERT)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("crawler_ha: could not write the counters of crawl session " INT64_FORMAT,
							pending[i].session_id)));
	}
	PopActiveSnapshot();
	SPI_finish();
	SetUserIdAndSecContext(save_user, save_sec);
	npending = 0;
}

/*
 * crawl_count(session, pages_queued, pages_fetched, images_found,
 * images_stored, bytes_stored, errors, retries): adds to the session's
 * counters when this transaction commits.  NULL counts as 0.
 */
Datum
crawl_count(PG_FUNCTION_ARGS)
{
	PendingCount *p;
	int			c;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("session must not be NULL")));
	p = pending_entry(PG_GETARG_INT64(0), get_func_namespace(fcinfo->flinfo->fn_oid));
	for (c = 0; c < N_EVENT_COUNTERS; c++)
		if (!PG_ARGISNULL(c + 1))
			p->delta[c] += PG_GETARG_INT64(c + 1);
	PG_RETURN_VOID();
}

/* crawl_counts_flush(): writes this transaction's pending counters now (the merge recounts after it). */
Datum
crawl_counts_flush(PG_FUNCTION_ARGS)
{
	flush_pending();
	PG_RETURN_VOID();
}

/* The counter of a frontier state, or -1. */
static int
state_counter(HeapTuple tup, TupleDesc desc, AttrNumber state_att)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, state_att, desc, &isnull);
	char	   *s;
	int			c;

	if (isnull)
		return -1;
	s = TextDatumGetCString(v);
	for (c = N_EVENT_COUNTERS; c < N_COUNTERS; c++)
		if (strcmp(s, counter_columns[c]) == 0)
			return c;
	return -1;
}

static void
count_row(HeapTuple tup, TupleDesc desc, AttrNumber session_att, AttrNumber state_att,
		  Oid namespace, int sign)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, session_att, desc, &isnull);
	int			c = state_counter(tup, desc, state_att);

	if (isnull || c < 0)
		return;
	pending_entry(DatumGetInt64(v), namespace)->delta[c] += sign;
}

/*
 * crawl_frontier_count(): AFTER INSERT, DELETE or UPDATE OF state, FOR EACH
 * ROW on crawl_frontier: the session's rows by state move with the row.
 */
Datum
crawl_frontier_count(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	AttrNumber	session_att,
				state_att;
	Oid			nsp;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crawl_frontier_count() must be an AFTER ... FOR EACH ROW trigger")));
	desc = RelationGetDescr(td->tg_relation);
	session_att = SPI_fnumber(desc, "session_id");
	state_att = SPI_fnumber(desc, "state");
	if (session_att <= 0 || state_att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("crawl_frontier_count() needs the columns session_id and state")));
	nsp = get_func_namespace(fcinfo->flinfo->fn_oid);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		count_row(td->tg_trigtuple, desc, session_att, state_att, nsp, 1);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		count_row(td->tg_trigtuple, desc, session_att, state_att, nsp, -1);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
			 state_counter(td->tg_trigtuple, desc, state_att) != state_counter(td->tg_newtuple, desc, state_att))
	{
		count_row(td->tg_trigtuple, desc, session_att, state_att, nsp, -1);
		count_row(td->tg_newtuple, desc, session_att, state_att, nsp, 1);
	}
	return PointerGetDatum(NULL);
}
